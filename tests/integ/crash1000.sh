# Crash consistency under load: 1,000 signed uploads from 20 devices while
# cloudd is killed with SIGKILL at random points and restarted on the same
# database. The client (bin/loadtest uploads) resends every upload whose
# reply was lost with the same request id (a new auth counter), so:
# every acknowledged patch is in the database, each upload is stored
# exactly once (idempotent by request id), and the database (which also
# holds the device keys) passes PRAGMA integrity_check. Bounded: gives up
# after 60 s.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 30
import_pool
# Each device makes 50 uploads: keep them all (the default keeps a
# device's newest 8; window.sh and test_store play that limit), so that
# every acknowledged one can be checked.
KEEP="-o limits.patches-per-device=1000"
start_cloudd -o train.epochs=1 $KEEP
wait_model 1
LOADTEST_KEYS=$T/keys "$BIN/loadtest" uploads "$EP" -n 1000 -d 20 -w 120 -a "$T/acks" \
    >"$T/client.log" 2>&1 &
LP=$!
PIDS="$PIDS $LP"
kills=0
start=$(date +%s)
while kill -0 "$LP" 2>/dev/null; do
	[ $(( $(date +%s) - start )) -lt 60 ] || die "not done in 60 s"
	# A random point: 100..700 ms into this cloudd's life.
	sleep "0.$(( $(od -An -N1 -tu1 /dev/urandom) % 6 + 1 ))"
	kill -0 "$LP" 2>/dev/null || break
	kill -9 "$CPID" 2>/dev/null || true
	wait "$CPID" 2>/dev/null || true
	kills=$((kills + 1))
	n=$(grep -c 'READY: cloudd' "$T/cloudd.log")
	"$BIN/cloudd" -o cloudd.listen="$EP" -o cloudd.pub-listen="$PUB" \
	    -o cloudd.admin-listen="$ADM" -o cloudd.data-dir="$T/cloud" $KEEP \
	    >>"$T/cloudd.log" 2>&1 &
	CPID=$!
	PIDS="$PIDS $CPID"
	wait_for "[ \$(grep -c 'READY: cloudd' '$T/cloudd.log') -gt $n ]" 100 0.05 ||
	    die "cloudd did not restart"
done
rc=0; wait "$LP" || rc=$?
cat "$T/client.log"
[ $rc = 0 ] || die "client exit $rc"
[ "$kills" -ge 3 ] || die "only $kills kills: the test did not test"
acked=$(wc -l <"$T/acks")
[ "$acked" -ge 1000 ] || die "only $acked acks"
# Every acknowledged upload is stored, under the id the Ack named.
sort -u "$T/acks" | awk '{print $1 "|" $2 "|" $3}' | sort -u >"$T/want"
sql "SELECT device_id || '|' || request_id || '|' || id FROM patches" | sort -u >"$T/have"

lost=$(comm -23 "$T/want" "$T/have" | wc -l)
[ "$lost" = 0 ] || { comm -23 "$T/want" "$T/have" | head; die "$lost acknowledged patches missing"; }
stored=$(sql "SELECT count(*) FROM patches")
uniq=$(sql "SELECT count(*) FROM (SELECT DISTINCT device_id, request_id FROM patches)")
[ "$stored" = "$uniq" ] || die "duplicates stored: $stored rows, $uniq uploads"
[ "$uniq" = 1000 ] || die "expected 1000 uploads stored, got $uniq"
[ "$(sql 'PRAGMA integrity_check')" = ok ] || die "cloudd.db integrity"
# The device keys live in the same store (schema 4), checked just above.
[ "$(sql 'SELECT count(*) FROM device_keys')" -gt 0 ] || die "no device keys in the store"
dups=$(grep -c ' dup$' "$T/acks" || true)
echo "crash1000: $kills SIGKILLs, 1000 uploads acknowledged and stored once each ($dups acks were duplicates of an upload stored before a kill), integrity ok"
