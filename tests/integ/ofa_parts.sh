# GetOfa requests alternating between parts (the base, block 0, blocks 0
# and 1) must not rebuild a part per request (issue 13, low: each such
# request cost a store read, unpack, pack and hash on the loop). Each part
# is packed once per version and then served from the part cache: 30
# alternating requests pack 3 parts. The old code packed one per request
# (it kept one part), and did not log the count at all.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 6 60
import_pool
start_cloudd
wait_model 1
grep -q "OFA: model for v1" "$T/cloudd.log" || die "no OFA model trained"
out=$("$BIN/dccl-probe" "$EP" ofa-alternate alt 30)
echo "$out"
[ "$out" = "OFA-ALTERNATE 30 0" ] || die "GetOfa replies: $out"
kill -TERM "$CPID"
wait "$CPID" || die "cloudd exit status"
line=$(grep "OFA: .* parts packed" "$T/cloudd.log") ||
    die "no part-cache count at exit"
echo "${line#*OFA: }"
packed=$(echo "$line" | sed -n 's/.*OFA: \([0-9]*\) parts packed, \([0-9]*\) requests.*/\1/p')
hits=$(echo "$line" | sed -n 's/.*OFA: \([0-9]*\) parts packed, \([0-9]*\) requests.*/\2/p')
[ "$packed" = 3 ] || die "$packed parts packed for 3 distinct parts"
[ "$hits" = 27 ] || die "$hits of 30 requests from the cache, want 27"
echo "PASS"
