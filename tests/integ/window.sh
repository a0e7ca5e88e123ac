# The device's retention window (learn.max-local): a device keeps, learns
# from and stores only its newest samples. An imported history larger than
# the window is cut to its newest at start; app events push the oldest out
# of memory and store alike; events that arrive while a learning job runs
# wait for it up to the window, beyond which the app gets a typed E_BUSY
# and nothing is stored; a restart finds the window as it was. The cloud's
# side of the same device (limits.patches-per-device 1): every job's
# upload is acknowledged, and the store keeps only its newest patch.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
W=16
endpoints
make_data 4 240
import_pool
start_cloudd -o limits.patches-per-device=1
wait_model 1
U=$(ls "$SHARDS" | sed -n 's/\.local\.csv$//p' | sort -n | head -1)
DEV=dev-$U
DB=$T/dev/$DEV/device.db
AEP="ipc://$T/dev/$DEV/app.ipc"
CSV=$SHARDS/$U.local.csv
N=$(grep -v '^#' "$CSV" | grep -vc '^user')
[ "$N" -gt $W ] || die "shard has $N samples, want more than $W"
# Long jobs (many steps on few samples), so that events meet a running job.
start_deviced dev -o deviced.shards="$SHARDS" -o deviced.devices=1 \
    -o deviced.app-listen='ipc://{dir}/app.ipc' -o learn.retrain-every=3 \
    -o learn.max-local=$W -o learn.ft-steps=6000 -o learn.steps=6000
app() { "$BIN/dcctl" device -s "$AEP" -t 10 "$@"; }
count() { sqlite3 "$DB" 'SELECT count(*) FROM samples'; }
wait_for "grep -q 'APP: device=$DEV listening' '$T/dev.log'" 100 0.1 || die "no app socket"

log "an imported history is cut to its newest $W"
grep -q "LOCAL-DATA: device=$DEV keeps its newest $W of $N samples" "$T/dev.log" || die "no window at load"
[ "$(count)" = $W ] || die "store holds $(count) samples"
# The newest W of the CSV by time (ts is the third column).
want=$(grep -v '^#' "$CSV" | grep -v '^user' | cut -d, -f3 | sort -n | tail -$W | head -1)
[ "$(sqlite3 "$DB" 'SELECT min(ts) FROM samples')" = "$want" ] || die "oldest kept ts $(sqlite3 "$DB" 'SELECT min(ts) FROM samples'), want $want"
wait_for "grep -q ': TRAIN: device=$DEV' '$T/dev.log'" 1200 0.1 || die "no learning job"
grep ": TRAIN: device=$DEV" "$T/dev.log" | head -1 | grep -q " $W local" || die "the job did not learn from $W samples: $(grep ": TRAIN: device=$DEV" "$T/dev.log" | head -1)"
wait_for "app status | grep -q 'state: *idle'" 1200 0.1 || die "not idle: $(app status)"

log "events push the oldest out"
TS=$(sqlite3 "$DB" 'SELECT max(ts) FROM samples')
old=$(sqlite3 "$DB" 'SELECT min(id) FROM samples')
TS=$((TS + 10)); app -T $TS event 11 1 >"$T/ev.out" || die "event 1"
[ "$(count)" = $W ] || die "after one event the store holds $(count)"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM samples WHERE id = $old")" = 0 ] || die "the oldest sample stayed"
[ "$(sqlite3 "$DB" 'SELECT item FROM samples ORDER BY id DESC LIMIT 1')" = 11 ] || die "the event is not the newest"
app status | grep -q "local samples:  $W " || die "status: $(app status)"

log "events during a job wait up to $W, then E_BUSY"
# The third event since the job re-runs it (learn.retrain-every = 3).
TS=$((TS + 10)); app -T $TS event 12 0 >/dev/null || die "event 2"
TS=$((TS + 10)); app -T $TS event 13 1 >/dev/null || die "event 3"
wait_for "app status | grep -q 'state: *train'" 200 0.02 || die "no job after 3 events: $(app status)"
jobs=$(app status | sed -n 's/^learning jobs: *//p')
k=0 busy=0
while [ $k -lt $((W + 5)) ]; do
	TS=$((TS + 10))
	if out=$(app -T $TS event $((100 + k)) 1 2>&1); then
		k=$((k + 1))
	else
		case $out in
		*E_BUSY*learn.max-local*) busy=1; echo "ok: event $((k + 1)) of the job: $out"; break ;;
		*) die "event during the job: $out" ;;
		esac
	fi
done
[ $busy = 1 ] || die "$k events during one job, no E_BUSY (did the job end? $(app status))"
[ $k = $W ] || die "E_BUSY after $k waiting events, want $W"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM samples WHERE ts = $TS")" = 0 ] || die "the refused event was stored"
[ "$(count)" = $W ] || die "store holds $(count) during the job"
LAST=$((TS - 10))
# The job ends: its waiting events join the window, which stays $W.
wait_for "[ \$(app status | sed -n 's/^learning jobs: *//p') -gt $jobs ]" 1200 0.1 || die "the job did not end: $(app status)"
app status | grep -q "local samples:  $W " || die "after the job: $(app status)"
[ "$(sqlite3 "$DB" 'SELECT max(ts) FROM samples')" = $LAST ] || die "newest stored ts $(sqlite3 "$DB" 'SELECT max(ts) FROM samples'), want $LAST"
[ "$(sqlite3 "$DB" 'SELECT min(item) FROM samples')" = 100 ] || die "the window is not the $W events of the job"
kill -0 "$DPID" || die "deviced died"
grep ": TRAIN: device=$DEV" "$T/dev.log" | sed "s/.*TRAIN: /job: /"

log "the cloud keeps the device's newest patch"
wait_for "[ \$(grep -c 'UPLOAD: device=$DEV ' '$T/cloudd.log') -ge 2 ]" 600 0.1 || die "fewer than 2 uploads"
[ "$(sql "SELECT count(*) FROM patches WHERE device_id = '$DEV'")" = 1 ] || die "patches kept: $(sql "SELECT count(*) FROM patches WHERE device_id = '$DEV'")"
[ "$(sql "SELECT max(id) FROM patches WHERE device_id = '$DEV'")" = "$(sql 'SELECT max(id) FROM patches')" ] || die "the kept patch is not the newest"
echo "ok: $(grep -c "UPLOAD: device=$DEV " "$T/cloudd.log") uploads, 1 patch kept"

log "a restart finds the window"
kill -TERM "$DPID"
rc=0; wait "$DPID" || rc=$?
[ $rc = 0 ] || die "deviced exit $rc"
start_deviced dev2 -o deviced.shards="$SHARDS" -o deviced.devices=1 \
    -o deviced.app-listen='ipc://{dir}/app.ipc' -o learn.max-local=$W
wait_for "grep -q 'APP: device=$DEV listening' '$T/dev2.log'" 100 0.1 || die "no app socket after restart"
app status | grep -q "local samples:  $W " || die "status after restart: $(app status)"
[ "$(count)" = $W ] || die "store holds $(count) after restart"
grep -q "LOCAL-DATA: device=$DEV keeps" "$T/dev2.log" && die "a second cut at restart"
kill -TERM "$DPID"; wait "$DPID" || true
echo "window OK"
