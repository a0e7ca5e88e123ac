# timeout: 400
# PostgreSQL goes down under two running cloudd replicas mid-round, stays
# down for a few seconds and comes back on the same data
# (scripts/pg-test-server.sh down/up: an immediate stop, as a crash).
#   - during the outage the replicas stay up and answer: uploads get a
#     typed E_STORAGE (at least one must be logged, or the outage missed
#     the round), and GetStatus still answers;
#   - afterwards the devices finish the round without a restart of
#     anything: every patch a device saw acknowledged, before, during or
#     after the outage, is in the store exactly once, and all 30 devices
#     have theirs;
#   - both replicas are still alive, and a new upload is stored.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
pg_server
N=30

make_data $N 40
import_pool -o cloudd.store=postgresql -o "cloudd.pg-conninfo=$PGC"
for i in 1 2; do
	"$BIN/cloudd" -o cloudd.listen="ipc://$T/rep$i.ipc" \
	    -o cloudd.pub-listen="ipc://$T/pub$i.ipc" \
	    -o cloudd.admin-listen="ipc://$T/adm$i.ipc" \
	    -o cloudd.data-dir="$T/c$i" -o cloudd.store=postgresql \
	    -o "cloudd.pg-conninfo=$PGC" -o cloudd.cron-ms=200 \
	    -o auth.mode=mac -o train.epochs=3 >>"$T/c$i.log" 2>&1 &
	eval "CP$i=$!"
	PIDS="$PIDS $!"
done
for r in 1 2; do
	wait_for "grep -qE 'ANNOUNCE: model v1|MODEL: loaded v1' '$T/c$r.log'" 600 0.1 ||
	    die "replica $r did not get v1"
done

log "round: $N devices on 2 replicas; PostgreSQL down mid-round"
# All devices start together (start-jitter 0): with each starting as it
# loads, spread over a second, the first finished their round before the
# last had registered, and an outage after the first acks could find no
# device between registration and upload.
EP="ipc://$T/rep1.ipc,ipc://$T/rep2.ipc" PUB="ipc://$T/pub1.ipc,ipc://$T/pub2.ipc"
start_deviced devs -o deviced.shards="$SHARDS" -o deviced.run-once=yes \
    -o deviced.devices=$N -o auth.mode=mac -o learn.steps=300 \
    -o net.resend-ms=500 -o net.start-jitter-ms=0
DP=$DPID
wait_for "[ \$(grep -c 'ACK: ' '$T/devs.log') -ge 3 ]" 1200 0.02 || die "no first acks"
sh "$ROOT/scripts/pg-test-server.sh" down "$PGDIR" || die "cannot stop PostgreSQL"
acked_before=$(grep -c 'ACK: ' "$T/devs.log" || true)
log "PostgreSQL down after $acked_before acks"
[ "$acked_before" -lt $N ] || die "the round was over before the outage"
# The outage lasts until an upload was refused with a typed error, and at
# least 3 s.
t0=$(date +%s)
wait_for "grep -q 'RPC-ERROR: E_STORAGE .*body=upload' '$T/c1.log' '$T/c2.log'" 300 0.1 ||
    die "no upload got E_STORAGE during the outage"
for r in 1 2; do
	out=$("$BIN/dcctl" -s "ipc://$T/adm$r.ipc" -t 10 status 2>&1) ||
	    die "replica $r: GetStatus during the outage: $out"
done
while [ $(( $(date +%s) - t0 )) -lt 3 ]; do sleep 0.2; done
for r in 1 2; do
	eval "p=\$CP$r"
	kill -0 "$p" 2>/dev/null || die "replica $r died during the outage"
done
sh "$ROOT/scripts/pg-test-server.sh" up "$PGDIR" || die "cannot restart PostgreSQL"
log "PostgreSQL up again"
wait_for "! kill -0 $DP 2>/dev/null" 3000 0.1 || die "devices did not finish after the outage"
rc=0; wait "$DP" || rc=$?
[ $rc = 0 ] || die "deviced exit $rc"
for r in 1 2; do
	eval "p=\$CP$r"
	kill -0 "$p" 2>/dev/null || die "replica $r died after the outage"
done
storage_errs=$(cat "$T/c1.log" "$T/c2.log" | grep -c 'RPC-ERROR: E_STORAGE' || true)
grep 'ACK: ' "$T/devs.log" | sed 's/.*device=\([^ ]*\) req=\([0-9]*\).*/\1 \2/' |
while read -r dev req; do
	n=$(psqlq "SELECT count(*) FROM patches WHERE device_id='$dev' AND request_id=$req")
	[ "$n" = 1 ] || { echo "LOST: $dev $req ($n rows)"; exit 1; }
done || die "an acknowledged patch is missing"
total=$(psqlq "SELECT count(DISTINCT device_id) FROM patches")
[ "$total" = $N ] || die "expected patches from $N devices, got $total"
rows=$(psqlq "SELECT count(*) FROM patches")
[ "$rows" = $N ] || die "$rows patch rows for $N devices (run-once: one each)"

log "a new upload after the outage"
u=$(ls "$SHARDS" | grep local | sort -n | head -1)
u=${u%%.*}
EP="ipc://$T/rep2.ipc,ipc://$T/rep1.ipc"
start_deviced late -o deviced.local-data="$SHARDS/$u.local.csv" \
    -o deviced.user-id="$u" -o deviced.device-id=late-1 \
    -o deviced.run-once=yes -o auth.mode=mac
rc=0; wait "$DPID" || rc=$?
[ $rc = 0 ] || die "late deviced exit $rc"
[ "$(psqlq "SELECT count(*) FROM patches WHERE device_id='late-1'")" = 1 ] ||
    die "the upload after the outage is not stored"
echo "pg_outage OK: $acked_before acks before the outage, $storage_errs E_STORAGE replies during it, $N devices stored once each, replicas alive"
