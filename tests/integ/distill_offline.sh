# The offline MoMoDistill controls (bin/dccl-distill) on a small synthetic
# drift set: the invariants that make its tables comparable. Every arm
# predicts every device's test slice in every round; in round 1 all arms
# start from the same v1, so self-distillation and MoMoDistill distil the
# same users' soft copies (only the teachers differ); lambda = 0 distils
# none; an arm whose validation rule kept epoch 0 predicts exactly as v1;
# frozen per-user rows change the model all the same; centred teachers
# and teachers on the newest samples distil the soft sets they should;
# the teachers arm uses distill's patches; every distilled arm reports
# cloudd's acceptance figures; --arms; bad usage exits 2.
# The encoder arms (--cold): cold users reach no pool, warm users keep
# v1's rows under enc-pool and enc-dev, cold users get the encoder's, and
# enc-dev's encoder is the device-distilled one where it was fitted.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
O=$T/dd
"$BIN/dccl-distill" x "$O" --synth 60 --seed 3 >"$T/dd.log" 2>&1 || die "dccl-distill failed"
for r in 1 2; do
	for w in test val; do
		[ -s "$O/$w/r$r/preds.csv" ] || die "no $w predictions for round $r"
	done
done
arms="v1 lam0 self distill distill-frz lam0-fix self-fix distill-fix distill-frz-fix conv-v1 conv-lam0 conv-distill self-rec distill-rec distill-frz-rec distill-ctr distill-frz-ctr distill-ctr-rec teachers"
ndev=$(wc -l <"$O/counts")
[ "$ndev" -gt 20 ] || die "only $ndev devices"
nv1=$(grep -c '^v1,' "$O/test/r1/preds.csv")
for a in $arms; do
	n=$(grep -c "^$a," "$O/test/r1/preds.csv")
	[ "$n" = "$nv1" ] || die "arm $a: $n test rows, v1 has $nv1"
	[ "$(cut -d, -f2 "$O/test/r1/preds.csv" | sort -u | wc -l)" = "$ndev" ] || die "not every device scored"
done
field() {	# field ROUND ARM COLUMN (of arms.csv)
	awk -F, -v r="$1" -v a="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) k[$i] = i; next }
	    $1 == r && $2 == a { print $(k[c]) }' "$O/arms.csv"
}
s_self=$(field 1 self soft) s_dist=$(field 1 distill soft) s_frz=$(field 1 distill-frz soft)
[ "$s_self" -gt 0 ] || die "no soft samples in round 1"
[ "$s_self" = "$s_dist" ] && [ "$s_dist" = "$s_frz" ] || die "round 1 soft sets differ: self $s_self distill $s_dist frozen $s_frz"
[ "$(field 1 lam0 soft)" = 0 ] || die "lambda = 0 distilled something"
# Centred teachers distil the same soft set; teachers on the newest
# samples (--recent 0.2) a smaller one, the same for each of those arms.
[ "$(field 1 distill-ctr soft)" = "$s_dist" ] || die "centred teachers: another soft set"
s_rec=$(field 1 self-rec soft)
[ "$s_rec" -gt 0 ] && [ "$s_rec" -lt "$s_self" ] || die "recent: soft set $s_rec of $s_self"
[ "$(field 1 distill-rec soft)" = "$s_rec" ] && [ "$(field 1 distill-ctr-rec soft)" = "$s_rec" ] ||
    die "recent arms distil different soft sets"
[ "$(field 1 teachers adopted)" = "$(field 1 distill adopted)" ] || die "teachers: other patches than distill's"
[ "$(field 1 distill adopted)" -le "$ndev" ] || die "more adopted patches than devices"
rows() { grep "^$1," "$O/test/r1/preds.csv" | cut -d, -f2- >"$T/$1.rows"; }
rows v1
# best epoch 0 = the current weights: identical predictions to v1.
n0=0
for a in lam0 self distill distill-frz; do
	[ "$(field 1 $a best_epoch)" = 0 ] || continue
	n0=$((n0 + 1))
	rows $a
	cmp -s "$T/v1.rows" "$T/$a.rows" || die "$a kept epoch 0 but predicts differently from v1"
done
[ $n0 -ge 1 ] || die "no arm kept epoch 0 (lambda = 0 on the pool should not beat v1)"
# Without the validation rule the models do move.
for a in lam0-fix distill-frz-fix; do
	rows $a
	cmp -s "$T/v1.rows" "$T/$a.rows" && die "$a predicts exactly as v1"
done
# cloudd's acceptance figures (distill_val_gain) on every moved arm: the
# gain is the validation logloss drop ctr_eval_logloss measures, computed
# per sample, with a positive standard error; the log's verdict is the
# rule gain - 2 se > 0; a run that kept epoch 0 has none.
awk -F, 'NR == 1 { next }
    $9 != "nan" { n++; d = $9 - ($5 - $6); if (d < 0) d = -d
	if (d > 1e-4 || !($10 > 0)) { print "bad gain: " $0; bad = 1 } }
    $9 == "nan" && $7 > 0 && $2 !~ /fix|teachers|enc|^v1$|^conv-v1$/ { print "no gain: " $0; bad = 1 }
    END { exit bad || n < 4 }' "$O/arms.csv" || die "acceptance figures in arms.csv"
grep "gain .* (se .*): cloudd would" "$T/dd.log" | awk '{
    for (i = 1; i <= NF; i++) { if ($i == "gain") g = $(i + 1); if ($i == "(se") s = $(i + 1) }
    sub(/\).*/, "", s); pub = g - 2 * s > 0
    if (pub != ($0 ~ /would publish/)) { print "verdict: " $0; bad = 1 } n++ }
    END { exit bad || n < 4 }' || die "acceptance verdicts in the log"
rc=0; "$BIN/dccl-distill" x "$T/bad" --accept-z 101 >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || die "--accept-z 101 accepted (exit $rc)"
rc=0; "$BIN/dccl-distill" x "$T/bad" --slices 0.7,0.3 >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || die "one device slice accepted (exit $rc)"
rc=0; "$BIN/dccl-distill" x "$T/bad" --slices 0.7,0.1,0.1 >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || die "slices not summing to 1 accepted (exit $rc)"
rc=0; "$BIN/dccl-distill" x "$T/bad" --synth 60 --recent 0 >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || die "--recent 0 accepted (exit $rc)"
rc=0; "$BIN/dccl-distill" x "$T/bad" --synth 60 --patch-lr 0 >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || die "--patch-lr 0 accepted (exit $rc)"
# --arms runs only the arms named; --patch-lr sets the devices' rate.
"$BIN/dccl-distill" x "$T/sub" --synth 60 --seed 3 --arms v1,lam0 \
    --patch-lr 0.001 >/dev/null 2>&1 || die "--arms failed"
[ "$(cut -d, -f1 "$T/sub/test/r1/preds.csv" | sort -u | tr '\n' ' ')" = "lam0 v1 " ] || die "--arms ran other arms"
E=$T/enc
"$BIN/dccl-distill" x "$E" --synth 150 --seed 3 --cold 0.25 --arms v1,enc-pool,enc-dev \
    --device-opt learn.guard-z=0 --device-opt learn.guard-rank=no >"$T/enc.log" 2>&1 ||
    die "dccl-distill --cold failed: $(tail -3 "$T/enc.log")"
nc=$(wc -l <"$E/cold")
[ "$nc" -ge 20 ] && [ "$nc" -le 55 ] || die "--cold 0.25: $nc cold of 150"
awk -F, 'NR == FNR { c[$1] = 1; next } ($1 in c) && $2 != 0 { bad = 1 } END { exit bad }' \
    "$E/cold" "$E/counts" || die "a cold user has pool samples"
for r in 1 2; do
	split_rows() {	# split_rows ARM: its test rows of warm and of cold users
		grep "^$1," "$E/test/r$r/preds.csv" | awk -F, -v w="$T/$1.warm" -v c="$T/$1.cold" \
		    'NR == FNR { k[$1] = 1; next } { f = ($2 in k) ? c : w; sub(/^[^,]*,/, ""); print >f }' \
		    "$E/cold" -
	}
	for a in v1 enc-pool enc-dev; do split_rows $a; done
	[ -s "$T/v1.cold" ] || die "round $r: no cold user's test rows"
	for a in enc-pool enc-dev; do
		cmp -s "$T/v1.warm" "$T/$a.warm" || die "round $r: $a changed warm users' predictions"
	done
	cmp -s "$T/v1.cold" "$T/enc-pool.cold" && die "round $r: enc-pool left cold users at v1's rows"
	fitted=$(grep -c "round $r enc-dev fold [01]: .*rc 0" "$T/enc.log" || true)
	if [ "$fitted" = 2 ]; then
		cmp -s "$T/enc-pool.cold" "$T/enc-dev.cold" && die "round $r: enc-dev fitted but scores as enc-pool"
	elif [ "$fitted" = 0 ]; then
		cmp -s "$T/enc-pool.cold" "$T/enc-dev.cold" || die "round $r: enc-dev fell back but differs from enc-pool"
	fi
done
grep -q "round 1 enc-dev fold 0: .*rc 0" "$T/enc.log" || die "enc-dev not distilled on 150 devices: $(grep enc-dev "$T/enc.log")"
rc=0; "$BIN/dccl-distill" x "$T/bad" --synth 60 --cold 1 >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || die "--cold 1 accepted (exit $rc)"
rc=0; "$BIN/dccl-distill" x "$T/bad" --synth 60 --device-opt learn.nope=1 >/dev/null 2>&1 || rc=$?
[ $rc = 1 ] || die "an unknown deviced option accepted (exit $rc)"
rc=0; "$BIN/dccl-distill" /nonexistent "$T/bad" >/dev/null 2>&1 || rc=$?
[ $rc = 1 ] || die "missing data set: exit $rc"
echo "distill_offline OK"
