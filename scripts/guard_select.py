#!/usr/bin/env python3
"""guard_select.py KEEPDIR METHOD: the guard's rule chosen on validation.

METHOD is an unguarded row (ft-cv, ft-pair-cv, mp-cv: it always adopts
its CV choice), so its test predictions are what every rule replays.

The guard (deviced/README.md, step 5) adopts a device's cross-validated
choice when n_local >= NMIN, cv_gain - Z * cv_se > 0 and cv_rank > 0.
This script chooses (Z, NMIN) from validation data only, then measures
the chosen rule on the test split.

Choice (validation only). Each device's .extra (EVAL_KEEP=KEEPDIR
scripts/eval.sh ...) holds a nested validation of its own CV
(deviced/learn.h, struct learn_nested): the setting and the guard's
evidence from every CV fold but the last (nv_gain, nv_se, nv_rank), and
how that setting then ordered the last fold's (click, no-click) pairs
(nv_orank net of nv_opairs), a fold of the device's past that the inner
folds never saw. Over one round's fleet (a seed; warm and cold devices
apart, since a device knows whether the cloud has a row for it) each
candidate rule is replayed on the inner evidence; its validation "worse"
share is the share of devices with last-fold pairs that it adopts and
whose last-fold AUC drops (nv_orank < 0), its kept share the
sample-weighted sum of last-fold AUC changes of what it adopts over that
of adopting always. The rule chosen keeps the most validation gain among
those with at most TARGET (2 %) worse; if none qualifies, the strictest.

Measure (test labels, never used to choose): the chosen rule replayed on
the full CV evidence (cv_gain, cv_se, cv_rank, n_local), and per-user
test AUC against the cloud model as in guard_frontier.py.
"""
import collections
import glob
import os
import sys

from evalkeep import auc, extra, rounds, scores

TARGET = 0.02
ZS = (0, 0.5, 1, 1.5, 2, 3)
NMINS = (4, 10, 20, 40)


def devices(keep, meth):
    """Per run: every device with the method's evidence."""
    runs = {}
    for run, cold in rounds(keep):
        out = []
        for f in glob.glob(os.path.join(run, 'eval', '*.csv')):
            rows, user = scores(f)
            ex = extra(f[:-4] + '.extra', meth)
            if 'cv_gain' not in ex:
                continue
            a0 = auc(rows['cloud'])
            a1 = auc(rows[meth]) if meth in rows else None
            out.append(dict(
                cold=user in cold, w=len(rows['cloud']),
                da=None if a0 is None or a1 is None else a1 - a0,
                n=ex.get('n_local', 0), g=ex['cv_gain'],
                se=ex.get('cv_se', 0), rk=ex.get('cv_rank', 0),
                nv='nv_gain' in ex, ng=ex.get('nv_gain', 0),
                nse=ex.get('nv_se', 0), nrk=ex.get('nv_rank', 0),
                on=ex.get('nv_on', 0), op=ex.get('nv_opairs', 0),
                ork=ex.get('nv_orank', 0), mv=ex.get('cv_mv', 0),
                nmv=ex.get('nv_mv', 0), cp=ex.get('cv_pairs', 0)))
        runs[os.path.basename(run)] = out
    return runs


def adopt(g, se, rk, n, z, nmin):
    return n >= nmin and g - z * se > 0 and rk > 0


def last_folds(ds):
    """The devices with a nested validation and last-fold pairs."""
    return [d for d in ds if d['nv'] and d['op'] > 0]


def replay_last(ev, f):
    """(worse share, kept share) of predicate f over the devices ev
    (last_folds) on their last folds: worse = the devices it adopts whose
    last-fold AUC drops, over all of ev; kept = its share of the last
    folds' sample-weighted AUC change (0 when that is not positive)."""
    tot = sum(d['on'] * d['ork'] / d['op'] for d in ev)
    sel = [d for d in ev if f(d)]
    g = sum(d['on'] * d['ork'] / d['op'] for d in sel)
    return sum(d['ork'] < 0 for d in sel) / len(ev), g / tot if tot > 0 else 0


def replay_test(us, f):
    """(worse share, kept share) of predicate f over the users us (with a
    test AUC change da): worse = those it adopts whose test AUC drops,
    over all; kept = its share of the impression-weighted change."""
    tot = sum(d['w'] * d['da'] for d in us)
    sel = [d for d in us if f(d)]
    g = sum(d['w'] * d['da'] for d in sel)
    return sum(d['da'] < 0 for d in sel) / len(us), g / tot if tot else 0


def validate(ds, z, nmin):
    """(worse share, kept share, devices) of rule (z, nmin) on the last
    folds."""
    ev = last_folds(ds)
    if not ev:
        return None
    return replay_last(ev, lambda d: adopt(d['ng'], d['nse'], d['nrk'],
                                           d['n'], z, nmin)) + (len(ev),)


def choose(ds):
    best, table = None, []
    for nmin in NMINS:
        for z in ZS:
            v = validate(ds, z, nmin)
            if v is None:
                return None, table
            table.append((z, nmin) + v)
            ok = v[0] <= TARGET
            key = (ok, v[1] if ok else -v[0])
            if best is None or key > best[0]:
                best = (key, z, nmin)
    return (best[1], best[2]), table


def test(ds, rule):
    us = [d for d in ds if d['da'] is not None]
    W = sum(d['w'] for d in us)
    tot = sum(d['w'] * d['da'] for d in us) / W
    if rule is None:
        sel = us
    else:
        sel = [d for d in us if adopt(d['g'], d['se'], d['rk'], d['n'],
                                      rule[0], rule[1])]
    g = sum(d['w'] * d['da'] for d in sel) / W
    return (len(us), sum(d['da'] < 0 for d in sel), g, tot)


def main():
    keep, meth = sys.argv[1], sys.argv[2]
    runs = devices(keep, meth)
    for grp in ('warm', 'cold'):
        acc = collections.defaultdict(lambda: [0, 0, 0.0, 0.0])
        print('**%s, %s users: the guard rule chosen on nested validation**'
              % (meth, grp))
        print()
        print('| round | chosen z, n_min | validation worse / kept '
              '(devices) | test worse / kept, chosen | guard z=1, n_min=4 '
              '| unguarded |')
        print('|---|---|---|---|---|---|')
        for name, ds in sorted(runs.items()):
            ds = [d for d in ds if d['cold'] == (grp == 'cold')]
            if not ds:
                continue
            rule, table = choose(ds)
            cells = []
            for lab, r in (('chosen', rule), ('z1', (1, 4)), ('all', None)):
                if lab == 'chosen' and rule is None:
                    cells.append('no nested evidence')
                    continue
                n, wo, g, tot = test(ds, r)
                a = acc[lab]
                a[0] += n
                a[1] += wo
                a[2] += g * n
                a[3] += tot * n
                cells.append('%.1f %% / %.0f %%' % (
                    100 * wo / n, 100 * g / tot if tot else 0))
            v = [t for t in table if rule and t[:2] == rule]
            vs = ('%.1f %% / %.0f %% (%d)' % (100 * v[0][2], 100 * v[0][3],
                                               v[0][4]) if v else '-')
            print('| %s | %s | %s | %s |' % (
                name[4:], '%g, %d' % rule if rule else '-', vs,
                ' | '.join(cells)))
        cells = []
        for lab in ('chosen', 'z1', 'all'):
            n, wo, g, tot = acc[lab]
            cells.append('%.1f %% / %.0f %%' % (
                100 * wo / n, 100 * g / tot if tot else 0) if n else '-')
        print('| all rounds | | | %s |' % ' | '.join(cells))
        print()


if __name__ == '__main__':
    main()
