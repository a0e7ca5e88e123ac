# cloudd is killed with SIGKILL while devices are mid-round and restarted on
# the same database: the devices back off, retry and finish by themselves;
# every patch a device saw acknowledged is in the cloud's database; the
# database passes integrity_check.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 200
import_pool
start_cloudd
wait_model 1
# Long device training (tiny lr, many SGD steps) makes the round last a few
# seconds, so the kill lands mid-round.
start_deviced devs -o deviced.shards="$SHARDS" -o deviced.run-once=yes \
    -o learn.steps=150 -o learn.lr=0.000001
DP=$DPID
wait_for "[ \$(grep -c 'ACK: ' '$T/devs.log') -ge 5 ]" 3000 0.02 || die "no first acks"
log "SIGKILL cloudd mid-round"
kill -9 "$CPID"
wait "$CPID" 2>/dev/null || true
acked_before=$(grep -c 'ACK: ' "$T/devs.log" || true)
# Reaped above: its sockets are closed, the restart can bind at once.
start_cloudd
wait_for "! kill -0 $DP 2>/dev/null" 900 0.1 || die "devices did not finish"
rc=0; wait "$DP" || rc=$?
[ $rc = 0 ] || die "deviced exit $rc"
# The kill landed mid-round, and the rest of the round went to the
# restarted cloudd (nanomsg's REQ resend or the device's own retry).
[ "$acked_before" -lt 200 ] || die "the round was over before the kill"
after=$(awk '/READY: cloudd/{n++} n==2 && /UPLOAD: /{c++} END{print c+0}' "$T/cloudd.log")
[ "$after" -gt 0 ] || die "no upload reached the restarted cloudd"
# Every acknowledged (device, request id) must be stored.
grep 'ACK: ' "$T/devs.log" | sed 's/.*device=\([^ ]*\) req=\([0-9]*\).*/\1 \2/' |
while read -r dev req; do
	n=$(sql "SELECT count(*) FROM patches WHERE device_id='$dev' AND request_id=$req")
	[ "$n" = 1 ] || { echo "LOST: $dev $req"; exit 1; }
done || die "an acknowledged patch is missing"
total=$(sql "SELECT count(DISTINCT device_id) FROM patches")
[ "$total" = 200 ] || die "expected patches from 200 devices, got $total"
[ "$(sql 'PRAGMA integrity_check')" = ok ] || die "integrity"
echo "acked before kill: $acked_before of 200; $after uploads after restart; all 200 stored"
