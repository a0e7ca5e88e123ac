# The libFuzzer harnesses (tests/fuzz/fuzz_*.c: envelope + auth, requests
# through cloudd's real handlers, config parser, dataset and model parsers) build with clang
# and each runs ~5 s on its seed corpus without a crash, leak or UB report.
# Longer runs: make fuzz FUZZ_SECONDS=N.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
cd "$ROOT"
if ! command -v clang >/dev/null 2>&1 || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
	sh scripts/fuzz.sh deps >"$T/deps.log" 2>&1 || skip "clang/libFuzzer cannot be installed: $(tail -1 "$T/deps.log")"
fi
mkdir -p build
# make check and make sanitize may run this at once: one build at a time.
( flock 9; make --no-print-directory fuzz-build >"$T/build.log" 2>&1 ) 9>build/.fuzz.lock ||
    die "fuzz build failed: $(grep -m5 'error' "$T/build.log")"
# The harnesses' exit status, not tee's: no pipe.
rc=0
( flock 9; FUZZ_SECONDS=${FUZZ_SMOKE_SECONDS:-5} sh scripts/fuzz.sh run ) \
    9>build/.fuzz.lock >"$T/fuzz.out" 2>&1 || rc=$?
cat "$T/fuzz.out"
[ $rc = 0 ] || die "a harness failed, exit $rc (see build/fuzz/crashes/)"
[ "$(grep -c " 0 [0-9]* inputs$" "$T/fuzz.out")" -ge 4 ] || die "not every harness ran"
