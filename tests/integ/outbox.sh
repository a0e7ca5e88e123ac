# deviced killed mid-upload: the upload is persisted in the device's outbox
# before it is sent, so a restarted deviced re-sends it with the same
# request id, and the cloud stores it exactly once. The cloud is frozen
# (SIGSTOP) after the device's first round, and an app event makes it
# train again and upload, so that upload is sent but not answered; deviced is then killed with SIGKILL,
# the cloud resumed (it reads the upload, its reply has nowhere to go),
# and deviced restarted on the same state directory.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 4 60
import_pool
start_cloudd
wait_model 1
u=$(ls "$SHARDS" | sed -n 's/\.local\.csv$//p' | sort -n | head -n 1)
# No retrieval: the second learning job must not need the frozen cloud
# before its upload (a retrieval would wait for it, and nothing would be in
# the outbox when the device is killed).
DEV="-o deviced.device-id=box -o deviced.user-id=$u -o deviced.local-data=$SHARDS/$u.local.csv -o learn.retrieve-k=0"
# shellcheck disable=SC2086
start_deviced first $DEV -o net.request-timeout-ms=60000 -o net.resend-ms=60000 \
    -o deviced.app-listen='ipc://{dir}/app.ipc' -o learn.retrain-every=1
wait_for "grep -q 'ACK: device=box ' '$T/first.log'" 300 0.1 || die "no first round"
# The cloud freezes; an app event makes the device train again and upload.
kill -STOP "$CPID"
item=$(grep -v '^#' "$SHARDS/$u.local.csv" | grep -v '^user' | tail -1 | cut -d, -f2)
"$BIN/dcctl" device -s "ipc://$T/dev/box/app.ipc" -t 10 event "$item" 1 1 >/dev/null ||
    { kill -CONT "$CPID"; die "app event failed"; }
wait_for "[ \$(grep -c ': TRAIN: device=box ' '$T/first.log') -ge 2 ]" 300 0.05 ||
    { kill -CONT "$CPID"; die "no second training"; }
# The new patch is in the outbox (written before the send), unacknowledged.
wait_for "[ \"\$(sqlite3 '$T/dev/box/device.db' 'SELECT count(*) FROM outbox WHERE acked = 0' 2>/dev/null)\" = 1 ]" 300 0.05 ||
    { kill -CONT "$CPID"; die "no unacknowledged outbox entry"; }
kill -9 "$DPID"; wait "$DPID" 2>/dev/null || true
[ "$(grep -c "ACK: device=box" "$T/first.log")" = 1 ] ||
    { kill -CONT "$CPID"; die "the cloud answered while stopped"; }
kill -CONT "$CPID"
log "restart on the same state"
# shellcheck disable=SC2086
start_deviced second $DEV -o deviced.run-once=yes
rc=0; wait "$DPID" || rc=$?
[ $rc = 0 ] || die "restarted deviced exit $rc"
ack=$(sed -n 's/.*ACK: device=box req=\([0-9]*\) .*/\1/p' "$T/second.log" | head -n 1)
[ -n "$ack" ] || die "the restarted device got no ACK"
# The acknowledged request is the one the first process sent: the cloud
# logged it (or stores it) under that request id, once.
n=$(sql "SELECT count(*) FROM patches WHERE device_id = 'box' AND request_id = $ack")
[ "$n" = 1 ] || die "request $ack stored $n times"
[ "$(sql "SELECT count(*) FROM patches WHERE device_id = 'box'")" = 2 ] ||
    die "want the 2 rounds' patches once each: $(sql "SELECT request_id FROM patches WHERE device_id = 'box'")"
first=$(sed -n 's/.*ACK: device=box req=\([0-9]*\) .*/\1/p' "$T/first.log" | head -n 1)
[ "$ack" != "$first" ] || die "the re-sent upload reused the first round's id"
grep "ACK: device=box" "$T/second.log"
echo "outbox OK: request $ack, sent by the killed process, re-sent from the outbox and stored once"
