# SIGHUP re-reads the config file: reloadable options change at run time
# (log level, limits), others are reported as needing a restart, and a
# broken file keeps the running configuration.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
cat >"$T/c.conf" <<CONF
[cloudd]
log-level = info
[limits]
max-k = 100
CONF
"$BIN/cloudd" -f "$T/c.conf" -o cloudd.listen="$EP" -o cloudd.pub-listen="$PUB" \
    -o cloudd.admin-listen="$ADM" -o cloudd.data-dir="$T/cloud" >"$T/cloudd.log" 2>&1 &
CPID=$!; PIDS="$PIDS $CPID"
wait_for "grep -q 'READY: cloudd' '$T/cloudd.log'" 100 0.1 || die "not ready"
cat >"$T/c.conf" <<CONF
[cloudd]
log-level = debug
data-dir = /somewhere/else
[limits]
max-k = 7
CONF
kill -HUP "$CPID"
wait_for "grep -q 'RELOAD: done' '$T/cloudd.log'" 50 0.1 || die "no reload"
grep -q "RELOAD: limits.max-k = 7" "$T/cloudd.log" || die "max-k not reloaded"
grep -q "RELOAD: cloudd.log-level = debug" "$T/cloudd.log" || die "log level"
grep -q "RELOAD: cloudd.data-dir changed .* needs a restart" "$T/cloudd.log" && die "data-dir came from -o: must be kept"
"$BIN/dccl-probe" "$EP" status >/dev/null
wait_for "grep -q 'debug cloudd' '$T/cloudd.log'" 50 0.1 || die "debug logging not on"
printf '[limits]\nmax-k = lots\n' >"$T/c.conf"
kill -HUP "$CPID"
wait_for "grep -q 'RELOAD: .*has errors; keeping the running config' '$T/cloudd.log'" 50 0.1 || die "bad file"
printf '[cloudd]\nlog-level = debug\nstore = sqlite\nworkers = 3\n[limits]\nmax-k = 7\n' >"$T/c.conf"
kill -HUP "$CPID"
wait_for "grep -q 'RELOAD: cloudd.workers changed (2 -> 3) but needs a restart' '$T/cloudd.log'" 50 0.1 || die "restart-needed line"
kill -0 "$CPID" || die "cloudd died"
kill -TERM "$CPID"; rc=0; wait "$CPID" || rc=$?
[ $rc = 0 ] || die "exit $rc"
echo "reload OK"
