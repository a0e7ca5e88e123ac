#!/bin/sh
# Runs the unit tests (bin/test_*, cmocka) and the integration scenarios
# (tests/integ/*.sh), then prints "N passed, N failed[, N skipped]".
# DCCL_BIN selects the binaries (bin, or build/san/bin for make sanitize);
# DCCL_ONLY=unit|integ runs one kind; DCCL_TESTS="a b" runs the named ones.
set -u
BIN=${DCCL_BIN:-bin}
export DCCL_BIN="$BIN"
export OPENBLAS_NUM_THREADS=1
cd "$(dirname "$0")/.."
pass=0 fail=0 skip=0 failed=""
logdir=$(mktemp -d /tmp/dccl-tests.XXXXXX)

want() {
	[ -z "${DCCL_TESTS:-}" ] && return 0
	for t in $DCCL_TESTS; do [ "$t" = "$1" ] && return 0; done
	return 1
}

run() {	# name, command...
	name=$1; shift
	want "$name" || return 0
	start=$(date +%s)
	"$@" >"$logdir/$name.log" 2>&1
	rc=$?
	dur=$(( $(date +%s) - start ))
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); echo "PASS $name (${dur}s)"
	elif [ $rc -eq 77 ]; then
		skip=$((skip + 1))
		echo "SKIP $name: $(grep -m1 'SKIP' "$logdir/$name.log" || true)"
	else
		fail=$((fail + 1)); failed="$failed $name"
		echo "FAIL $name (${dur}s, exit $rc); last lines:"
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
[ -n "$failed" ] && echo "failed:$failed"
if [ $skip -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ $fail -eq 0 ]
