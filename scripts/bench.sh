#!/bin/sh
# bench.sh: the `make bench` driver. Runs each benchmark in turn under a
# clear heading and tees everything to out/bench.txt (out/ is git-ignored):
#   1. sh tests/bench/bench_rpc.sh          RPC vs bare nanomsg, model
#                                           download, pool import
#   1b. sh tests/bench/bench_download.sh    authenticated download
#                                           (BENCH_PEER_CLOUDD: alternating)
#   2. sh tests/bench/bench_retrieve.sh     retrieval vs faiss
#   3. bin/bench_train                      training throughput (dccl)
#   4. /usr/bin/python3 tests/bench/train_torch.py   the PyTorch peer
#   4b. sh tests/bench/train_pair.sh        the two alternately: the ratio
#   5. sh tests/bench/bench_replicas.sh     PostgreSQL import, 1-3 replicas
#   6. sh tests/bench/bench_learn.sh        device learning job per device
#   6a. sh tests/bench/learn_select.sh      the job on ranking devices,
#                                           learn.select cv vs fed
#   6b. bin/bench_gemm                      the job's products: gemm_f32 vs
#                                           cblas_sgemm, alternately
#   6c. sh tests/bench/learn_catalogue.sh   the job at 2,000 and 200,000
#                                           items, alternately
# A benchmark whose file is missing is reported as "skipped: FILE missing".
# The Python peers need Debian's python3-torch / python3-faiss, installed
# here when absent (apt-get update only if the plain install fails). Every
# benchmark runs even if an earlier one failed; the exit status is 1 if any
# failed. DCCL_BIN selects the binaries (default bin).
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=${DCCL_BIN:-bin}
PY=/usr/bin/python3
mkdir -p out
OUT=out/bench.txt
FAILED=$(mktemp "${TMPDIR:-/tmp}/dccl-bench.XXXXXX")
trap 'rm -f "$FAILED"' EXIT

# need_py MODULE PACKAGE: installs PACKAGE when MODULE does not import.
need_py() {
	$PY -c "import $1" 2>/dev/null && return 0
	echo "installing $2"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get install -y "$2" >/dev/null 2>&1 || {
		$SUDO apt-get update >/dev/null &&
		    $SUDO apt-get install -y "$2" >/dev/null
	} || { echo "cannot install $2"; return 1; }
}

n=0
NSECT=$(grep -c '^	section "' "$ROOT/scripts/bench.sh")
# section TITLE FILE CMD...: runs CMD under a heading unless FILE is missing.
section() {
	title=$1 file=$2
	shift 2
	n=$((n + 1))
	echo
	echo "==== [$n/$NSECT] $title ($(date '+%Y-%m-%d %H:%M:%S'))"
	if [ ! -e "$file" ]; then
		echo "skipped: $file missing"
		return 0
	fi
	t0=$(date +%s)
	if "$@"; then
		echo "---- $title: ok in $(($(date +%s) - t0)) s"
	else
		echo "---- $title: FAILED (exit $?) after $(($(date +%s) - t0)) s"
		echo "$title" >>"$FAILED"
	fi
}

bench_train() {
	[ -x "$BIN/bench_train" ] || make --no-print-directory \
	    "$BIN/bench_train" >/dev/null || return 1
	"$BIN/bench_train"
}

train_torch() {
	need_py torch python3-torch || return 1
	$PY tests/bench/train_torch.py
}

train_pair() {
	need_py torch python3-torch || return 1
	[ -x "$BIN/bench_train" ] || make --no-print-directory \
	    "$BIN/bench_train" >/dev/null || return 1
	DCCL_BIN=$BIN sh tests/bench/train_pair.sh 5
}

bench_gemm() {
	[ -x "$BIN/bench_gemm" ] || make --no-print-directory \
	    "$BIN/bench_gemm" >/dev/null || return 1
	OPENBLAS_NUM_THREADS=1 "$BIN/bench_gemm" 5
}

bench_retrieve() {
	need_py faiss python3-faiss || return 1
	sh tests/bench/bench_retrieve.sh
}

{
	echo "dccl benchmarks: $(uname -srm), $(nproc) CPUs," \
	    "git $(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
	    "$(git diff --quiet HEAD 2>/dev/null || echo '(dirty tree)')"
	section "rpc: GetStatus vs bare nanomsg, model download, import" \
	    tests/bench/bench_rpc.sh sh tests/bench/bench_rpc.sh
	section "download: authenticated model download (auth.mode=mac)" \
	    tests/bench/bench_download.sh sh tests/bench/bench_download.sh
	section "retrieve: exact/IVF vs faiss" \
	    tests/bench/bench_retrieve.sh bench_retrieve
	section "train: dccl CTR training (bin/bench_train)" \
	    tests/bench/bench_train.c bench_train
	section "train: PyTorch peer (train_torch.py)" \
	    tests/bench/train_torch.py train_torch
	section "train: dccl vs PyTorch, alternately (the ratio to quote)" \
	    tests/bench/train_pair.sh train_pair
	section "replicas: PostgreSQL import (COPY) vs SQLite, 1-3 cloudd replicas" \
	    tests/bench/bench_replicas.sh sh tests/bench/bench_replicas.sh
	section "learn: device learning job on ml-latest-small's devices" \
	    tests/bench/bench_learn.sh sh tests/bench/bench_learn.sh
	section "learn: ranking devices, learn.select cv vs fed, alternately" \
	    tests/bench/learn_select.sh sh tests/bench/learn_select.sh
	section "gemm: the learning job's products vs cblas_sgemm, alternately" \
	    tests/bench/bench_gemm.c bench_gemm
	section "learn: the job at 2,000 and 200,000 items, alternately" \
	    tests/bench/learn_catalogue.sh sh tests/bench/learn_catalogue.sh
	echo
	if [ -s "$FAILED" ]; then
		echo "==== bench: failed: $(paste -sd, "$FAILED")"
	else
		echo "==== bench: all done"
	fi
} 2>&1 | tee "$OUT"
echo "(written to $OUT)"
[ ! -s "$FAILED" ]
