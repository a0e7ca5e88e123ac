#!/usr/bin/env python3
"""fleet_pick.py KEEPDIR OUTDIR NAME ROW1,ROW2,... [rank|gain] [Z]: one row
per round and user group chosen for the whole fleet from the devices'
pooled cross-validation, as federated selection pools their reports.

For every round of an evaluation kept with EVAL_KEEP=KEEPDIR, and for
warm and cold devices apart (the cloud knows which users its pool has),
it sums each candidate row's .extra cv_rank (net held-out pairs ordered
better than the cloud model; "rank", the default) or cv_gain (mean
held-out logloss gain per device; "gain") over the devices and picks the
largest. With Z (rank only) it applies cloudd's rule for the pair weight
(cloudd/fedsel.h, fedsel_choose_pw) instead: over the devices with a
cv_rank in every candidate row, a row replaces the first (the default)
only if its summed difference from it exceeds Z standard errors of that
sum, sqrt(sum d_i^2 - d^2 / D); among those the largest sum, else the
first (scripts/eval-results.md, Issue 17, fifth pass, checks that the daemons
choose as this does). No test label enters the choice. It then writes, per device,
the rows cloud, the candidates and NAME (the chosen row's test scores)
to OUTDIR/run-*/eval/<dev>.csv, with counts and cold.csv, for
bin/dccl-eval (scripts/eval-results.md, Issue 17, fourth pass).
"""
import glob
import os
import shutil
import sys

from evalkeep import extra, rounds


def rule(devs, grp, cand, key, z):
    """cloudd's pair-weight rule over the group's complete devices."""
    full = [ex for _, c, ex in devs if c == grp and
            all(key in ex.get(m, {}) for m in cand)]
    d = len(full)
    own = {m: sum(ex[m][key] for ex in full) for m in cand}
    best, se_b = cand[0], 0.0
    for m in cand[1:]:
        diff = own[m] - own[cand[0]]
        q = sum((ex[m][key] - ex[cand[0]][key]) ** 2 for ex in full)
        se = max(q - diff * diff / d, 0) ** 0.5 if d else 0
        if d and diff - z * se > 0 and (best == cand[0] or
                                         own[m] > own[best]):
            best, se_b = m, se
    return best, ' (rule z %g: %d devices, se %.1f)' % (z, d, se_b)


def main():
    keep, out, name, cand = sys.argv[1:5]
    by = sys.argv[5] if len(sys.argv) > 5 else 'rank'
    z = float(sys.argv[6]) if len(sys.argv) > 6 else None
    cand = cand.split(',')
    key = 'cv_rank' if by == 'rank' else 'cv_gain'
    for run, cold in rounds(keep):
        if not os.path.isdir(run):
            continue
        base = os.path.basename(run)
        devs = []
        for f in sorted(glob.glob(os.path.join(run, 'eval', '*.csv'))):
            user = None
            for line in open(f):
                user = line.split(',')[1]
                break
            if user is not None:
                devs.append((f, user in cold, extra(f[:-4] + '.extra')))
        pick = {}
        for grp in (False, True):
            tot = {m: sum(ex.get(m, {}).get(key, 0) for _, c, ex in devs
                          if c == grp) for m in cand}
            pick[grp] = max(cand, key=lambda m: tot[m])
            note = ''
            if z is not None:
                pick[grp], note = rule(devs, grp, cand, key, z)
            print('%s %s: pooled %s %s -> %s%s' % (
                base, 'cold' if grp else 'warm', key,
                ' '.join('%s %.1f' % (m, tot[m]) for m in cand), pick[grp],
                note))
        od = os.path.join(out, base, 'eval')
        os.makedirs(od, exist_ok=True)
        if os.path.exists(os.path.join(run, 'counts')):
            shutil.copy(os.path.join(run, 'counts'),
                        os.path.join(out, base, 'counts'))
        dd = os.path.join(out, base[4:])
        os.makedirs(dd, exist_ok=True)
        cf = os.path.join(keep, base[4:], 'cold.csv')
        if os.path.exists(cf):
            shutil.copy(cf, os.path.join(dd, 'cold.csv'))
        for f, c, _ in devs:
            with open(os.path.join(od, os.path.basename(f)), 'w') as o:
                for line in open(f):
                    m = line.split(',', 1)[0]
                    if m == 'cloud' or m in cand:
                        o.write(line)
                    if m == pick[c]:
                        o.write(name + line[len(m):])


if __name__ == '__main__':
    main()
