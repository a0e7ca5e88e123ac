#!/usr/bin/env python3
"""mix_fleet.py KEEPDIR MIXROW BASEROW OUTDIR: the logit-space mixture's
weight chosen for the fleet (federated selection of one weight), and
shrunk per device toward it (empirical Bayes), from the devices' own
cross-validation only.

MIXROW is a "-mix" row of an evaluation kept with EVAL_KEEP=KEEPDIR
(deviced/mix.h): its <dev>.extra holds the device's CV evidence for each
weight a of sigma(z0 + a (z1 - z0)), summed over its held-out local
samples (mx_g<k> logloss gains over the cloud model, mx_s<k> their
squares, mx_r<k> net pairs ordered better, mx_n samples). BASEROW is the
same method unshrunk (the "-mix-cv" row's fit: ft-mix-cv -> ft-cv,
ft-pair-mix-cv -> ft-pair-cv), whose test scores are z1.

Per round and for warm and cold devices apart (the cloud knows which
users its pool has), the weight is chosen from the pooled sums, as
cloudd's federated selection pools the devices' reported grids:
  fleet-g   the weight of the largest pooled logloss gain
  fleet-r   the weight of the most pooled net pairs
  fleet-gg  fleet-g where the device's own evidence at that weight passes
            the guard (n_local >= 4, gain - 1 se > 0, net pairs > 0), else
            the cloud model
  eb-g      per device, each weight's mean gain shrunk toward the fleet's
            (prior variance by moments over the fleet's devices), the
            weight of the largest posterior mean
No test label enters a choice. The test scores of cloud and BASEROW are
then mixed per device at the chosen weight and written as new rows, with
cloud, BASEROW and MIXROW, to OUTDIR/run-*/eval/<dev>.csv (and counts,
cold.csv), for bin/dccl-eval's paired tables (printed by this script's
caller; see scripts/eval-results.md, Issue 17, fourth pass).
"""
import collections
import glob
import math
import os
import shutil
import sys

from evalkeep import extra, rounds

ALPHA = [0, 0.125, 0.25, 0.5, 0.75, 1]
NA = len(ALPHA)


def logit(p):
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def main():
    keep, mrow, brow, out = sys.argv[1:5]
    tag = '' if len(sys.argv) < 6 else sys.argv[5]
    for run, cold in rounds(keep):
        if not os.path.isdir(run):
            continue
        devs = []
        for f in sorted(glob.glob(os.path.join(run, 'eval', '*.csv'))):
            ex = extra(f[:-4] + '.extra', mrow)
            user = None
            for line in open(f):
                user = line.split(',')[1]
                break
            if user is None:
                continue
            have = 'mx_n' in ex and ex['mx_n'] > 0
            devs.append(dict(f=f, user=user, cold=user in cold, ex=ex,
                             have=have, n=ex.get('n_local', 0)))
        # the fleet's choice per group, pooled sums
        choice = {}
        for grp in (False, True):
            ds = [d for d in devs if d['cold'] == grp and d['have']]
            if not ds:
                continue
            G = [sum(d['ex']['mx_g%d' % k] for d in ds) for k in range(NA)]
            R = [sum(d['ex']['mx_r%d' % k] for d in ds) for k in range(NA)]
            N = sum(d['ex']['mx_n'] for d in ds)
            kg = max(range(NA), key=lambda k: (G[k], -k))
            kr = max(range(NA), key=lambda k: (R[k], -k))
            # empirical-Bayes prior per weight: the devices' mean gains
            pri = []
            for k in range(NA):
                ms = [d['ex']['mx_g%d' % k] / d['ex']['mx_n'] for d in ds]
                vs = []
                for d in ds:
                    n = d['ex']['mx_n']
                    mu = d['ex']['mx_g%d' % k] / n
                    vs.append(max(d['ex']['mx_s%d' % k] / n - mu * mu, 0) / n)
                mu0 = sum(ms) / len(ms)
                var = sum((m - mu0) ** 2 for m in ms) / len(ms)
                t2 = max(1e-12, var - sum(vs) / len(vs))
                pri.append((mu0, t2))
            choice[grp] = (kg, kr, pri)
            print('%s %s%s: %d devices, %d held-out samples; pooled gain '
                  'per weight %s -> a = %g; net pairs %s -> a = %g' % (
                      os.path.basename(run), 'cold' if grp else 'warm', tag,
                      len(ds), N, ' '.join('%.1f' % g for g in G),
                      ALPHA[kg], ' '.join('%.0f' % r for r in R), ALPHA[kr]))
        od = os.path.join(out, os.path.basename(run), 'eval')
        os.makedirs(od, exist_ok=True)
        for fn in ('counts',):
            if os.path.exists(os.path.join(run, fn)):
                shutil.copy(os.path.join(run, fn),
                            os.path.join(out, os.path.basename(run), fn))
        dd = os.path.join(out, os.path.basename(run)[4:])
        os.makedirs(dd, exist_ok=True)
        cf = os.path.join(keep, os.path.basename(run)[4:], 'cold.csv')
        if os.path.exists(cf):
            shutil.copy(cf, os.path.join(dd, 'cold.csv'))
        for d in devs:
            rows = collections.defaultdict(list)
            for line in open(d['f']):
                m, u, i, y, s = line.strip().split(',')
                if m in ('cloud', brow, mrow):
                    rows[m].append((u, i, y, float(s)))
            ch = choice.get(d['cold'])
            ks = {'fleet-g': 0, 'fleet-r': 0, 'fleet-gg': 0, 'eb-g': 0}
            if ch is not None and d['have']:
                kg, kr, pri = ch
                ex = d['ex']
                n = ex['mx_n']
                ks['fleet-g'], ks['fleet-r'] = kg, kr
                mu = ex['mx_g%d' % kg] / n
                se = math.sqrt(max(ex['mx_s%d' % kg] / n - mu * mu, 0) / n)
                if d['n'] >= 4 and mu - se > 0 and ex['mx_r%d' % kg] > 0:
                    ks['fleet-gg'] = kg
                post = []
                for k in range(NA):
                    m_ = ex['mx_g%d' % k] / n
                    v = max(ex['mx_s%d' % k] / n - m_ * m_, 0) / n
                    mu0, t2 = pri[k]
                    post.append((t2 * m_ + v * mu0) / (t2 + v) if v > 0
                                else m_)
                ks['eb-g'] = max(range(NA), key=lambda k: (post[k], -k))
            with open(os.path.join(od, os.path.basename(d['f'])), 'w') as o:
                for m in ('cloud', brow, mrow):
                    for u, i, y, s in rows[m]:
                        o.write('%s,%s,%s,%s,%.9g\n' % (m, u, i, y, s))
                if len(rows['cloud']) != len(rows[brow]):
                    continue
                for name, k in sorted(ks.items()):
                    a = ALPHA[k]
                    for (u, i, y, s0), (_, _, _, s1) in zip(rows['cloud'],
                                                            rows[brow]):
                        z = logit(s0) + a * (logit(s1) - logit(s0))
                        o.write('%s%s,%s,%s,%s,%.9g\n' % (
                            name, tag, u, i, y, 1 / (1 + math.exp(-z))))


if __name__ == '__main__':
    main()
