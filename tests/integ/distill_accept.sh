# The acceptance test (distill.accept-z): a distillation whose best epoch
# beats the current model on validation still publishes nothing unless
# its gain stands accept-z clustered standard errors above 0. v1 is
# trained for one epoch without the item prior and the devices' guard
# adopts every positive-CV patch, so distilling improves validation (the
# run distill.sh accepts). With accept-z 100 no gain clears the bar: the
# run is kept, with the gain in its log line, and no v2 exists. Restarted
# with accept-z 0 (any gain), the same request makes v2 with the same
# gain.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 8 60
import_pool
OPTS="-o train.epochs=1 -o train.item-prior=no -o ofa.enable=no"
# shellcheck disable=SC2086
start_cloudd -o distill.accept-z=100 $OPTS
wait_model 1
patches_on() { sql "SELECT count(DISTINCT device_id) FROM patches WHERE base_version = $1"; }
start_deviced devs -o deviced.shards="$SHARDS" -o deviced.run-once=yes \
    -o learn.guard-z=0 -o learn.guard-rank=no
wait_for "[ \$(patches_on 1) = 8 ]" 600 0.1 || die "patches on v1: $(patches_on 1)"
wait "$DPID" 2>/dev/null || true

log "accept-z 100: the run is kept"
out=$(dcctl distill 2) || die "dcctl distill: $out"
echo "$out" | grep -q "base v1): 8 patches" || die "reply: $out"
wait_for "grep -q 'DISTILL: v1 kept: ' '$T/cloudd.log'" 600 0.1 || die "no kept line"
line=$(grep "DISTILL: v1 kept: " "$T/cloudd.log")
echo "$line" | sed 's/.*DISTILL: /  /'
echo "$line" | grep -q "(best epoch [1-9][0-9]* of 2)" || die "best epoch 0: not the gate's refusal"
echo "$line" | grep -q "; val gain 0\.[0-9]* (se 0\.[0-9]*) below distill.accept-z; no new version" ||
    die "no positive gain below the bar in: $line"
gain=$(echo "$line" | sed -n 's/.*; val gain \([0-9.]*\) .*/\1/p')
[ "$(sql 'SELECT count(*) FROM models')" = 1 ] || die "models stored: $(sql 'SELECT version FROM models')"
grep -q "ANNOUNCE: model v2" "$T/cloudd.log" && die "v2 announced"

log "accept-z 0: the same run makes v2"
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit"
# shellcheck disable=SC2086
start_cloudd -o distill.accept-z=0 $OPTS
dcctl_busy distill 2
wait_model 2
line=$(grep "DISTILL: model v2 from v1: " "$T/cloudd.log") || die "no v2 line"
echo "$line" | sed 's/.*DISTILL: /  /'
# The same run, deterministic: the same gain, now over the bar.
echo "$line" | grep -q "; val gain $gain (se 0\.[0-9]*)\$" || die "not the same gain ($gain): $line"
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit"
grep -q "EXIT: clean shutdown" "$T/cloudd.log" || die "no clean exit"
echo "distill_accept OK (gain $gain refused at accept-z 100, accepted at 0)"
