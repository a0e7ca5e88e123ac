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
# the figure to quote. Each side also reports its rate per second of its
# process's CPU time (cpu_sps); on a loaded machine the wall rates measure
# the other tenants as much as the programs, so the CPU ratio is printed
# beside the wall one (the peer's faster run is chosen by CPU rate for it),
# with the load average before each round.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${DCCL_BIN:-$ROOT/bin}
PAIRS=${1:-5}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
rate() { sed -n 's/.* samples_per_s=\([0-9]*\).*/\1/p' | head -n 1; }
crate() { sed -n 's/.* cpu_sps=\([0-9]*\).*/\1/p' | head -n 1; }
ratios="" cratios=""
i=0
while [ $i -lt "$PAIRS" ]; do
	i=$((i + 1))
	load=$(cut -d' ' -f1 /proc/loadavg)
	ao=$("$BIN/bench_train" --train-once)
	bso=$(DCCL_PEER_SPARSE=1 /usr/bin/python3 \
	    "$ROOT/tests/bench/train_torch.py" --train-once)
	bdo=$(DCCL_PEER_SPARSE=0 /usr/bin/python3 \
	    "$ROOT/tests/bench/train_torch.py" --train-once)
	a=$(echo "$ao" | rate) bs=$(echo "$bso" | rate) bd=$(echo "$bdo" | rate)
	ac=$(echo "$ao" | crate) bsc=$(echo "$bso" | crate)
	bdc=$(echo "$bdo" | crate)
	if [ -z "$a" ] || [ -z "$bs" ] || [ -z "$bd" ] || [ -z "$ac" ] ||
	    [ -z "$bsc" ] || [ -z "$bdc" ]; then
		echo "train_pair: round $i: a run failed (dccl '$a'," \
		    "torch sparse '$bs', dense '$bd')" >&2
		exit 1
	fi
	b=$((bs > bd ? bs : bd))
	bc=$((bsc > bdc ? bsc : bdc))
	r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')
	rc=$(awk -v a="$ac" -v b="$bc" 'BEGIN { printf "%.2f", a / b }')
	echo "BENCH train_pair round=$i load=$load dccl_samples_per_s=$a" \
	    "torch_sparse=$bs torch_dense=$bd ratio=$r dccl_cpu_sps=$ac" \
	    "torch_sparse_cpu=$bsc torch_dense_cpu=$bdc cpu_ratio=$rc"
	ratios="$ratios $r" cratios="$cratios $rc"
done
summary() {
	echo "$2" | tr ' ' '\n' | grep . | sort -n | awk -v n="$1" '
	{ v[NR] = $1 }
	END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "BENCH %s rounds=%d median=%.2f min=%.2f max=%.2f\n", n, NR, m, v[1], v[NR]
	}'
}
summary train_ratio "$ratios"
summary train_cpu_ratio "$cratios"
echo "BENCH train_pair load_end=$(cut -d' ' -f1 /proc/loadavg)"
