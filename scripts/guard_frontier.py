#!/usr/bin/env python3
"""guard_frontier.py KEEPDIR METHOD: what a guard could keep of METHOD's gain.

Reads the per-device files an evaluation kept (EVAL_KEEP=KEEPDIR
scripts/eval.sh ...): for every round KEEPDIR/run-TASK-SEED/eval, each
device's test predictions (<dev>.csv) and its cross-validation figures
(<dev>.extra: n_local, cv_gain, cv_se, cv_rank). For warm and cold users
it prints the unguarded mean per-user AUC gain of METHOD over the cloud
model (impression-weighted, as GAUC) and, for a family of adoption rules
over the CV figures, the share of that gain a rule keeps and the share of
users it leaves worse. This reads test labels: it is an analysis of how
informative the devices' validation evidence is, never a way to choose a
rule (a rule is chosen on validation data only: scripts/guard_select.py).
The "EB" rules shrink each device's CV gain toward its round's fleet
(empirical Bayes, prior from the devices' CV figures, no test label).
The "movement" rules adopt only where the method reorders the user's
test candidates most (scores only, no label; thresholds are quantiles
of the group's movements), which a device could measure on the
candidates it ranks but does not today.
"""
import collections
import glob
import os
import sys

from evalkeep import auc, extra, rounds, scores


def users(keep, meth):
    out = []
    for run, cold in rounds(keep):
        for f in glob.glob(os.path.join(run, 'eval', '*.csv')):
            rows, user = scores(f)
            ex = extra(f[:-4] + '.extra', meth)
            a0 = auc(rows['cloud'])
            a1 = auc(rows[meth]) if meth in rows else None
            if a0 is None or a1 is None:
                continue
            out.append(dict(run=run, cold=user in cold, w=len(rows['cloud']),
                            da=a1 - a0, n=ex.get('n_local', 0),
                            g=ex.get('cv_gain', 0), se=ex.get('cv_se', 0),
                            rk=ex.get('cv_rank', 0),
                            mv=movement(rows['cloud'], rows[meth])))
    return out


def movement(ra, rb):
    """How far METHOD reorders the user's candidates: the mean change of
    a candidate's rank, over the number of candidates squared (0: same
    order). Scores only, no label: a device can measure it on the
    candidates it ranks."""
    n = len(ra)
    if n < 2 or len(rb) != n:
        return 0.0
    pa = sorted(range(n), key=lambda i: ra[i][1])
    pb = sorted(range(n), key=lambda i: rb[i][1])
    rank_a, rank_b = [0] * n, [0] * n
    for r, i in enumerate(pa):
        rank_a[i] = r
    for r, i in enumerate(pb):
        rank_b[i] = r
    return sum(abs(rank_a[i] - rank_b[i]) for i in range(n)) / n / n


def eb(us):
    """Empirical Bayes over each round's fleet (validation figures only):
    prior N(mu, tau^2) of the per-device CV gain, by moments (tau^2 =
    variance of cv_gain minus the mean cv_se^2); r['pm'], r['ps'] the
    posterior mean and sd of each device's gain."""
    byrun = collections.defaultdict(list)
    for r in us:
        byrun[(r['run'], r['cold'])].append(r)
    for (run, cold), rs in sorted(byrun.items()):
        mu = sum(r['g'] for r in rs) / len(rs)
        var = sum((r['g'] - mu) ** 2 for r in rs) / len(rs)
        t2 = max(1e-12, var - sum(r['se'] ** 2 for r in rs) / len(rs))
        for r in rs:
            v = r['se'] ** 2
            r['pm'] = (t2 * r['g'] + v * mu) / (t2 + v) if v > 0 else r['g']
            r['ps'] = (t2 * v / (t2 + v)) ** 0.5 if v > 0 else 0
        print('EB prior %s %s: mu %+.4f tau %.4f, median cv_se %.4f' % (
            os.path.basename(run), 'cold' if cold else 'warm', mu,
            t2 ** 0.5, sorted(r['se'] for r in rs)[len(rs) // 2]))


def main():
    keep, meth = sys.argv[1], sys.argv[2]
    us = users(keep, meth)
    eb(us)
    rules = [('oracle (test sign)', lambda r: r['da'] > 0)]
    for z in (0, 0.5, 1, 2, 3):
        rules.append(('gain - %g se > 0' % z,
                      lambda r, z=z: r['g'] - z * r['se'] > 0))
        rules.append(('gain - %g se > 0, rank > 0' % z,
                      lambda r, z=z: r['g'] - z * r['se'] > 0 and
                      r['rk'] > 0))
    for z in (0, 1, 2):
        rules.append(('EB posterior mean - %g sd > 0, rank > 0' % z,
                      lambda r, z=z: r['pm'] - z * r['ps'] > 0 and
                      r['rk'] > 0))
    rules.append(('rank > 0', lambda r: r['rk'] > 0))
    for nmin in (10, 20, 40, 80):
        rules.append(('n_local >= %d' % nmin,
                      lambda r, nmin=nmin: r['n'] >= nmin))
    for grp in ('warm', 'cold'):
        rs = [r for r in us if r['cold'] == (grp == 'cold')]
        if not rs:
            continue
        # movement thresholds: quantiles of the group's own movements
        mvs = sorted(r['mv'] for r in rs)
        grules = list(rules)
        for q in (0.5, 0.75):
            t = mvs[int(q * (len(mvs) - 1))]
            grules.append(('movement >= its %g quantile' % q,
                           lambda r, t=t: r['mv'] >= t))
            for z in (0, 1):
                grules.append(('gain - %g se > 0, rank > 0, movement >= '
                               'its %g quantile' % (z, q),
                               lambda r, t=t, z=z: r['g'] - z * r['se'] > 0
                               and r['rk'] > 0 and r['mv'] >= t))
        W = sum(r['w'] for r in rs)
        tot = sum(r['w'] * r['da'] for r in rs) / W
        print('%s users (user-runs) %d: %s mean AUC gain %+.4f, %.1f %% '
              'worse' % (grp, len(rs), meth, tot,
                         100 * sum(r['da'] < 0 for r in rs) / len(rs)))
        print('| rule | adopted | gain kept | users worse |')
        print('|---|---|---|---|')
        for name, f in grules:
            sel = [r for r in rs if f(r)]
            g = sum(r['w'] * r['da'] for r in sel) / W
            print('| %s | %.1f %% | %.0f %% | %.1f %% |' % (
                name, 100 * len(sel) / len(rs),
                100 * g / tot if tot else 0,
                100 * sum(r['da'] < 0 for r in sel) / len(rs)))
        print()


if __name__ == '__main__':
    main()
