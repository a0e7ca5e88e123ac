#!/usr/bin/env python3
"""guard_floor.py [--se-scale X] KEEPDIR METHOD [warm|cold]: the best any
guard could do.

Issue 17 asks a guard to leave at most 2 % of users worse than the cloud
model while keeping at least 80 % of the unguarded mean gain. A user's
measured change is their true expected change plus the noise of their
own test sample, so even a guard that knew each user's true expected
gain mu_u would leave some of the users it adapts worse on test. This
script estimates that floor from METHOD's unguarded test predictions in
an EVAL_KEEP directory (it reads test labels and chooses nothing):

1. per user-round, the paired change d_u of AUC (METHOD minus the cloud
   model, over the user's test rows, as guard_ratio.py) and its standard
   error s_u by DeLong's method for two scorers on the same samples;
2. an empirical-Bayes model of the true changes: within each quartile of
   s_u, mu ~ N(m, tau^2) with m the mean of d and tau^2 = var(d) -
   mean(s^2) (method of moments; the quartiles let the spread of the
   true gains depend on how much test data a user has);
3. the ideal guard adapts exactly the users with mu_u > t; for each t it
   leaves worse, in expectation, the sum over users of
   E[1(mu_u > t) P(d_u < 0 | mu_u)], and keeps E[mu 1(mu > t)] of E[mu]
   (impression weighted, as guard_ratio.py); each user's prior is taken
   as 200 equally likely values of mu (its quantiles).

It prints the model's check (the share of users worse it predicts for
the unguarded method against the share measured), then the ideal
frontier: users worse at each share kept. If at 80 % kept the ideal
guard already leaves more than 2 % worse, no guard meets the goal on
these test sets. The model assumes normal true gains within a quartile
and normal test noise; DeLong's error is the usual large-sample one
(on these users a bootstrap over the user's test rows gives 5-15 %
larger errors: --se-scale X multiplies every s_u by X, to see how much
the frontier depends on it).
"""
import bisect
import collections
import glob
import math
import os
import statistics
import sys

from evalkeep import rounds, scores


def placements(pos, neg):
    """DeLong's placement values: for each positive the share of
    negatives below it, for each negative the share of positives above
    it (ties half)."""
    sn, sp = sorted(neg), sorted(pos)
    v10 = [(bisect.bisect_left(sn, x) + bisect.bisect_right(sn, x)) /
           (2.0 * len(sn)) for x in pos]
    v01 = [(len(sp) - (bisect.bisect_left(sp, y) +
                       bisect.bisect_right(sp, y)) / 2.0) / len(sp)
           for y in neg]
    return v10, v01


def var(xs):
    n = len(xs)
    if n < 2:
        return 0.0
    mu = sum(xs) / n
    return sum((x - mu) ** 2 for x in xs) / (n - 1)


def paired(rows_a, rows_b):
    """(AUC_b - AUC_a, its DeLong standard error) on the same rows, or
    None without both classes."""
    ya = [y for y, _ in rows_a]
    if [y for y, _ in rows_b] != ya:
        return None
    ia = [i for i, y in enumerate(ya) if y >= 0.5]
    ib = [i for i, y in enumerate(ya) if y < 0.5]
    if not ia or not ib:
        return None
    out = []
    for rows in (rows_a, rows_b):
        s = [x for _, x in rows]
        out.append(placements([s[i] for i in ia], [s[i] for i in ib]))
    (a10, a01), (b10, b01) = out
    d10 = [b - a for a, b in zip(a10, b10)]
    d01 = [b - a for a, b in zip(a01, b01)]
    d = sum(d10) / len(d10)
    se = math.sqrt(var(d10) / len(d10) + var(d01) / len(d01))
    return d, se


def cdf(x):
    return 0.5 * math.erfc(-x / math.sqrt(2))


def main():
    args = sys.argv[1:]
    scale = 1.0
    if len(args) > 1 and args[0] == '--se-scale':
        scale = float(args[1])
        args = args[2:]
    if len(args) < 2:
        sys.exit(__doc__)
    keep, meth = args[0], args[1]
    grp = args[2] if len(args) > 2 else 'warm'
    units = []          # (d, se, w)
    for run, cold in rounds(keep):
        for f in glob.glob(os.path.join(run, 'eval', '*.csv')):
            rows, user = scores(f)
            if (user in cold) != (grp == 'cold'):
                continue
            if meth not in rows or 'cloud' not in rows:
                continue
            r = paired(rows['cloud'], rows[meth])
            if r is None:
                continue
            units.append((r[0], scale * r[1], len(rows['cloud'])))
    # users whose order the method did not change (d = 0, s = 0) cannot
    # end worse and add no gain: they count among the users, not the model
    same = sum(1 for d, se, _ in units if se == 0 and d == 0)
    units = [u for u in units if not (u[1] == 0 and u[0] == 0)]
    if len(units) < 8:
        sys.exit('guard_floor: %d user-rounds of %s (%s): too few'
                 % (len(units), meth, grp))

    # the true gains' model per quartile of the standard error
    order = sorted(range(len(units)), key=lambda i: units[i][1])
    q = 4
    model = [None] * len(units)
    print('| quartile of s | user-rounds | mean s | m | tau |')
    print('|---|---|---|---|---|')
    for k in range(q):
        idx = order[k * len(order) // q:(k + 1) * len(order) // q]
        ds = [units[i][0] for i in idx]
        m = sum(ds) / len(ds)
        s2 = sum(units[i][1] ** 2 for i in idx) / len(idx)
        tau = math.sqrt(max(var(ds) - s2, 1e-12))
        for i in idx:
            model[i] = (m, tau)
        print('| %d | %d | %.4f | %+.4f | %.4f |'
              % (k + 1, len(idx), math.sqrt(s2), m, tau))

    # each unit's prior as K equally likely values of mu (its quantiles),
    # so a spread tau far below the others' is not lost between points
    K = 200
    nd = statistics.NormalDist()
    zs = [nd.inv_cdf((k + 0.5) / K) for k in range(K)]
    worse_meas = sum(1 for d, _, _ in units if d < 0) / (len(units) + same)
    pts = []            # (mu, expected worse users, weighted gain)
    worse_all = 0.0
    total = 0.0
    for (d, se, w), (m, tau) in zip(units, model):
        se = max(se, 1e-12)
        for z in zs:
            mu = m + tau * z
            pw = cdf(-mu / se) / K
            pts.append((mu, pw, w * mu / K))
            worse_all += pw
        total += w * m
    n = len(units) + same
    print()
    print('%s, %s users: %d user-rounds (%d with their order unchanged); '
          'users worse unguarded: model %.1f %%, measured %.1f %%; mean '
          'gain %+.4f' % (meth, grp, n, same, 100 * worse_all / n,
                          100 * worse_meas, sum(d for d, _, _ in units) / n))
    print()
    print('| ideal guard adapts mu > t | kept | users worse |')
    print('|---|---|---|')
    # sweep t from high to low: cumulative sums from the largest mu
    cw, cg, marks = 0.0, 0.0, [0.2, 0.4, 0.6, 0.8, 0.9, 1.0]
    rows = []
    for mu, pw, g in sorted(pts, reverse=True):
        cw += pw
        cg += g
        rows.append((mu, cg / total, cw / n))
    best = max(k for _, k, _ in rows)
    for mk in marks + [best]:
        hit = [r for r in rows if r[1] >= mk - 1e-12]
        if not hit:
            continue
        t, k, wv = min(hit, key=lambda r: r[2])
        print('| %+.4f | %.0f %% | %.1f %% |' % (t, 100 * k, 100 * wv))
    at80 = [r for r in rows if r[1] >= 0.8]
    if at80:
        wv = min(r[2] for r in at80)
        print()
        print('at 80 %% kept the ideal guard leaves %.1f %% worse (goal '
              '<= 2 %%)' % (100 * wv))


if __name__ == '__main__':
    main()
