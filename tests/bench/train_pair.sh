#!/bin/sh
# train_pair.sh [PAIRS]: CTR training throughput of dccl against the
# PyTorch peer, both on 1 thread, run alternately in one invocation
# (dccl, torch, dccl, torch, ...) so that both sides see the same machine
# load. Each run is a fresh process that times one epoch of 200k samples
# after a warm-up (bin/bench_train --train-once, train_torch.py
# --train-once). The peer runs twice per round, with sparse embedding
# gradients (SparseAdam + Adam) and dense (one Adam), and the faster of the
# two is the round's peer: with torch 1.13 on this machine the dense one
# wins. Prints every round's ratio, then the median ratio and its range:
# the figure to quote.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${DCCL_BIN:-$ROOT/bin}
PAIRS=${1:-5}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
rate() { sed -n 's/.*samples_per_s=\([0-9]*\).*/\1/p' | head -n 1; }
ratios=""
i=0
while [ $i -lt "$PAIRS" ]; do
	i=$((i + 1))
	a=$("$BIN/bench_train" --train-once | rate)
	bs=$(DCCL_PEER_SPARSE=1 /usr/bin/python3 \
	    "$ROOT/tests/bench/train_torch.py" --train-once | rate)
	bd=$(DCCL_PEER_SPARSE=0 /usr/bin/python3 \
	    "$ROOT/tests/bench/train_torch.py" --train-once | rate)
	if [ -z "$a" ] || [ -z "$bs" ] || [ -z "$bd" ]; then
		echo "train_pair: round $i: a run failed (dccl '$a'," \
		    "torch sparse '$bs', dense '$bd')" >&2
		exit 1
	fi
	b=$((bs > bd ? bs : bd))
	r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')
	echo "BENCH train_pair round=$i dccl_samples_per_s=$a" \
	    "torch_sparse=$bs torch_dense=$bd ratio=$r"
	ratios="$ratios $r"
done
echo "$ratios" | tr ' ' '\n' | grep . | sort -n | awk '
	{ v[NR] = $1 }
	END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "BENCH train_ratio rounds=%d median=%.2f min=%.2f max=%.2f\n", NR, m, v[1], v[NR]
	}'
