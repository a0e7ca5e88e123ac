# Out-of-range requests through the real handlers (the fuzz harness only
# reaches the pure checks): model chunks past the end, unknown versions,
# retrievals with k or n above the limits, a dimension that is not the
# model's, and vectors that do not match n * dim each get a typed error;
# in-range requests still work, and cloudd keeps serving.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 6 60
import_pool
start_cloudd -o limits.chunk-size=16384 -o limits.max-k=50 -o limits.max-queries=8
wait_model 1
P="$BIN/dccl-probe $EP"
expect() {	# "probe args" expected-prefix
	out=$($P $1 2>&1) || die "probe $1 failed: $out"
	case $out in "$2"*) echo "ok: $1 -> $out" ;; *) die "probe $1: got '$out', want '$2'" ;; esac
}
expect "register dev-r" "REPLY registered"
expect "getmodel dev-r 1 0" "REPLY model_chunk"
expect "getmodel dev-r 1 4000000000" "ERROR E_NOT_FOUND"
expect "getmodel dev-r 999 0" "ERROR E_NOT_FOUND"
expect "retrieve dev-r 10 1 48" "REPLY samples"
expect "retrieve dev-r 51 1 48" "ERROR E_TOO_LARGE"
expect "retrieve dev-r 10 9 48" "ERROR E_BAD_REQUEST"
expect "retrieve dev-r 10 1 7" "ERROR E_BAD_REQUEST"
expect "retrieve dev-r 10 0 48" "ERROR E_BAD_REQUEST"
expect "retrieve dev-r 0 1 48" "ERROR E_TOO_LARGE"
expect "retrieve dev-r 10 2000 48" "ERROR E_BAD_REQUEST"
# None of these was a crash or a hang: cloudd still answers and runs.
expect status "REPLY status"
kill -0 "$CPID" || die "cloudd died"
grep -q "RPC-ERROR: " "$T/cloudd.log" || die "no error logged"
echo "bad requests OK"
