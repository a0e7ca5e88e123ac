#!/bin/sh
# Runs the unit tests (bin/test_*, cmocka) and the integration scenarios
# (tests/integ/*.sh), then prints "N passed, N failed, N skipped".
# DCCL_BIN selects the binaries (bin, or build/san/bin for make sanitize);
# DCCL_ONLY=unit|integ runs one kind; DCCL_TESTS="a b" runs the named ones.
# A test skips by printing a "SKIP: why" line and exiting 77; exit 77
# without that line is a failure. Each test gets DCCL_TEST_TIMEOUT seconds
# (default 300, tripled under make sanitize; a test may ask for more with
# a "# timeout: N" line); then it is sent SIGTERM (its trap kills its
# daemons), 10 s later SIGKILL, and fails. The run fails when a test failed, when nothing ran, or when a test
# named in DCCL_TESTS does not exist.
set -u
BIN=${DCCL_BIN:-bin}
export DCCL_BIN="$BIN"
export OPENBLAS_NUM_THREADS=1
cd "$(dirname "$0")/.."
pass=0 fail=0 skip=0 failed="" ran=""
logdir=$(mktemp -d /tmp/dccl-tests.XXXXXX)

want() {
	[ -z "${DCCL_TESTS:-}" ] && return 0
	for t in $DCCL_TESTS; do [ "$t" = "$1" ] && return 0; done
	return 1
}

run() {	# name, command...
	name=$1; shift
	want "$name" || return 0
	ran="$ran $name"
	limit=${DCCL_TEST_TIMEOUT:-300}
	case $name in test_*) ;; *)
		tl=$(sed -n 's/^# timeout: \([0-9][0-9]*\)$/\1/p' "tests/integ/$name.sh")
		[ -n "$tl" ] && [ "$tl" -gt "$limit" ] && limit=$tl
	esac
	# ASan and UBSan slow everything down about threefold.
	[ "${DCCL_SANITIZE:-0}" = 1 ] && limit=$((limit * 3))
	start=$(date +%s)
	timeout -k 10 "$limit" "$@" >"$logdir/$name.log" 2>&1 </dev/null
	rc=$?
	dur=$(( $(date +%s) - start ))
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); echo "PASS $name (${dur}s)"
	elif [ $rc -eq 77 ] && grep -q '^SKIP' "$logdir/$name.log"; then
		skip=$((skip + 1))
		echo "SKIP $name: $(grep -m1 '^SKIP' "$logdir/$name.log")"
	else
		fail=$((fail + 1)); failed="$failed $name"
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			echo "FAIL $name (timed out after ${limit}s); last lines:"
		elif [ $rc -eq 77 ]; then
			echo "FAIL $name (exit 77 without a SKIP: line); last lines:"
		else
			echo "FAIL $name (${dur}s, exit $rc); last lines:"
		fi
		# The test's own verdict first: its log tail is often the
		# daemons' logs that die() prints after it.
		grep -m 3 '^FAIL: ' "$logdir/$name.log" | sed 's/^/    /'
		tail -n 25 "$logdir/$name.log" | sed 's/^/    /'
	fi
}

if [ "${DCCL_ONLY:-unit}" = unit ] || [ -z "${DCCL_ONLY:-}" ]; then
	for t in "$BIN"/test_*; do
		[ -x "$t" ] || continue
		run "$(basename "$t")" "$t"
	done
fi
if [ "${DCCL_ONLY:-integ}" = integ ] || [ -z "${DCCL_ONLY:-}" ]; then
	for t in tests/integ/*.sh; do
		[ -f "$t" ] || continue
		run "$(basename "$t" .sh)" sh "$t"
	done
fi
echo "logs: $logdir"
for t in ${DCCL_TESTS:-}; do
	case " $ran " in *" $t "*) ;; *)
		fail=$((fail + 1)); failed="$failed $t"
		echo "FAIL $t: no such test (unit: $BIN/$t, integration: tests/integ/$t.sh)"
	esac
done
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed, $skip skipped"
if [ $((pass + fail + skip)) -eq 0 ]; then
	echo "FAIL: no test ran"
	exit 1
fi
[ $fail -eq 0 ]
