#!/bin/sh
# learn_catalogue.sh [PAIRS] [SMALL LARGE]: does the device learning job's
# time grow with the size of the item catalogue? The same synthetic users
# (400, seed 1, bin/dccl-data synth) over SMALL (default 2,000) and LARGE
# (default 200,000) items; the cloud model's item table grows with them
# (0.3 and 12.4 MiB of model), a device's samples do not. bin/bench_learn
# times the served job on every 2nd device (tests/bench/bench_learn.sh's
# CPU time per job), small then large, PAIRS times (default 2), and prints
# each run's served line, the peak memory of the largest device's job
# (bench_learn's learn_rss), and the ratio of the medians (large / small),
# pair by pair. Before the job copied only what a path had changed and
# held at most one copy of the model (shared/ml/README.md, *Change
# tracking*) the ratio was 2.1-2.3 and the large job's peak 26.3 MiB.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${DCCL_BIN:-bin}
PAIRS=${1:-2}
SMALL=${2:-2000}
LARGE=${3:-200000}
for b in dccl-data bench_learn; do
	[ -x "$BIN/$b" ] || make --no-print-directory -C "$ROOT" "$BIN/$b" \
	    >/dev/null
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/learn_catalogue.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
export OPENBLAS_NUM_THREADS=1
for m in "$SMALL" "$LARGE"; do
	"$BIN/dccl-data" synth "$TMP/s$m" --users 400 --items "$m" --seed 1 \
	    >/dev/null
done
for i in $(seq 1 "$PAIRS"); do
	for m in "$SMALL" "$LARGE"; do
		"$BIN/bench_learn" "$TMP/s$m" --stride 2 --methods bias \
		    >"$TMP/$m.out" 2>&1
		line=$(grep "BENCH learn served " "$TMP/$m.out")
		model=$(sed -n 's/.*model_mib=\([0-9.]*\).*/\1/p' "$TMP/$m.out")
		peak=$(sed -n 's/.*job_peak_mib=\([0-9.]*\).*/\1/p' "$TMP/$m.out")
		echo "pair $i items=$m model_mib=$model job_peak_mib=$peak: $line"
		echo "$line" | sed 's/.*median_ms=\([0-9.]*\).*/\1/' >"$TMP/$m.ms"
	done
	echo "pair $i: large / small median $(awk \
	    -v a="$(cat "$TMP/$LARGE.ms")" -v b="$(cat "$TMP/$SMALL.ms")" \
	    'BEGIN { printf "%.2f", a / b }')"
done
