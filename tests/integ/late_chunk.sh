# A model chunk that arrives after its request's deadline is kept when it
# is the chunk the download needs (deviced/device.c, late_chunk; issue
# 14): cloudd is stopped (SIGSTOP) for 1.2 s at a time during a download
# of ~600 chunks of 1 KiB, longer than the device's 400 ms deadline, so
# the device gives up on requests that cloudd answers once it runs again.
# The device keeps at least one such late chunk (its TRAFFIC line counts
# them), installs the model (whole-model checksum checked) and finishes.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 10
import_pool
start_cloudd -o limits.chunk-size=1024 -o train.dim=128 -o train.hidden1=512 \
    -o train.epochs=1 -o limits.rate=0
wait_model 1
first=$(ls "$SHARDS" | grep local | sort -n | head -1)
u=${first%%.*}
start_deviced dev -o deviced.local-data="$SHARDS/$first" -o deviced.user-id="$u" \
    -o deviced.device-id=late -o deviced.run-once=yes \
    -o net.request-timeout-ms=400 -o net.resend-ms=400 \
    -o net.backoff-min-ms=2000 -o net.backoff-max-ms=2000
db=$T/dev/late/device.db
wait_for "[ \"\$(sqlite3 '$db' 'SELECT count(*) FROM download' 2>/dev/null || echo 0)\" -ge 20 ]" 300 0.01 ||
    die "download did not start"
for i in 1 2 3 4 5; do
	kill -STOP "$CPID"
	sleep 1.2
	kill -CONT "$CPID"
	sleep 0.3
	kill -0 "$DPID" 2>/dev/null || break
done
wait "$DPID" || die "deviced exit $?"
grep -q "DOWNLOAD: device=late model v1 installed" "$T/dev.log" || die "not installed"
grep -q "DONE: device=late" "$T/dev.log" || die "device not done"
line=$(grep "TRAFFIC:" "$T/dev.log") || die "no TRAFFIC line"
echo "$line"
kept=$(echo "$line" | sed -n 's/.* \([0-9]*\) late chunks kept.*/\1/p')
tmo=$(echo "$line" | sed -n 's/.* \([0-9]*\) timeouts.*/\1/p')
[ "${tmo:-0}" -ge 1 ] || die "no request timed out: the stops did not bite"
[ "${kept:-0}" -ge 1 ] || die "no late chunk kept ($tmo timeouts)"
echo "late_chunk OK: $tmo timeouts, $kept late chunks kept"
