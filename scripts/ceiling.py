#!/usr/bin/python3
"""ceiling.py: how much within-user signal a MovieLens CTR label holds.

An analysis (issue 17), not a method and not a choice of any setting:
it asks what the best-known warm-user personalizations gain in per-user
GAUC over item popularity alone, when each is fitted on all training
data, the user's own included. If they gain little, no device method can
gain much more on this label, whatever it learns.

    /usr/bin/python3 scripts/ceiling.py DATA_DIR [SEED]

DATA_DIR holds ratings.csv (ml-latest-small and later) or u.data
(MovieLens 100K). Each user's ratings in time order: the first 80 %
train, the rest test; label = rating >= 4. Rows, each against
"popularity" (the item's smoothed positive rate on train, a logit):

  mf-8, mf-32    logistic matrix factorization, item popularity as an
                 offset plus a user bias and K factors, SGD over train
  kernel         Nadaraya-Watson over the user's own train ratings of
                 the popularity's residuals, item vectors from the SVD
                 (rank 16) of every user's train residuals (deviced/krc.h
                 with a better item space)

GAUC: impression-weighted mean of per-user AUC over users with both
classes in test; the interval is a paired bootstrap over users (1,000).
numpy is needed (Debian's python3-numpy: run with /usr/bin/python3).
"""
import collections
import csv
import math
import os
import sys

import numpy as np


def load(d):
    r = collections.defaultdict(list)
    p = os.path.join(d, "ratings.csv")
    if os.path.exists(p):
        for row in csv.DictReader(open(p)):
            r[int(row["userId"])].append((int(row["timestamp"]),
                                          int(row["movieId"]),
                                          float(row["rating"])))
    else:
        for line in open(os.path.join(d, "u.data")):
            u, i, x, t = line.split()
            r[int(u)].append((int(t), int(i), float(x)))
    return r


def auc(s, y):
    s = np.asarray(s)
    y = np.asarray(y, bool)
    p, n = s[y], s[~y]
    if len(p) == 0 or len(n) == 0:
        return None
    return ((p[:, None] > n[None, :]).mean() +
            0.5 * (p[:, None] == n[None, :]).mean())


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    rng = np.random.default_rng(seed)
    R = load(sys.argv[1])
    train, test = [], {}
    for u, l in R.items():
        l.sort()
        k = int(len(l) * 0.8)
        train += [(u,) + x for x in l[:k]]
        test[u] = (l[:k], l[k:])
    items = sorted({x[2] for x in train})
    ix = {i: n for n, i in enumerate(items)}
    users = sorted(R)
    ux = {u: n for n, u in enumerate(users)}
    ic, ip = collections.Counter(), collections.Counter()
    g = sum(1 for x in train if x[3] >= 4) / len(train)
    for u, t, i, r in train:
        ic[i] += 1
        ip[i] += r >= 4

    def pop(i):
        return math.log((ip[i] + 5 * g) / (ic[i] - ip[i] + 5 * (1 - g)))

    def res(i, r):
        return (r >= 4) - 1 / (1 + math.exp(-pop(i)))

    scorers = {}
    for K in (8, 32):
        P = 0.05 * rng.standard_normal((len(users), K))
        Q = 0.05 * rng.standard_normal((len(items), K))
        bu = np.zeros(len(users))
        tr = [(ux[u], ix[i], float(r >= 4), pop(i)) for u, t, i, r in train]
        for _ in range(20):
            rng.shuffle(tr)
            for u, i, y, b in tr:
                z = b + bu[u] + P[u] @ Q[i]
                gr = 1 / (1 + math.exp(-z)) - y
                bu[u] -= 0.05 * (gr + 0.05 * bu[u])
                pu = P[u].copy()
                P[u] -= 0.05 * (gr * Q[i] + 0.05 * P[u])
                Q[i] -= 0.05 * (gr * pu + 0.05 * Q[i])
        scorers["mf-%d" % K] = (lambda P, Q, bu: lambda u, i, mem:
                                bu[ux[u]] + P[ux[u]] @ Q[ix[i]]
                                if i in ix else 0)(P, Q, bu)
    M = np.zeros((len(users), len(items)), dtype=np.float32)
    for u, t, i, r in train:
        M[ux[u], ix[i]] = res(i, r)
    _, S, Vt = np.linalg.svd(M, full_matrices=False)
    V = Vt[:16].T * S[:16]
    V /= np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-9)

    def kernel(u, i, mem):
        if i not in ix or not mem:
            return 0
        E = V[[ix[j] for _, j, _ in mem]]
        rr = np.array([res(j, r) for _, j, r in mem])
        k = np.exp(10 * (E @ V[ix[i]] - 1))
        return 2 * (k @ rr) / (1 + k.sum())
    scorers["kernel"] = kernel

    per = {m: {} for m in ["popularity"] + list(scorers)}
    for u, (mem, te) in test.items():
        mem = [x for x in mem if x[1] in ix]
        y = [r >= 4 for _, _, r in te]
        z0 = [pop(i) if i in ix else math.log(g / (1 - g)) for _, i, _ in te]
        a0 = auc(z0, y)
        if a0 is None:
            continue
        per["popularity"][u] = (a0, len(y))
        for m, f in scorers.items():
            per[m][u] = (auc([z + f(u, i, mem) for z, (_, i, _) in
                              zip(z0, te)], y), len(y))
    us = sorted(per["popularity"])
    w = np.array([per["popularity"][u][1] for u in us], float)
    a0 = np.array([per["popularity"][u][0] for u in us])
    print("%d users with both classes in test; GAUC, and the paired "
          "per-user bootstrap against popularity" % len(us))
    print("popularity  %.4f" % ((a0 * w).sum() / w.sum()))
    for m in scorers:
        a = np.array([per[m][u][0] for u in us])
        d = a - a0
        bs = []
        for _ in range(1000):
            s = rng.integers(0, len(us), len(us))
            bs.append((d[s] * w[s]).sum() / w[s].sum())
        print("%-10s  %.4f  %+.4f [%+.4f, %+.4f]" % (
            m, (a * w).sum() / w.sum(), (d * w).sum() / w.sum(),
            np.percentile(bs, 2.5), np.percentile(bs, 97.5)))


if __name__ == "__main__":
    main()
