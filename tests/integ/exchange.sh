# The whole exchange over tcp:// (TRANSPORT=ipc for ipc://): cloudd imports
# a pool and trains a model; two deviced processes (one hosting 5 devices,
# one hosting 1 with CoDA) register, download, retrieve (only the CoDA
# device: the others' jobs would not read pool samples, so they send no
# query vectors) and upload; every patch lands in the cloud's database;
# dcctl reports it; cloudd stops on SIGTERM.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 12
log "import + start cloudd ($EP)"
import_pool
grep -q "IMPORT: .* rows" "$T/import.log" || die "no import line"
start_cloudd
wait_model 1
dcctl status | grep -q "model version: 1" || die "status has no model"
log "devices"
start_deviced multi -o deviced.shards="$SHARDS" -o deviced.devices=5 \
    -o deviced.run-once=yes -o deviced.device-id=m
P1=$DPID
first=$(ls "$SHARDS" | grep local | sort -n | tail -1)
start_deviced single -o deviced.local-data="$SHARDS/$first" \
    -o deviced.user-id="${first%%.*}" -o deviced.device-id=solo \
    -o deviced.run-once=yes -o learn.coda=yes
P2=$DPID
wait "$P1" || die "multi deviced exit $?"
wait "$P2" || die "single deviced exit $?"
n=$(sql "SELECT count(*) FROM patches")
[ "$n" = 6 ] || die "expected 6 patches, got $n"
[ "$(sql "SELECT count(DISTINCT device_id) FROM patches")" = 6 ] || die "devices"
[ "$(grep -c 'DOWNLOAD: device=.* installed' "$T/multi.log")" = 5 ] || die "downloads"
grep -q "RETRIEVE: device=solo got 100 pool samples" "$T/single.log" || die "retrieval"
grep -q "TRAIN: device=solo .* + [0-9]*/100 retrieved" "$T/single.log" ||
    die "the CoDA job did not see the retrieved samples"
! grep -q "RETRIEVE: " "$T/multi.log" || die "a device without CoDA retrieved"
grep -q "TRAIN: device=m-.* + 0/0 retrieved" "$T/multi.log" || die "multi TRAIN"
dcctl devices | grep -q "^solo " || die "dcctl devices"
dcctl models | grep -q "^1 " || die "dcctl models"
dcctl status | grep -q "patches:       6" || die "dcctl status patches"
log "SIGTERM"
kill -TERM "$CPID"
wait_for "! kill -0 $CPID 2>/dev/null" 100 0.1 || die "cloudd did not stop"
rc=0; wait "$CPID" || rc=$?
[ $rc = 0 ] || die "cloudd exit $rc"
grep -q "EXIT: clean shutdown" "$T/cloudd.log" || die "no clean exit"
[ "$(sql 'PRAGMA integrity_check')" = ok ] || die "integrity"
echo "exchange over ${TRANSPORT:-tcp} OK"
