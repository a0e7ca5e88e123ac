# timeout: 120
# With PostgreSQL, the key of a device id this replica has not cached is
# read from the store (it may have enrolled through another replica).
# That lookup must not run on the loop thread (issue 13, finding 8): here
# a psql session holds an exclusive lock on device_keys for 4 s, so the
# lookup of an unknown id waits for it (up to limits.busy-ms, 2 s), and
# meanwhile a known device's GetStatus must still be answered at once.
# On the old code the loop stalled in that lookup: the GetStatus waited
# ~1.7 s. Then: the unknown id gets a typed error (E_STORAGE while locked,
# E_NOT_REGISTERED after), and a burst of unknown ids beyond
# limits.enroll-burst is rate-limited before any query.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
pg_server
TRANSPORT=ipc endpoints
# cron-ms at its maximum: the cron's counter flush writes device_keys on
# the loop, which the lock below would stall (a flush is not a lookup).
start_cloudd -o cloudd.store=postgresql -o "cloudd.pg-conninfo=$PGC" \
    -o auth.mode=mac -o limits.busy-ms=2000 -o cloudd.cron-ms=60000 \
    -o limits.enroll-rate=1 -o limits.enroll-burst=5
ms() { date +%s%3N; }

log "a known device"
"$BIN/dccl-probe" "$EP" status | grep -q "REPLY status" || die "probe status"
out=$("$BIN/dccl-probe" "$EP" stranger ghost0)
echo "unknown id: $out"
case $out in "ERROR E_NOT_REGISTERED"*) ;; *) die "unknown id: $out" ;; esac

log "the lookup of an unknown id waits for a locked device_keys"
psql "$PGC" -Atqc "BEGIN; LOCK TABLE device_keys IN ACCESS EXCLUSIVE MODE;
    SELECT pg_sleep(4); COMMIT;" >"$T/lock.log" 2>&1 &
LPID=$!
PIDS="$PIDS $LPID"
sleep 0.5
"$BIN/dccl-probe" "$EP" stranger ghost1 >"$T/stranger.out" 2>&1 &
SPID=$!
sleep 0.3
t0=$(ms)
out=$("$BIN/dccl-probe" "$EP" status 2>&1) ||
    die "known device: no reply while an unknown id waits: $out"
dt=$(($(ms) - t0))
echo "known device meanwhile: $out in $dt ms"
case $out in "REPLY status"*) ;; *) die "known device: $out" ;; esac
[ "$dt" -lt 1000 ] || die "the loop stalled ${dt} ms in a key lookup"
wait $SPID || true
echo "unknown id under the lock: $(cat "$T/stranger.out")"
grep -q "ERROR E_STORAGE\|ERROR E_NOT_REGISTERED" "$T/stranger.out" ||
    die "unknown id under the lock: no typed error"
wait $LPID || true

log "a burst of unknown ids: rate-limited before any query"
n=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	out=$("$BIN/dccl-probe" "$EP" stranger "burst$i")
	case $out in "ERROR E_RATE_LIMITED"*) n=$((n + 1)) ;; esac
done
echo "$n of 10 rate-limited"
[ "$n" -ge 3 ] || die "unknown ids not rate-limited ($n of 10)"
"$BIN/dccl-probe" "$EP" status | grep -q "REPLY status" || die "probe status"

kill -TERM "$CPID"
wait "$CPID" || die "cloudd exit status"
grep -q "off the loop: [0-9]* device-key lookups" "$T/cloudd.log" ||
    die "no lookup ran off the loop"
grep "off the loop: " "$T/cloudd.log" | sed 's/.*AUTH: /AUTH: /'
echo "PASS"
