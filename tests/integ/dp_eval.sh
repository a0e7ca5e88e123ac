# scripts/eval-dp.sh on a small synthetic set (20 devices, 1 seed, one
# target epsilon): the tables are written, every device's budget is logged
# and stays within the target even though retrievals are retried (cloudd
# admits one at a time, so most get E_BUSY first: a retry resends the same
# noised vectors), DP leaves the cloud model and the device's own
# (noise-free) MetaPatch untouched, and the MoMoDistill round ran on noised
# patches.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
make_data 20 60
DCCL_BIN=$BIN DP_SEEDS=1 DP_EPS=4 \
    CLOUDD_OPTS="-o train.epochs=3 -o limits.max-inflight=1" \
    sh "$ROOT/scripts/eval-dp.sh" "$T/data" "$T/out" >"$T/evaldp.log" 2>&1 ||
    die "eval-dp.sh failed: $(tail -n 20 "$T/evaldp.log")"
cat "$T/evaldp.log"
[ -s "$T/out/table.md" ] && [ -s "$T/out/table.csv" ] || die "no tables"
col() {	# KIND METHOD EPS COLUMN
	awk -F, -v k="$1" -v m="$2" -v e="$3" -v c="$4" '
	    NR == 1 { for (i = 1; i <= NF; i++) n[$i] = i; next }
	    $1 == k && $2 == m && $3 == e { print $(n[c]) }' "$T/out/table.csv"
}
for m in cloud metapatch ft-coda mp-lc-coda; do
	[ -n "$(col device $m 4 gauc)" ] || die "no row for $m at epsilon 4"
done
# Every device logged its budget; none spent more than the target.
mx=$(col device cloud 4 eps_measured_max)
awk -v x="$mx" 'BEGIN { exit !(x > 0 && x <= 4 + 1e-3) }' ||
    die "measured epsilon $mx not in (0, 4]"
# DP is on what leaves the device: the cloud model and the device's own
# patch are the same as without DP.
for m in cloud metapatch; do
	d=$(col device $m 4 d_gauc)
	awk -v d="$d" 'BEGIN { exit !(d == 0) }' || die "$m moved under DP: $d"
done
grep -q '^4,20,' "$T/out/distill.csv" || die "no distill round on noised patches"
grep -q 'z patch' "$T/out/table.md" || die "table.md without the noise table"
echo "dp_eval OK"
