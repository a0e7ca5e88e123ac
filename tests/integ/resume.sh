# deviced killed with SIGKILL in the middle of a model download (a ~1.5 MB
# model in 1 KiB chunks) resumes from the chunks in its own store after a
# restart: it logs the chunk it resumes at, installs the model (checksum
# checked) and the cloud serves fewer GetModel requests than a download
# from scratch would have needed in addition. The chunk file beside the
# store is cut short before the restart, as a power cut can leave it: the
# download resumes at the last chunk the file holds whole.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 10
import_pool
start_cloudd -o limits.chunk-size=1024 -o train.dim=128 -o train.hidden1=512 \
    -o train.epochs=1
wait_model 1
size=$(dcctl models | awk '$1 == 1 {print $3}')
chunks=$(( (size + 1023) / 1024 ))
log "model v1: $size bytes, $chunks chunks"
[ "$chunks" -ge 600 ] || die "model too small for the test ($chunks chunks)"
first=$(ls "$SHARDS" | grep local | sort -n | head -1)
u=${first%%.*}
start_deviced dev -o deviced.local-data="$SHARDS/$first" -o deviced.user-id="$u" \
    -o deviced.device-id=slow -o deviced.run-once=yes
db=$T/dev/slow/device.db
wait_for "[ \"\$(sqlite3 '$db' 'SELECT count(*) FROM download' 2>/dev/null || echo 0)\" -ge 200 ]" 300 0.01 ||
    die "download did not start"
kill -9 "$DPID"
wait "$DPID" 2>/dev/null || true
have=$(sqlite3 "$db" 'SELECT count(*) FROM download')
log "SIGKILL with $have of $chunks chunks stored"
# The chunks' bytes are in the file beside the store, the rows say which
# are whole (deviced/dstore_dl.c): the file holds at least those.
bytes=$(stat -c %s "$db-download") || die "no chunk file beside the store"
[ "$bytes" -ge $((have * 1024)) ] || die "chunk file has $bytes bytes for $have chunks"
# A power cut can lose bytes whose rows had committed: cut the file inside
# chunk have-2. The restart must resume there, not at have, and the
# whole-model hash below must still pass.
truncate -s $(((have - 2) * 1024 + 500)) "$db-download"
whole=$((have - 2))
[ "$have" -lt "$chunks" ] || die "the download had finished before the kill"
start_deviced dev -o deviced.local-data="$SHARDS/$first" -o deviced.user-id="$u" \
    -o deviced.device-id=slow -o deviced.run-once=yes
wait "$DPID" || die "deviced exit $?"
line=$(grep "DOWNLOAD: device=slow resuming model v1 at chunk" "$T/dev.log") || die "no resume line"
echo "$line"
at=$(echo "$line" | sed 's/.* at chunk \([0-9]*\).*/\1/')
[ "$at" -eq "$whole" ] || die "resumed at $at, $whole were whole in the file ($have rows)"
grep -q "DOWNLOAD: device=slow model v1 installed" "$T/dev.log" || die "not installed"
# Chunks stored before the restart were checked under another manifest:
# the whole model's hash is checked again (device_load.c).
grep -q "DOWNLOAD: device=slow model v1 installed (.*whole-model hash)" "$T/dev.log" ||
    die "a resumed download was installed without the whole-model hash"
served=$(dcctl metrics | sed -n 's/^dccl_requests_total{type="get_model",result="ok"} //p')
log "GetModel requests served: $served for $chunks chunks"
[ "$served" -lt $((chunks + 100)) ] || die "download restarted from 0 ($served requests)"
[ "$(sqlite3 "$db" 'SELECT count(*) FROM download')" = 0 ] || die "chunks left"
[ ! -e "$db-download" ] || die "chunk file left after the install"
echo "resume OK: killed at $have/$chunks chunks, file cut to $whole whole, resumed at chunk $at"
