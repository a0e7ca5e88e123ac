# Download pacing (cloudd/dlpace.h, issue 14): chunk requests beyond
# limits.download-rate get E_BUSY at once, with a retry-after of at least
# the bucket's refill time for the chunk; the chunk is served once that
# time has passed; with the rate at 0 nothing is refused (the control).
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 6 60
import_pool
# 0.01 MiB/s = 10,485 bytes/s: one 16 KiB chunk per 1.56 s.
start_cloudd -o limits.chunk-size=16384 -o limits.download-rate=0.01 \
    -o limits.rate=0
wait_model 1
P="$BIN/dccl-probe $EP"
$P register dev-p | grep -q "REPLY registered" || die "register failed"
out=$($P chunk-flood dev-p 5) || die "chunk-flood failed: $out"
echo "rate 0.01 MiB/s: $out"
set -- $out
[ "$3" = 1 ] && [ "$5" = 4 ] && [ "$7" = 0 ] ||
    die "want 1 chunk and 4 E_BUSY, got: $out"
lo=${9%%..*}; hi=${9##*..}
# The refill time of one chunk is 1,563 ms, less what was already refilled.
[ "$lo" -ge 1000 ] && [ "$hi" -le 2000 ] ||
    die "retry-after $lo..$hi ms is not the bucket's refill time (~1563)"
sleep 2
out=$($P getmodel dev-p 1 0) || die "getmodel failed: $out"
case $out in "REPLY model_chunk"*) echo "after the retry-after: $out" ;;
*) die "after the retry-after: $out" ;; esac
# The control: no bound, the same flood is served whole.
kill -TERM "$CPID"; wait "$CPID" 2>/dev/null || true
grep -q "DLPACE: 2 chunks sent, 4 refused" "$T/cloudd.log" ||
    die "cloudd's DLPACE counters: $(grep DLPACE "$T/cloudd.log")"
start_cloudd -o limits.chunk-size=16384 -o limits.download-rate=0 \
    -o limits.rate=0
out=$($P chunk-flood dev-p 5) || die "chunk-flood failed: $out"
echo "rate 0 (no bound): $out"
set -- $out
[ "$3" = 5 ] && [ "$5" = 0 ] || die "want 5 chunks and no E_BUSY, got: $out"
echo "PASS: dlpace"
