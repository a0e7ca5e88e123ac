# Late replies: the cloud stops (SIGSTOP) while 20 devices register, so
# each device re-sends (net.resend-ms) on a second lane of the uplink
# (deviced/uplink.h: two lanes per device at most) and, once the cloud
# continues, receives a reply to each send: the first answers the
# request, the later ones arrive for a request the device has moved on
# from. nanomsg 1.1.5's REQ socket aborts on those (nn_recvmsg:
# NN_CHUNK_TAG assertion); deviced matches replies itself on a raw
# socket, so it must drop them and still finish every device.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 20 60
import_pool
start_cloudd -o cloudd.workers=1
wait_model 1
kill -STOP "$CPID"
start_deviced devs -o deviced.shards="$SHARDS" -o deviced.run-once=yes \
    -o learn.coda=yes -o learn.steps=1 -o net.resend-ms=100 \
    -o net.request-timeout-ms=5000 -o net.backoff-min-ms=10 \
    -o net.backoff-max-ms=200 -o net.start-jitter-ms=0 -o net.uplink-lanes=40 \
    -o deviced.log-level=debug
sleep 1.5	# the devices load, send, re-send (the log is read at the end)
kill -CONT "$CPID"
rc=0; wait "$DPID" || rc=$?
grep -q "Assertion failed" "$T/devs.log" && die "nanomsg assertion"
[ $rc = 0 ] || die "deviced exit $rc"
n=$(sql 'SELECT count(DISTINCT device_id) FROM patches')
[ "$n" = 20 ] || die "patches from $n of 20 devices"
# The scenario must really have happened: re-sends, and replies to them
# that arrived late and were dropped.
nr=$(grep -c 'RESEND: ' "$T/devs.log" || true)
nl=$(grep -c 'LATE: ' "$T/devs.log" || true)
[ "$nr" -ge 20 ] || die "only $nr re-sends: the scenario did not provoke late replies"
[ "$nl" -ge 10 ] || die "only $nl late replies dropped"
echo "late replies OK: $nr re-sends, $nl late replies dropped"
