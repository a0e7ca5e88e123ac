#!/bin/sh
# learn_select.sh [DATA_DIR] [PAIRS]: issue 17's device time goal (<= 5 ms
# median a job) on ranking devices: the served job with learn.select = cv
# (the default: the guard's cross-validation over the whole grid) against
# learn.select = fed (the cloud's setting: the CV trains only that point;
# deviced/README.md, Federated selection), alternately cv fed cv fed ...
# (PAIRS pairs, default 2). Splits DATA_DIR (default
# ../shared/data/ml-latest-small) for the ranking task (seed 1, no cold
# users, as scripts/bench-results.md's ranking rows), then runs
# bin/bench_learn on every 2nd device (BENCH_LEARN_STRIDE), each run
# through tests/bench/bench_learn.sh. There is no
# cloud here, so the fed side trains at the default point, which costs
# what any cloud choice of 20 steps costs. Prints each run's served line
# and the ratio of the medians, pair by pair.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${1:-$ROOT/../shared/data/ml-latest-small}
PAIRS=${2:-2}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/learn_select.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
export BENCH_LEARN_SPLIT="--task ranking --seed 1"
export BENCH_LEARN_STRIDE=${BENCH_LEARN_STRIDE:-2}
for i in $(seq 1 "$PAIRS"); do
	for s in cv fed; do
		sh "$ROOT/tests/bench/bench_learn.sh" "$DATA" --methods bias \
		    -o learn.select=$s >"$TMP/$s.out"
		line=$(grep "BENCH learn served " "$TMP/$s.out")
		echo "pair $i select=$s: $line"
		echo "$line" | sed 's/.*median_ms=\([0-9.]*\).*/\1/' >"$TMP/$s.ms"
	done
	echo "pair $i: cv / fed median $(awk -v a="$(cat "$TMP/cv.ms")" \
	    -v b="$(cat "$TMP/fed.ms")" 'BEGIN { printf "%.2f", a / b }')"
done
