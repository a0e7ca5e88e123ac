#!/usr/bin/python3
"""faiss reference for bench_retrieve: reads the raw files bench_retrieve -o
DIR wrote (same vectors, same queries, our IVF centroids) and times
IndexFlatIP and IndexIVFFlat (same nlist, nprobe and centroids) on one
thread. Prints "RESULT faiss_<name> <value>" lines for bench_retrieve.sh.

usage: retrieve_faiss.py DIR
"""
import sys
import time

import numpy as np
import faiss


def timed(index, Q, k, bs):
    t0 = time.perf_counter()
    ids = []
    for i in range(0, len(Q), bs):
        _, I = index.search(Q[i:i + bs], k)
        ids.append(I)
    return (time.perf_counter() - t0) / len(Q), np.vstack(ids)


def recall(I, gt):
    k = gt.shape[1]
    return sum(len(set(a) & set(b)) for a, b in zip(I, gt)) / (len(gt) * k)


def main():
    d_ = sys.argv[1]
    n, d, nq, k, nlist, nprobe, nq1, bs = map(
        int, open(f"{d_}/meta.txt").read().split())
    X = np.fromfile(f"{d_}/base.f32", dtype=np.float32).reshape(n, d)
    Q = np.fromfile(f"{d_}/queries.f32", dtype=np.float32).reshape(nq, d)
    C = np.fromfile(f"{d_}/centroids.f32",
                    dtype=np.float32).reshape(nlist, d)
    gt = np.fromfile(f"{d_}/gt.u64", dtype=np.uint64).reshape(nq, k)
    gt = gt.astype(np.int64)
    faiss.omp_set_num_threads(1)

    flat = faiss.IndexFlatIP(d)
    flat.add(X)
    t1, I1 = timed(flat, Q[:nq1], k, 1)
    tb, Ib = timed(flat, Q, k, bs)
    agree = recall(Ib, gt)
    print(f"faiss flat: single {t1 * 1e3:.3f} ms/query ({1 / t1:.0f} q/s), "
          f"batch {bs} {tb * 1e3:.3f} ms/query ({1 / tb:.0f} q/s), "
          f"agreement with our exact top-{k} {agree:.4f}")

    quant = faiss.IndexFlatIP(d)
    quant.add(C)
    ivf = faiss.IndexIVFFlat(quant, d, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.is_trained = True
    t0 = time.perf_counter()
    ivf.add(X)
    tadd = time.perf_counter() - t0
    ivf.nprobe = nprobe
    ti1, Ii = timed(ivf, Q, k, 1)
    tib, _ = timed(ivf, Q, k, bs)
    rec = recall(Ii, gt)
    print(f"faiss ivfflat (our centroids, nlist={nlist} nprobe={nprobe}, "
          f"add {tadd:.1f} s): single {ti1 * 1e3:.3f} ms/query, "
          f"batch {bs} {tib * 1e3:.3f} ms/query, recall@{k} {rec:.4f}")

    for name, v in (("flat_single_ms", t1 * 1e3), ("flat_batch_ms", tb * 1e3),
                    ("flat_agree", agree), ("ivf_single_ms", ti1 * 1e3),
                    ("ivf_batch_ms", tib * 1e3), ("ivf_recall", rec)):
        print(f"RESULT faiss_{name} {v:.4f}")


if __name__ == "__main__":
    main()
