# SIGTERM during training stops cloudd within a bound with exit 0 and no
# half-written model; a restart trains again. deviced exits 0 on SIGTERM
# while waiting for an unreachable cloud (backoff, no busy loop).
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 300 200
import_pool
start_cloudd -o train.epochs=200 -o train.patience=0 -o train.hidden1=512 \
    -o train.hidden2=256
wait_for "grep -q 'TRAIN: epoch 1 ' '$T/cloudd.log'" 300 0.1 || die "training never started"
t0=$(date +%s)
kill -TERM "$CPID"
wait_for "! kill -0 $CPID 2>/dev/null" 100 0.1 || die "cloudd ignored SIGTERM during training"
rc=0; wait "$CPID" || rc=$?
[ $rc = 0 ] || die "exit $rc"
[ $(( $(date +%s) - t0 )) -le 10 ] || die "took too long"
grep -q "TRAIN: no new model: stopped" "$T/cloudd.log" || die "no stop line"
[ "$(sql 'SELECT count(*) FROM models')" = 0 ] || die "a model was stored"
log "a restart trains again"
start_cloudd -o train.epochs=2
wait_model 1
[ "$(sql 'SELECT count(*) FROM models')" = 1 ] || die "the restart stored no model"
[ "$(grep -c 'TRAIN: epoch 1 ' "$T/cloudd.log")" -ge 2 ] || die "the restart did not train"
kill -TERM "$CPID"
rc=0; wait "$CPID" || rc=$?
[ $rc = 0 ] || die "restarted cloudd exit $rc"
log "deviced against a dead cloud"
start_deviced lonely -o deviced.local-data="$SHARDS/0.local.csv" \
    -o net.request-timeout-ms=300 -o net.backoff-min-ms=50 -o net.backoff-max-ms=400
wait_for "[ \$(grep -c 'RETRY: ' '$T/lonely.log') -ge 3 ]" 100 0.1 || die "no retries"
n1=$(grep -c 'RETRY: ' "$T/lonely.log")
sleep 1
n2=$(grep -c 'RETRY: ' "$T/lonely.log")
[ $((n2 - n1)) -le 8 ] || die "retrying too fast: $((n2 - n1))/s"
kill -TERM "$DPID"
rc=0; wait "$DPID" || rc=$?
[ $rc = 0 ] || die "deviced exit $rc"
