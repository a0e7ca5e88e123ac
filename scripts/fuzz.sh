#!/bin/sh
# fuzz.sh deps|run: the libFuzzer harnesses (tests/fuzz/fuzz_*.c).
#   deps  installs clang and libFuzzer (libclang-rt-14-dev) when missing
#   run   runs each build/fuzz/bin/fuzz_* for FUZZ_SECONDS (default 30) on a
#         copy of tests/fuzz/corpus/<name>/ and prints execs and crashes; exits 1
#         on any crash (the reproducer is kept in build/fuzz/crashes/).
# FUZZ_ONLY="envelope conf" runs a subset.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
case ${1:-run} in
deps)
	missing=""
	for p in clang libclang-rt-14-dev; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		    missing="$missing $p"
	done
	[ -z "$missing" ] && exit 0
	echo "fuzz: installing:$missing"
	SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
	exit 0 ;;
esac
SECS=${FUZZ_SECONDS:-30}
out=${FUZZ_OUT:-build/fuzz/runs}
mkdir -p "$out" build/fuzz/crashes
rc=0
printf '%-10s %12s %10s %8s %s\n' harness execs exec/s crashes corpus
for bin in build/fuzz/bin/fuzz_*; do
	name=${bin##*/fuzz_}
	if [ -n "${FUZZ_ONLY:-}" ]; then
		case " $FUZZ_ONLY " in *" $name "*) ;; *) continue ;; esac
	fi
	work=$out/$name.corpus
	rm -rf "$work"; mkdir -p "$work"
	cp tests/fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
	r=0
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    "$bin" -max_total_time="$SECS" -print_final_stats=1 -max_len=8192 \
	    -artifact_prefix=build/fuzz/crashes/"$name"- -close_fd_mask=1 \
	    "$work" >"$out/$name.log" 2>&1 || r=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name.log" | tail -1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/$name.log" | tail -1)
	crashes=0
	if [ $r != 0 ]; then
		crashes=1; rc=1
		grep -m3 "ERROR\|SUMMARY\|Test unit written" "$out/$name.log" || true
	fi
	printf '%-10s %12s %10s %8s %s\n' "$name" "${execs:-?}" "${eps:-?}" "$crashes" \
	    "$(ls "$work" | wc -l) inputs"
done
exit $rc
