# SIGHUP re-reads the config file: reloadable options change at run time
# (log level, limits), others are reported as needing a restart, and a
# broken file keeps the running configuration. A reloaded limit is
# enforced, not only logged: 30 back-to-back requests pass under the
# first file's rate limit and are refused with E_RATE_LIMITED after the
# reload lowers it.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
cat >"$T/c.conf" <<CONF
[cloudd]
log-level = info
[limits]
max-k = 100
rate = 1000
burst = 1000
CONF
"$BIN/cloudd" -f "$T/c.conf" -o cloudd.listen="$EP" -o cloudd.pub-listen="$PUB" \
    -o cloudd.admin-listen="$ADM" -o cloudd.data-dir="$T/cloud" >"$T/cloudd.log" 2>&1 &
CPID=$!; PIDS="$PIDS $CPID"
wait_for "grep -q 'READY: cloudd' '$T/cloudd.log'" 100 0.1 || die "not ready"
out=$("$BIN/dccl-probe" "$EP" flood before 30)
[ "$out" = "FLOOD ok 30 rate-limited 0 other 0" ] || die "before reload: $out"
cat >"$T/c.conf" <<CONF
[cloudd]
log-level = debug
data-dir = /somewhere/else
[limits]
max-k = 7
rate = 1
burst = 5
CONF
kill -HUP "$CPID"
wait_for "grep -q 'RELOAD: done' '$T/cloudd.log'" 50 0.1 || die "no reload"
out=$("$BIN/dccl-probe" "$EP" flood after 30)
case $out in "FLOOD ok "*" rate-limited 0 "*|"FLOOD ok 30 "*) die "reloaded rate not enforced: $out" ;;
"FLOOD ok "*) ;; *) die "after reload: $out" ;; esac
ok=$(echo "$out" | awk '{ print $3 }')
[ "$ok" -le 8 ] || die "burst 5 at 1/s let $ok of 30 through: $out"
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
