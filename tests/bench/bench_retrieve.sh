#!/bin/sh
# bench_retrieve.sh: cloudd/coda_retrieve.c against faiss on the same data.
#
# bin/bench_retrieve generates 1M x 32 normalised Gaussian-mixture vectors
# and 1000 queries (fixed seed), times exact and IVF search, and writes the
# data, its exact top-100 and its IVF centroids as raw float32 files into a
# temp dir; retrieve_faiss.py times faiss IndexFlatIP and IndexIVFFlat (our
# centroids, same nlist/nprobe) on them. One thread for both. Prints:
#   exact vs faiss flat: X×      (goal <= 1.5, time ratio ours/faiss)
#   ivf recall@100: R            (goal >= 0.95)
#   ivf speedup vs exact: S×     (goal >= 5)
# Extra arguments go to bin/bench_retrieve (e.g. -s 2 for weaker clusters).
set -eu

BIN=${DCCL_BIN:-bin}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3

if ! $PY -c 'import faiss, numpy' 2>/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y python3-faiss python3-numpy >/dev/null 2>&1 || {
		apt-get update >/dev/null
		apt-get install -y python3-faiss python3-numpy >/dev/null
	}
fi
[ -x "$BIN/bench_retrieve" ] || make "$BIN/bench_retrieve" >/dev/null

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench_retrieve.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

"$BIN/bench_retrieve" -o "$TMP" "$@" | tee "$TMP/c.out" | grep -v '^RESULT'
$PY "$HERE/retrieve_faiss.py" "$TMP" | tee "$TMP/py.out" | grep -v '^RESULT'

cat "$TMP/c.out" "$TMP/py.out" | awk '
/^RESULT/ { v[$2] = $3 }
END {
	printf "exact vs faiss flat: %.2f× (time ours/faiss; single query: %.3f vs %.3f ms), " \
	    "%.2f× (batch 64: %.3f vs %.3f ms/query)\n",
	    v["exact_single_ms"] / v["faiss_flat_single_ms"],
	    v["exact_single_ms"], v["faiss_flat_single_ms"],
	    v["exact_batch_ms"] / v["faiss_flat_batch_ms"],
	    v["exact_batch_ms"], v["faiss_flat_batch_ms"]
	printf "ivf recall@100: %.4f (faiss ivfflat, same lists: %.4f)\n",
	    v["ivf_recall"], v["faiss_ivf_recall"]
	printf "ivf speedup vs exact: %.1f× (single query), %.1f× (batch 64)\n",
	    v["exact_single_ms"] / v["ivf_single_ms"],
	    v["exact_batch_ms"] / v["ivf_batch_ms"]
	printf "ivf vs faiss ivfflat: %.2f× (single), %.2f× (batch 64) " \
	    "time ratio\n",
	    v["ivf_single_ms"] / v["faiss_ivf_single_ms"],
	    v["ivf_batch_ms"] / v["faiss_ivf_batch_ms"]
}'
