# Round-free acceptance (distill.buffer) with slow devices (learn.delay-*):
# cloudd distils once 4 users uploaded since its last run, whatever their
# base. Four devices hold their patches on v1 for 8 s (learn.delay-dist=
# fixed), four upload at once. The first automatic run takes the 4 quick
# patches (v2); the slow devices' v1 patches arrive after it, stale, and
# trigger the next run (v3), which weighs them lambda / (1 + age)^a (poly).
# Then dccl-score scores every stored version on the test files.
# Both runs change the weights (one that keeps them publishes nothing:
# distill_kept.sh): v1 is trained for one epoch without the item prior,
# and the devices' guard adopts any patch with a positive CV gain.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 8 60
import_pool
start_cloudd -o distill.buffer=4 -o distill.stale=poly -o distill.poly-a=0.5 \
    -o cloudd.cron-ms=100 -o ofa.enable=no -o train.epochs=1 \
    -o train.item-prior=no
wait_model 1
DEVOPTS="-o learn.guard-z=0 -o learn.guard-rank=no"
mkdir -p "$T/fast" "$T/slow"
n=0
for f in "$SHARDS"/*.local.csv; do
	n=$((n + 1))
	u=$(basename "$f" .local.csv)
	d=$T/fast; [ $n -gt 4 ] && d=$T/slow
	ln -s "$f" "$d/"
	[ -f "$SHARDS/$u.test.csv" ] && ln -s "$SHARDS/$u.test.csv" "$d/"
done
# The slow ones first: their v1 patches are trained and held before any
# v2 exists. Run-once: each device uploads one patch, so the run ends.
# shellcheck disable=SC2086
start_deviced slow -o deviced.shards="$T/slow" -o learn.delay-ms=8000 \
    -o learn.delay-dist=fixed -o deviced.run-once=yes $DEVOPTS
SPID=$DPID
wait_for "[ \$(grep -c 'DELAY: device=.* upload of v1.s patch in 8000 ms' '$T/slow.log') = 4 ]" \
    600 0.1 || die "slow devices did not delay"
# shellcheck disable=SC2086
start_deviced fast -o deviced.shards="$T/fast" -o deviced.run-once=yes \
    $DEVOPTS
wait_model 2
distill_accepted 2 1
grep -q "DISTILL: automatic run: 4 users with a new patch on v1 (distill.buffer reached)" \
    "$T/cloudd.log" || die "no buffered run on v1"
grep -q "DISTILL: model v2 from v1: 4 fresh + 0 stale" "$T/cloudd.log" ||
    die "v2 did not come from the 4 quick patches"
grep -q "DELAY:" "$T/fast.log" && die "fast devices delayed"
# The slow devices' v1 patches arrive after v2: stale, and used (poly).
wait_model 3
# The trigger counts the 4 new patches; the run then uses every user's
# newest patch, the quick ones (also on v1) included: 8 stale.
grep -q "DISTILL: automatic run: 4 users with a new patch on v2 (distill.buffer reached)" \
    "$T/cloudd.log" || die "no buffered run on v2"
grep -q "DISTILL: v2: 0 fresh patches, 8 stale used (poly, a 0.5)" "$T/cloudd.log" ||
    die "v3's run did not use the stale patches"
grep -q "DISTILL: model v3 from v2: 0 fresh + 8 stale patches used" "$T/cloudd.log" ||
    die "no v3 from stale patches"
distill_accepted 3 2
wait "$SPID" || die "slow deviced exit"
wait "$DPID" || die "fast deviced exit"
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit"
grep -q "EXIT: clean shutdown" "$T/cloudd.log" || die "no clean exit"
# Offline scores of every version: one line per test sample each.
"$BIN/dccl-score" "$T/cloud/cloudd.db" "$SHARDS" "$T/scores" 2>"$T/score.log" ||
    die "dccl-score: $(cat "$T/score.log")"
nt=$(cat "$SHARDS"/*.test.csv | grep -vc '^#\|^user,')
nv=$(sql "SELECT count(*) FROM models")
[ "$(ls -d "$T/scores"/v* | wc -l)" = "$nv" ] || die "scored $(ls "$T/scores") of $nv versions"
[ "$(wc -l <"$T/scores/v2/preds.csv")" = "$nt" ] || die "v2 scores: $(wc -l <"$T/scores/v2/preds.csv") of $nt"
grep -Evq '^cloud,[0-9]+,[0-9]+,[01],[0-9.e-]+$' "$T/scores/v2/preds.csv" && die "bad score line"
echo "distill_async OK"
