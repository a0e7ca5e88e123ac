# Hostile and broken input: each gets a typed Error (or, for an oversized
# message that nanomsg drops, no reply) and cloudd keeps serving others.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
start_cloudd -o limits.max-message=65536 -o limits.chunk-size=16384
P="$BIN/dccl-probe $EP"
expect() {	# probe-args... -- expected-prefix
	out=$($P $1 2>&1) || die "probe $1 failed: $out"
	case $out in "$2"*) echo "ok: $1 -> $out" ;; *) die "probe $1: got '$out', want '$2'" ;; esac
}
expect garbage "ERROR E_BAD_REQUEST"
expect version "ERROR E_VERSION"
expect oldversion "ERROR E_VERSION"
expect nobody "ERROR E_UNKNOWN_BODY"
expect replybody "ERROR E_UNKNOWN_BODY"
expect unregistered "ERROR E_NOT_REGISTERED"
expect admin "ERROR E_FORBIDDEN"
expect "oversize 200000" "NO-REPLY"
expect "register dev-x" "REPLY registered"
expect "nan-upload dev-x" "ERROR E_BAD_TENSOR"
expect status "REPLY status"
grep -q "RPC-ERROR: E_BAD_REQUEST" "$T/cloudd.log" || die "no log line"
kill -0 "$CPID" || die "cloudd died"
dcctl status | grep -q "errors" || die "dcctl status"
[ "$(sql 'SELECT count(*) FROM patches')" = 0 ] || die "a bad patch was stored"
# Authentication (auth.mode = mac, the default): unsigned, forged,
# replayed, wrong-token and other-device requests get E_UNAUTHENTICATED
# and are logged; a poisoned (huge-norm) patch is refused.
expect unsigned "ERROR E_UNAUTHENTICATED"
expect forged "ERROR E_UNAUTHENTICATED"
out=$($P replay 2>&1)
case $out in "REPLY status"*"ERROR E_UNAUTHENTICATED"*replayed*) echo "ok: replay -> $out" ;;
*) die "replay: got '$out'" ;; esac
expect "badtoken dev-evil" "ERROR E_UNAUTHENTICATED"
expect "register dev-y" "REPLY registered"
expect "other-device dev-x dev-y" "ERROR E_UNAUTHENTICATED"
expect "bignorm-upload dev-x" "ERROR E_BAD_TENSOR"
grep -q "RPC-ERROR: E_UNAUTHENTICATED .*MAC check failed" "$T/cloudd.log" || die "no forged log line"
grep -q "RPC-ERROR: E_UNAUTHENTICATED .*replayed" "$T/cloudd.log" || die "no replay log line"
[ "$(sql 'SELECT count(*) FROM patches')" = 0 ] || die "a bad patch was stored"
[ "$(sql "SELECT count(*) FROM device_keys WHERE device_id='dev-evil'")" = 0 ] ||
    die "a wrong-token device was enrolled"
kill -0 "$CPID" || die "cloudd died"
