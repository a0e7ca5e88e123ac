# timeout: 150
# With PostgreSQL, two more kinds of device-key store work must not run on
# the loop thread (issue 13): the re-read of a known device's key after a
# failed MAC (its key may have been replaced through another replica), and
# the cron's counter flush (a max-merge into device_keys). Each phase holds
# an exclusive lock on device_keys from psql for 4 s, so that store work
# waits for it (up to limits.busy-ms, 2 s); meanwhile another device's
# requests must still be answered at once. On the old code the loop
# stalled in that work: the other device waited up to 2 s. Last, re-reads
# are bounded by the unknown-id bucket too: with it empty, a forged request
# of a known device costs no query. And the re-read still does its job: a
# key replaced through one replica (dcctl enroll --replace) is accepted by
# another once it re-read it.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
pg_server
TRANSPORT=ipc endpoints
ms() { date +%s%3N; }
lock() {	# lock SECONDS: device_keys exclusively locked, in the background
	psql "$PGC" -Atqc "BEGIN; LOCK TABLE device_keys IN ACCESS EXCLUSIVE
	    MODE; SELECT pg_sleep($1); COMMIT;" >>"$T/lock.log" 2>&1 &
	LPID=$!
	PIDS="$PIDS $LPID"
	sleep 0.5
}
# other N: N GetStatus of device "other", 0.25 s apart; dies unless each is
# answered within 1 s, prints the slowest.
other() {
	worst=0
	for i in $(seq "$1"); do
		t0=$(ms)
		out=$("$BIN/dccl-probe" "$EP" flood other 1 2>&1) ||
		    die "other device: no reply: $out"
		dt=$(($(ms) - t0))
		case $out in "FLOOD ok 1 "*) ;; *) die "other device: $out" ;; esac
		[ "$dt" -gt "$worst" ] && worst=$dt
		[ "$dt" -lt 1000 ] || die "the loop stalled ${dt} ms ($2)"
		sleep 0.25
	done
	echo "other device meanwhile: $1 requests, slowest ${worst} ms"
}
stored_ctr() {
	psql "$PGC" -Atqc "SELECT counter FROM device_keys WHERE
	    device_id = 'other'"
}
# pg_cloudd OPTS...: cloudd on the test server, auth.mode mac.
pg_cloudd() {
	start_cloudd -o cloudd.store=postgresql -o "cloudd.pg-conninfo=$PGC" \
	    -o auth.mode=mac "$@"
}
# stop_expect REGEX WHAT: stops cloudd, prints its last "off the loop"
# counters and dies unless they match REGEX.
stop_expect() {
	kill -TERM "$CPID"
	wait "$CPID" || die "cloudd exit status"
	grep "off the loop: " "$T/cloudd.log" | tail -1 | sed 's/.*AUTH: /AUTH: /'
	grep "off the loop: " "$T/cloudd.log" | tail -1 | grep -q "$1" || die "$2"
}

# cron-ms at its maximum: no flush in this phase, only the re-read.
pg_cloudd -o limits.busy-ms=2000 -o cloudd.cron-ms=60000
"$BIN/dccl-probe" "$EP" status | grep -q "REPLY status" || die "probe status"
"$BIN/dccl-probe" "$EP" flood other 1 | grep -q "FLOOD ok 1 " ||
    die "other device"

log "a failed MAC of a known device: its key is re-read off the loop"
lock 4
"$BIN/dccl-probe" "$EP" forged >"$T/forged.out" 2>&1 &
FPID=$!
sleep 0.3
other 4 "re-read of a key after a failed MAC"
wait $FPID || true
echo "forged request: $(cat "$T/forged.out")"
grep -q "ERROR E_UNAUTHENTICATED" "$T/forged.out" ||
    die "forged request: not refused"
wait $LPID || true
"$BIN/dccl-probe" "$EP" status | grep -q "REPLY status" ||
    die "probe: no longer answered after its forged request"
stop_expect "off the loop: [1-9][0-9]* device-key lookups" \
    "the re-read did not run off the loop"

log "the cron's counter flush runs off the loop"
pg_cloudd -o limits.busy-ms=2000 -o cloudd.cron-ms=200
"$BIN/dccl-probe" "$EP" flood other 3 | grep -q "FLOOD ok 3 " ||
    die "other device"
sleep 0.5
c0=$(stored_ctr)
echo "stored counter of 'other' before the lock: $c0"
w0=$(grep -c "AUTH-DB: cannot save device counters" "$T/cloudd.log" || true)
lock 4
# Each request moves the counter, so every cron tick has one to flush.
other 8 "counter flush"
wait $LPID || true
wait_for '[ "$(stored_ctr)" -gt "$c0" ]' 30 0.2 ||
    die "counters not flushed after the lock ($(stored_ctr) <= $c0)"
echo "stored counter after the lock: $(stored_ctr)"
w1=$(grep -c "AUTH-DB: cannot save device counters" "$T/cloudd.log" || true)
# The flush did meet the lock (it timed out at least once).
[ "$w1" -gt "$w0" ] || die "no flush ran into the lock"
stop_expect "device-key lookups, [1-9][0-9]* counter flushes" \
    "no counter flush ran off the loop"
log "re-reads take a token of the unknown-id bucket (limits.enroll-rate)"
pg_cloudd -o cloudd.cron-ms=60000 \
    -o limits.enroll-rate=0.01 -o limits.enroll-burst=1
out=$("$BIN/dccl-probe" "$EP" stranger ghost2)	# the bucket's one token
case $out in "ERROR E_NOT_REGISTERED"*) ;; *) die "unknown id: $out" ;; esac
out=$("$BIN/dccl-probe" "$EP" forged)
echo "forged request, bucket empty: $out"
case $out in "ERROR E_UNAUTHENTICATED"*) ;; *) die "forged: $out" ;; esac
stop_expect "off the loop: 1 device-key lookups" \
    "a re-read was made with the unknown-id bucket empty"
log "a key replaced through another replica: re-read off the loop, accepted"
pg_cloudd -o cloudd.cron-ms=60000
EPB="ipc://$T/b.ipc"
"$BIN/cloudd" -o cloudd.listen="$EPB" -o cloudd.pub-listen="ipc://$T/bpub.ipc" \
    -o cloudd.admin-listen="ipc://$T/badm.ipc" -o cloudd.data-dir="$T/cloudb" \
    -o cloudd.store=postgresql -o "cloudd.pg-conninfo=$PGC" \
    -o auth.mode=mac -o cloudd.cron-ms=60000 >"$T/b.log" 2>&1 &
BPID=$!
PIDS="$PIDS $BPID"
wait_for "grep -q 'READY: cloudd' '$T/b.log'" 100 0.1 || die "replica B not ready"
"$BIN/dccl-probe" "$EPB" flood other 1 | grep -q "FLOOD ok 1 " ||
    die "replica B: the old key"
dcctl enroll --replace -o "$T/other-new.key" other >"$T/replace.out" 2>&1 ||
    die "dcctl enroll --replace: $(cat "$T/replace.out")"
mv "$T/other-new.key" "$T/probe/other.key"
out=$("$BIN/dccl-probe" "$EPB" flood other 1)
echo "replica B, the new key: $out"
case $out in "FLOOD ok 1 "*) ;; *) die "replica B refused the replaced key: $out" ;; esac
grep -q "device=other key replaced through another replica" "$T/b.log" ||
    die "replica B: no re-read of the replaced key"
kill -TERM "$BPID" "$CPID"
wait "$BPID" || die "replica B exit status"
wait "$CPID" || die "cloudd exit status"
grep "off the loop: " "$T/b.log" | sed 's/.*AUTH: /replica B: AUTH: /'
grep -q "off the loop: [1-9][0-9]* device-key lookups" "$T/b.log" ||
    die "replica B: the re-read did not run off the loop"
echo "PASS"
