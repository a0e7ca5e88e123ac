# Late replies: with a resend interval and request timeout far below the
# cloud's reply latency (one worker, retrievals queued behind each other),
# the devices' sockets receive many replies to requests they have already
# re-sent or given up on. nanomsg 1.1.5's REQ socket aborts on those
# (nn_recvmsg: NN_CHUNK_TAG assertion); deviced matches replies itself on
# a raw socket, so it must drop them and still finish every device. The
# uplink's 64 lanes (the most) put 64 requests at a time before the one
# worker, so replies come late; a request still waiting for a lane is not
# re-sent (deviced/uplink.h).
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 400 60
import_pool
start_cloudd -o cloudd.workers=1
wait_model 1
start_deviced devs -o deviced.shards="$SHARDS" -o deviced.run-once=yes \
    -o learn.coda=yes -o learn.steps=1 -o net.resend-ms=100 \
    -o net.uplink-lanes=64 \
    -o net.request-timeout-ms=2000 -o net.backoff-min-ms=10 \
    -o net.backoff-max-ms=200 -o deviced.log-level=debug
rc=0; wait "$DPID" || rc=$?
grep -q "Assertion failed" "$T/devs.log" && die "nanomsg assertion"
[ $rc = 0 ] || die "deviced exit $rc"
n=$(sql 'SELECT count(DISTINCT device_id) FROM patches')
[ "$n" = 400 ] || die "patches from $n of 400 devices"
# The scenario must really have happened: re-sends, and replies to them
# that arrived late and were dropped.
nr=$(grep -c 'RESEND: ' "$T/devs.log" || true)
nl=$(grep -c 'LATE: ' "$T/devs.log" || true)
[ "$nr" -ge 50 ] || die "only $nr re-sends: the scenario did not provoke late replies"
[ "$nl" -ge 10 ] || die "only $nl late replies dropped"
echo "late replies OK: $nr re-sends, $nl late replies dropped"
