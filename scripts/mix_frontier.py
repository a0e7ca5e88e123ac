#!/usr/bin/env python3
"""mix_frontier.py KEEPDIR MIXROW BASEROW: adoption rules over the
logit-space mixture's CV evidence, and what each keeps on test.

Like guard_frontier.py, this reads test labels: it shows how informative
the devices' validation evidence is for a rule, and chooses nothing.
MIXROW is a "-mix" row (its .extra has the device's CV evidence per
weight a, deviced/mix.h), BASEROW the same fit unshrunk (ft-mix-cv ->
ft-cv). A rule maps a device's evidence to a weight a (0: the cloud
model); the device's test scores are then sigma(z0 + a (z1 - z0)). For
warm and cold users: the share of BASEROW's mean per-user AUC gain
(impression-weighted) each rule keeps, and the users it leaves worse
(per user and seed).
"""
import glob
import math
import os
import sys

from evalkeep import auc, extra, rounds, scores

ALPHA = [0, 0.125, 0.25, 0.5, 0.75, 1]
NA = len(ALPHA)


def logit(p):
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def ev(ex, k):
    n = ex['mx_n']
    mu = ex['mx_g%d' % k] / n
    se = math.sqrt(max(ex['mx_s%d' % k] / n - mu * mu, 0) / n)
    return mu, se, ex['mx_r%d' % k]


def passes(ex, k, z, nmin=4):
    mu, se, r = ev(ex, k)
    return k > 0 and ex.get('n_local', 0) >= nmin and mu - z * se > 0 and r > 0


def rules():
    out = []
    for z in (0.5, 1, 1.5, 2):
        out.append(('a = 1 if guard(1), z %g (ft-guard)' % z,
                    lambda ex, z=z: NA - 1 if passes(ex, NA - 1, z) else 0))
        out.append(('largest a passing guard, z %g' % z,
                    lambda ex, z=z: max([k for k in range(NA)
                                         if passes(ex, k, z)] or [0])))
        out.append(('smallest a passing guard, z %g' % z,
                    lambda ex, z=z: min([k for k in range(1, NA)
                                         if passes(ex, k, z)] or [0])))
        out.append(('a of most gain, then guard, z %g (ft-mix)' % z,
                    lambda ex, z=z: (lambda k: k if passes(ex, k, z) else 0)(
                        max(range(NA), key=lambda k: (ex['mx_g%d' % k], -k)))))
        out.append(('a of most pairs, then guard, z %g (ft-mixr)' % z,
                    lambda ex, z=z: (lambda k: k if passes(ex, k, z) else 0)(
                        max(range(NA), key=lambda k: (ex['mx_r%d' % k], -k)))))
    for k in range(1, NA):
        out.append(('a = %g if guard(a), z 1' % ALPHA[k],
                    lambda ex, k=k: k if passes(ex, k, 1) else 0))
    return out


def main():
    keep, mrow, brow = sys.argv[1:4]
    rs = rules()
    res = {False: [], True: []}
    for run, cold in rounds(keep):
        for f in glob.glob(os.path.join(run, 'eval', '*.csv')):
            rows, user = scores(f)
            ex = extra(f[:-4] + '.extra', mrow)
            if 'mx_n' not in ex or ex['mx_n'] <= 0:
                ks = [0] * len(rs)
            else:
                ks = [r(ex) for _, r in rs]
            c, b = rows.get('cloud'), rows.get(brow)
            if not c or not b or auc(c) is None:
                continue
            a0 = auc(c)
            da1 = auc(b) - a0
            das = []
            for k in ks:
                a = ALPHA[k]
                mixed = [(y, logit(s0) + a * (logit(s1) - logit(s0)))
                         for (y, s0), (_, s1) in zip(c, b)]
                das.append(auc(mixed) - a0 if k else 0.0)
            res[user in cold].append((len(c), da1, das))
    for grp in (False, True):
        us = res[grp]
        if not us:
            continue
        W = sum(w for w, _, _ in us)
        tot = sum(w * d for w, d, _ in us) / W
        print('%s users (user-runs) %d: %s mean AUC gain %+.4f, %.1f %% worse'
              % ('cold' if grp else 'warm', len(us), brow, tot,
                 100 * sum(d < 0 for _, d, _ in us) / len(us)))
        print('| rule | adopted | gain kept | users worse |')
        print('|---|---|---|---|')
        for j, (name, _) in enumerate(rs):
            g = sum(w * das[j] for w, _, das in us) / W
            print('| %s | %.1f %% | %.0f %% | %.1f %% |' % (
                name, 100 * sum(das[j] != 0 for _, _, das in us) / len(us),
                100 * g / tot if tot else 0,
                100 * sum(das[j] < 0 for _, _, das in us) / len(us)))
        print()


if __name__ == '__main__':
    main()
