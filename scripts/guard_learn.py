#!/usr/bin/env python3
"""guard_learn.py TRAIN_KEEP TEST_KEEP METHOD: a guard learnt by the fleet.

An ideal guard adapts the users whose expected gain is large
(guard_floor.py); the served guard reads each device's CV figures
through a fixed rule. This asks whether a predictor of the gain, fitted
across a fleet on validation data only, would choose better.

Fit (TRAIN_KEEP, validation only): for every device with a nested
validation (deviced/learn.h, struct learn_nested), the features of its
inner folds (z = nv_gain / nv_se, the net share of inner pairs ordered
better nv_rank / (cv_pairs - nv_opairs), the movement nv_mv,
log n_local) and the target, its last fold's AUC change nv_orank /
nv_opairs; least squares weighted by the last fold's size, per task's
users warm and cold apart. A device would apply it to its full CV
figures (cv_gain / cv_se, cv_rank / cv_pairs, cv_mv, log n_local): what
federated selection could ship.

Choice (TRAIN_KEEP's nested validation only, choose()): the threshold t
closest to issue 17's goal on the fitting fleet's last folds.

Measure (TEST_KEEP, another evaluation's rounds, test labels): the
chosen rule and, for the frontier, "adopt if prediction > t" at several
quantiles, against the served guard and the rules of the same family it
has (gain - z se > 0, rank > 0), as the share of users worse and of the
unguarded gain kept.
"""
import math
import sys

from guard_select import devices, last_folds, replay_last, replay_test


def feats(d, nested):
    if nested:
        ip = d['cp'] - d['op']
        return [1.0, clip(d['ng'] / d['nse'] if d['nse'] > 0 else 0),
                d['nrk'] / ip if ip > 0 else 0.0, d['nmv'],
                math.log(max(d['n'], 1))]
    return [1.0, clip(d['g'] / d['se'] if d['se'] > 0 else 0),
            d['rk'] / d['cp'] if d['cp'] > 0 else 0.0, d['mv'],
            math.log(max(d['n'], 1))]


def clip(x):
    return max(-10.0, min(10.0, x))


def solve(a, b):
    """Gaussian elimination with a small ridge, for the normal
    equations."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for i in range(n):
        m[i][i] += 1e-6
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        for r in range(n):
            if r != c and m[c][c] != 0:
                f = m[r][c] / m[c][c]
                m[r] = [x - f * y for x, y in zip(m[r], m[c])]
    return [m[i][n] / m[i][i] if m[i][i] else 0.0 for i in range(n)]


def fit(ds):
    ev = [d for d in last_folds(ds) if d['cp'] > d['op']]
    k = 5
    a = [[0.0] * k for _ in range(k)]
    b = [0.0] * k
    for d in ev:
        x, y, w = feats(d, True), d['ork'] / d['op'], d['on']
        for i in range(k):
            b[i] += w * x[i] * y
            for j in range(k):
                a[i][j] += w * x[i] * x[j]
    return solve(a, b), len(ev)


def frontier(ds, f):
    us = [d for d in ds if d['da'] is not None]
    w, k = replay_test(us, f)
    return 100 * w, 100 * k


def pred(beta, d, nested):
    return sum(b * x for b, x in zip(beta, feats(d, nested)))


def choose(ds, beta):
    """The threshold t on the predicted gain, on the fitting fleet's
    nested validation only: each quantile of its nested predictions is
    replayed on the last folds (as guard_select.py: worse = adopted
    devices whose last-fold AUC drops, over all; kept = their share of
    the last folds' sample-weighted AUC change), and the t closest to
    the goal, max(0, worse - 2 %) + max(0, 80 % - kept) in points, wins;
    the served guard's distance on the same folds beside it. The
    predictor was fitted on these folds, so this flatters it."""
    ev = [d for d in last_folds(ds) if d['cp'] > d['op']]

    def dist(f):
        w, k = replay_last(ev, lambda d: d['n'] >= 4 and f(d))
        w, k = 100 * w, 100 * k
        return max(0.0, w - 2) + max(0.0, 80 - k), w, k

    ps = sorted(pred(beta, d, True) for d in ev)
    best = None
    for q in range(1, 10):
        t = ps[int(q / 10 * (len(ps) - 1))]
        r = dist(lambda d, t=t: pred(beta, d, True) > t)
        if best is None or r[0] < best[1][0]:
            best = (t, r)
    served = dist(lambda d: d['ng'] - d['nse'] > 0 and d['nrk'] > 0)
    return best, served


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    train = devices(sys.argv[1], sys.argv[3])
    test = devices(sys.argv[2], sys.argv[3])
    print('| users | rule | adopted | users worse | kept |')
    print('|---|---|---|---|---|')
    for grp in ('warm', 'cold'):
        tr = [d for r in train.values() for d in r
              if d['cold'] == (grp == 'cold')]
        te = [d for r in test.values() for d in r
              if d['cold'] == (grp == 'cold') and d['da'] is not None]
        if not tr or not te:
            continue
        beta, nfit = fit(tr)
        print('| %s | fitted on %d devices: %s | | | |' % (
            grp, nfit, ', '.join('%+.4f' % x for x in beta)))
        rules = []
        for z in (0, 1, 2, 3):
            rules.append(('gain - %g se > 0, rank > 0%s' % (
                z, ' (served)' if z == 1 else ''),
                lambda d, z=z: d['n'] >= 4 and d['g'] - z * d['se'] > 0
                and d['rk'] > 0))
        preds = sorted(sum(b * x for b, x in zip(beta, feats(d, False)))
                       for d in te)
        for q in (0.5, 0.6, 0.7, 0.8, 0.9):
            t = preds[int(q * (len(preds) - 1))]
            rules.append(('predicted gain > its %g quantile (%+.4f)'
                          % (q, t), lambda d, t=t: d['n'] >= 4 and
                          sum(b * x for b, x in zip(beta, feats(d, False)))
                          > t))
        (t, vr), vs = choose(tr, beta)
        rules.append(('chosen on validation: predicted gain > %+.4f '
                      '(validation %.1f %% / %.0f %%, distance %.1f; '
                      'served %.1f %% / %.0f %%, %.1f)' % (
                          t, vr[1], vr[2], vr[0], vs[1], vs[2], vs[0]),
                      lambda d, t=t: d['n'] >= 4 and
                      pred(beta, d, False) > t))
        for name, f in rules:
            w, k = frontier(te, f)
            n = sum(1 for d in te if f(d))
            print('| %s | %s | %.0f %% | %.1f %% | %.0f %% |' % (
                grp, name, 100 * n / len(te), w, k))


if __name__ == '__main__':
    main()
