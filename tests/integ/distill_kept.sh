# A distillation that keeps the current weights (no epoch beats them on
# validation: best epoch 0) publishes nothing, and the cron does not run
# again on the same patches. v1 is trained to convergence (train.epochs
# 20, early-stopped) and distilled at ten times the default rate
# (distill.lr), which overfits the training samples in the first epoch, so
# every run here keeps v1 by a wide margin, although the devices' guard
# adopts their patches (learn.guard-z=0, learn.guard-rank=no) and the runs
# have soft samples.
# Twelve users in three groups of four, each its own deviced:
#   buffered (distill.buffer=4): group A's patches start a run that keeps
#   v1: no version is stored or announced, no device downloads again, and
#   over 15 cron ticks no run starts on the same patches; dcctl distill
#   still runs by hand; group B's 4 new users start the next run.
#   synchronous (restart with distill.min-patches=4): the store records
#   which patches the runs used, so the 8 users' patches on v1 start no
#   run after the restart; group C's 4 new users start the next.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 12 60
import_pool
DEVOPTS="-o learn.guard-z=0 -o learn.guard-rank=no"
mkdir -p "$T/A" "$T/B" "$T/C"
n=0
for f in "$SHARDS"/*.local.csv; do
	d=$T/A; [ $n -ge 4 ] && d=$T/B; [ $n -ge 8 ] && d=$T/C
	ln -s "$f" "$d/"
	n=$((n + 1))
done
[ $n = 12 ] || die "$n device shards"
runs() { grep -c "DISTILL: started on" "$T/cloudd.log" || true; }
kept() { grep -c "DISTILL: v1 kept: .*; no new version" "$T/cloudd.log" || true; }
# Waits for the kept line number $1, then checks nothing was published
# and that no run starts within 15 cron ticks (3 s).
kept_quiet() {
	wait_for "[ \$(kept) -ge $1 ]" 600 0.1 || die "no kept run $1"
	grep "DISTILL: v1 kept: " "$T/cloudd.log" | sed -n "$1p" | sed 's/.*DISTILL: /  /'
	grep "DISTILL: v1 kept: " "$T/cloudd.log" | sed -n "$1p" |
	    grep -q "(best epoch 0 of [0-9]*)" || die "kept line"
	r=$(runs)
	sleep 3
	[ "$(runs)" = "$r" ] || die "$(($(runs) - r)) more run(s) on the same patches"
	[ "$(kept)" = "$1" ] || die "$(kept) kept runs, expected $1"
	[ "$(sql 'SELECT count(*) FROM models')" = 1 ] || die "models stored: $(sql 'SELECT version FROM models')"
	grep -q "ANNOUNCE: model v2" "$T/cloudd.log" && die "v2 announced"
	grep -q "TRAIN: model v2" "$T/cloudd.log" && die "v2 made"
	return 0
}

log "buffered (distill.buffer=4)"
CLOUDOPTS="-o cloudd.cron-ms=200 -o ofa.enable=no -o distill.lr=0.005"
# shellcheck disable=SC2086
start_cloudd -o distill.buffer=4 -o train.epochs=20 $CLOUDOPTS
wait_model 1
# shellcheck disable=SC2086
start_deviced A -o deviced.shards="$T/A" $DEVOPTS
kept_quiet 1
grep -q "DISTILL: automatic run: 4 users with a new patch on v1 (distill.buffer reached)" \
    "$T/cloudd.log" || die "no buffered run"
grep "DISTILL: v1 kept: " "$T/cloudd.log" | grep -q " [1-9][0-9]* soft samples" ||
    die "the kept run had no teachers"
# The devices stay on v1: one download each, one patch each.
[ "$(grep -c 'DOWNLOAD: device=.* model v' "$T/A.log")" = 4 ] ||
    die "downloads: $(grep 'DOWNLOAD: device=' "$T/A.log")"
[ "$(sql 'SELECT count(*) FROM patches')" = 4 ] || die "patches: $(sql 'SELECT count(*) FROM patches')"

log "dcctl distill after a kept run"
out=$(dcctl distill) || die "dcctl distill: $out"
echo "$out"
echo "$out" | grep -q "base v1): 4 patches, 0 stale used" || die "reply: $out"
kept_quiet 2

log "4 new users"
# shellcheck disable=SC2086
start_deviced B -o deviced.shards="$T/B" $DEVOPTS
kept_quiet 3
[ "$(grep -c 'DISTILL: automatic run: 4 users with a new patch on v1' "$T/cloudd.log")" = 2 ] ||
    die "the new users' patches did not start a run"
grep "DISTILL: v1: " "$T/cloudd.log" | tail -n 1 | grep -q "v1: 8 fresh patches" ||
    die "run 3 did not use all 8 users: $(grep 'DISTILL: v1: ' "$T/cloudd.log" | tail -n 1)"
m=$(dcctl metrics) || die "dcctl metrics"
echo "$m" | grep -q '^dccl_distill_runs_total{result="kept"} 3$' &&
    echo "$m" | grep -q '^dccl_distill_runs_total{result="new"} 0$' ||
    die "metrics: $(echo "$m" | grep distill)"
[ "$(grep -c 'DOWNLOAD: device=.* model v' "$T/A.log")" = 4 ] || die "group A downloaded again"

log "synchronous (restart with distill.min-patches=4)"
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit"
# shellcheck disable=SC2086
start_cloudd -o distill.min-patches=4 $CLOUDOPTS
# The used patches stay used across the restart: no run within 15 cron
# ticks of the restart, and the trigger counts no pending user.
r=$(runs)
sleep 3
[ "$(runs)" = "$r" ] || die "a run started on the used patches after the restart"
m=$(dcctl metrics) || die "dcctl metrics"
echo "$m" | grep -q '^dccl_distill_pending_users 0$' ||
    die "pending after the restart: $(echo "$m" | grep pending)"
[ "$(kept)" = 3 ] || die "$(kept) kept runs, expected 3"
# shellcheck disable=SC2086
start_deviced C -o deviced.shards="$T/C" $DEVOPTS
kept_quiet 4
grep "DISTILL: automatic run: " "$T/cloudd.log" | tail -n 1 |
    grep -q "4 users with a patch on v1 (distill.min-patches reached)" ||
    die "group C's run: $(grep 'DISTILL: automatic run: ' "$T/cloudd.log" | tail -n 1)"
[ "$(grep -c 'DOWNLOAD: device=.* model v' "$T/A.log" "$T/B.log" "$T/C.log" |
    awk -F: '{ s += $2 } END { print s }')" = 12 ] || die "devices downloaded again"
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit"
grep -q "EXIT: clean shutdown" "$T/cloudd.log" || die "no clean exit"
echo "distill_kept OK"
