# Download slots (cloudd/dlslots.h): with limits.max-download-bytes equal
# to one chunk, one device downloads at a time. A second device's chunk
# request gets E_BUSY with a retry-after hint while the first holds the
# slot; the first keeps being served (its own slot, renewed); once it has
# asked for its last chunk the slot drains (DLSLOTS_DRAIN_MS) and the
# second is served. Out-of-range requests take no slot. A deviced
# refused while the slot is held retries on the hint and downloads.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 6 60
import_pool
start_cloudd -o limits.chunk-size=16384 -o limits.max-download-bytes=16384
wait_model 1
P="$BIN/dccl-probe $EP"
expect() {	# "probe args" expected-prefix
	out=$($P $1 2>&1) || die "probe $1 failed: $out"
	case $out in "$2"*) echo "ok: $1 -> $out" ;; *) die "probe $1: got '$out', want '$2'" ;; esac
}
expect "register dev-a" "REPLY registered"
expect "register dev-b" "REPLY registered"
# The chunk count, from the out-of-range error (no slot taken by it).
out=$($P getmodel dev-a 1 4000000000 2>&1)
n=$(echo "$out" | sed -n 's/.*(model v1 has \([0-9]*\)).*/\1/p')
[ -n "$n" ] && [ "$n" -ge 3 ] || die "chunk count not found or < 3: $out"
expect "getmodel dev-a 1 0" "REPLY model_chunk"
expect "getmodel dev-b 1 0" "ERROR E_BUSY"
expect "getmodel dev-a 1 1" "REPLY model_chunk"
expect "getmodel dev-b 1 0" "ERROR E_BUSY"
expect "getmodel dev-a 1 $((n - 1))" "REPLY model_chunk"
sleep 0.5	# > DLSLOTS_DRAIN_MS
expect "getmodel dev-b 1 0" "REPLY model_chunk"
expect "getmodel dev-a 1 0" "ERROR E_BUSY"
# dev-b holds the slot: a deviced starting now is refused with a
# retry-after hint until the slot expires (DLSLOTS_IDLE_MS), then
# downloads, every chunk checked against the manifest, and finishes its
# round.
first=$(ls "$SHARDS" | grep local | sort -n | head -1)
start_deviced dev -o deviced.local-data="$SHARDS/$first" \
    -o deviced.user-id="${first%%.*}" -o deviced.device-id=dev-c \
    -o deviced.run-once=yes
wait "$DPID" || die "deviced exit $?"
grep -q "DOWNLOAD: device=dev-c model v1 installed (.*checked per chunk)" \
    "$T/dev.log" || die "dev-c's download was not installed checked per chunk"
kill -TERM "$CPID"
wait_for "grep -q 'DLSLOTS: 1 download slots' '$T/cloudd.log'" 20 0.1 ||
    die "no DLSLOTS line at stop"
refused=$(sed -n 's/.*DLSLOTS: 1 download slots, \([0-9]*\) chunk.*/\1/p' "$T/cloudd.log")
log "chunk requests refused: $refused (3 probes, the rest deviced's)"
[ "$refused" -ge 4 ] || die "want the 3 probes' refusals and deviced's, got $refused"
grep -q "TRAFFIC: .* [1-9][0-9]* busy" "$T/dev.log" || die "deviced saw no E_BUSY"
echo "download slots OK"
