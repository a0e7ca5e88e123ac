#!/bin/sh
# bench_learn.sh [DATA_DIR]: device time per learning job on the devices of
# ml-latest-small (issue 17's goal: <= 5 ms median, <= 16 MiB).
#
# Splits DATA_DIR (default ../shared/data/ml-latest-small) as `make eval`'s
# ctr task does (seed 1, 20 % cold users), then bin/bench_learn trains the
# cloud model as cloudd would and times, per device, the served job
# (learn.* defaults) against the same job through the whole model (the
# reference), alternately, and each evaluation method alone; then the peak
# RSS of a process holding the model and the largest device. Times are the
# job thread's CPU time (BENCH_WALL=1: wall time). BENCH_LEARN_STRIDE=S
# takes every S-th device (default 1: all 610); BENCH_LEARN_SPLIT replaces
# the split's options (e.g. "--task ranking --seed 1"). Extra arguments go to
# bin/bench_learn (e.g. -o learn.adapt=bias, --methods mp-fb).
set -eu

BIN=${DCCL_BIN:-bin}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${1:-$ROOT/../shared/data/ml-latest-small}
[ $# -gt 0 ] && shift
[ -d "$DATA" ] || { echo "bench_learn.sh: no data at $DATA"; exit 1; }
for b in dccl-data bench_learn; do
	[ -x "$BIN/$b" ] || make --no-print-directory "$BIN/$b" >/dev/null
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench_learn.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
export OPENBLAS_NUM_THREADS=1
# shellcheck disable=SC2086
"$BIN/dccl-data" split "$DATA" "$TMP/split" \
    ${BENCH_LEARN_SPLIT:---cold 0.2 --seed 1} >/dev/null
"$BIN/bench_learn" "$TMP/split" --stride "${BENCH_LEARN_STRIDE:-1}" "$@"
