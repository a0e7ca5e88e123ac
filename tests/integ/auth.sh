# Authentication end to end. auth.mode=encrypt: devices enroll with the
# token, every request is signed and its payload encrypted, all patches
# land. A device with the wrong token is refused and stores nothing; a
# device that lost its key cannot take over its old id (auth.rekey=no); a
# flooding device is rate-limited with E_RATE_LIMITED while another device
# is still answered at once; device keys and counters survive a restart.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 6
import_pool
start_cloudd -o auth.mode=encrypt -o limits.rate=5 -o limits.burst=10
wait_model 1
grep -q "AUTH: mode encrypt" "$T/cloudd.log" || die "no AUTH line"
log "devices (encrypt)"
start_deviced devs -o deviced.shards="$SHARDS" -o deviced.run-once=yes
wait "$DPID" || die "deviced exit $?"
[ "$(sql 'SELECT count(DISTINCT device_id) FROM patches')" = 6 ] || die "patches"
[ "$(sql 'SELECT count(*) FROM device_keys')" = 6 ] || die "keys"
grep -q "CLOUD-ERROR" "$T/devs.log" && die "a device got an error"
grep -q "RPC-ERROR" "$T/cloudd.log" && die "cloudd refused a request"
[ "$(grep -c 'AUTH-ENROLL' "$T/cloudd.log")" = 6 ] || die "enroll lines"
log "wrong token"
first=$(ls "$SHARDS" | grep local | sort -n | head -1)
start_deviced evil -o deviced.local-data="$SHARDS/$first" -o deviced.user-id=0 \
    -o deviced.device-id=evil -o auth.token=wrong-token
wait_for "grep -q 'CLOUD-ERROR: device=evil register: E_UNAUTHENTICATED' '$T/evil.log'" 50 0.1 ||
    die "wrong token not refused"
kill "$DPID"; wait "$DPID" || true
[ "$(sql "SELECT count(*) FROM device_keys WHERE device_id='evil'")" = 0 ] ||
    die "evil enrolled"
log "lost key: no takeover of an enrolled id"
dev=$(ls "$T/dev" | head -1)
rm "$T/dev/$dev/auth.key"
u=${dev##*-}
start_deviced lost -o deviced.local-data="$SHARDS/$u.local.csv" -o deviced.user-id="$u" \
    -o deviced.device-id="$dev"
wait_for "grep -q 'E_UNAUTHENTICATED: device $dev is enrolled with another key' '$T/lost.log'" 50 0.1 ||
    die "rekey not refused"
kill "$DPID"; wait "$DPID" || true
log "rate limit"
# The flood runs in the background; another device's request is sent
# once the flood is being refused and must be answered while it still
# runs. It runs until told to stop (flood.stop), however slow this
# machine is.
"$BIN/dccl-probe" "$EP" flood flooder 1000000 "$T/flood.stop" >"$T/flood.out" 2>&1 &
FPID=$!; PIDS="$PIDS $FPID"
wait_for "grep -q 'RPC-ERROR: E_RATE_LIMITED device=flooder' '$T/cloudd.log'" 100 0.05 ||
    die "the flood is not rate-limited"
t0=$(date +%s%N)
"$BIN/dccl-probe" "$EP" status | grep -q "REPLY status" || die "another device stalled"
t1=$(date +%s%N)
kill -0 "$FPID" 2>/dev/null || die "the flood ended before the other device was answered"
echo "other device answered in $(( (t1 - t0) / 1000000 )) ms during the flood"
: >"$T/flood.stop"
wait "$FPID" || die "flood probe exit $?"
out=$(cat "$T/flood.out")
echo "$out"
case $out in "FLOOD ok "*" rate-limited 0 "*) die "no rate limit: $out" ;; "FLOOD ok "*) ;; *) die "flood: $out" ;; esac
grep -q "RPC-ERROR: E_RATE_LIMITED device=flooder" "$T/cloudd.log" || die "no rate-limit log"
log "restart keeps keys and counters"
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit"
before=$(sql "SELECT counter FROM device_keys WHERE device_id='probe'")
[ "$before" -gt 0 ] || die "counter not persisted"
start_cloudd -o auth.mode=encrypt
wait_for "[ \$(grep -c 'READY: cloudd' '$T/cloudd.log') -ge 2 ]" 100 0.1 || die "no restart"
grep "AUTH: mode" "$T/cloudd.log" | tail -1 | grep -q "mode encrypt, 8 enrolled" || die "keys not reloaded: $(grep AUTH: "$T/cloudd.log" | tail -1)"
"$BIN/dccl-probe" "$EP" status | grep -q "REPLY status" || die "status after restart"
echo "auth OK"
