#!/usr/bin/env python3
"""guard_move.py KEEPDIR METHOD [KEEPDIR ...]: a guard that also reads
movement, chosen on validation.

METHOD is an unguarded row (always adopts its CV choice). Besides the
guard's evidence (cv_gain, cv_se, cv_rank), a device's .extra holds how
far its choice reorders held-out pairs against the cloud model (cv_mv,
and nv_mv from the inner folds of the nested validation; learn.h,
struct learn_choice): labels play no part in it. An ideal guard adapts
the users whose expected gain is large (guard_floor.py), and those are
the users the adaptation moves most.

Choice (validation only), per task's users warm and cold apart, pooled
over the kept rounds: every rule "n_local >= 4, [gain - z se > 0],
[rank > 0], movement >= T" is replayed on the inner folds' evidence and
scored on the last fold (as guard_select.py: worse = the share of
devices it adopts whose last-fold AUC drops; kept = its share of the
last folds' sample-weighted AUC change). The rule chosen keeps the most
validation gain among those that leave no more devices worse than the
served guard (z = 1, rank > 0, T = 0) on the same folds: a better guard
at the same promise. Then both are replayed on the full CV evidence and
measured on the test split (test labels, never used to choose).

Then learn.guard-move alone (threshold()): the served guard with
movement >= T, and the T closest to the guard goal on validation,
summed over every KEEPDIR given (one per task) and warm and cold users.
"""
import collections
import sys

from guard_select import devices, last_folds, replay_last, replay_test

ZS = (None, 0, 0.5, 1, 1.5, 2)
TS = (0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2)
NMIN = 4
REF = (1, True, 0)


def adopt(d, rule, nested):
    z, rank, t = rule
    g, se, rk, mv = ((d['ng'], d['nse'], d['nrk'], d['nmv']) if nested
                     else (d['g'], d['se'], d['rk'], d['mv']))
    return (d['n'] >= NMIN and (z is None or g - z * se > 0) and
            (not rank or rk > 0) and mv >= t)


def validate(ds, rule):
    ev = last_folds(ds)
    return replay_last(ev, lambda d: adopt(d, rule, True)) + (len(ev),)


def test(ds, rule):
    us = [d for d in ds if d['da'] is not None]
    return replay_test(us, lambda d: adopt(d, rule, False)) + (len(us),)


def name(rule):
    z, rank, t = rule
    parts = ['gain - %g se > 0' % z] if z is not None else []
    if rank:
        parts.append('rank > 0')
    if t > 0:
        parts.append('movement >= %g' % t)
    return ', '.join(parts) or 'always'


def threshold(tasks):
    """learn.guard-move chosen on validation: the served guard with
    movement >= T for each T of TS, and the T whose validation is
    closest to issue 17's goal, summed over the tasks' warm and cold
    users, in points: max(0, worse - 2 %) + max(0, 80 % - kept)."""
    groups = []
    for runs in tasks:
        for grp in ('warm', 'cold'):
            ds = [d for r in runs.values() for d in r
                  if d['cold'] == (grp == 'cold')]
            if any(d['nv'] and d['op'] > 0 for d in ds):
                groups.append((sorted(runs)[0][4:-2] + ' ' + grp, ds))
    print()
    print('| T | ' + ' | '.join('%s: val worse / kept, test worse / kept'
                               % g for g, _ in groups) +
          ' | distance to the goal (validation) |')
    print('|---' * (len(groups) + 2) + '|')
    best = None
    for t in TS:
        rule, cells, dist = (REF[0], REF[1], t), [], 0.0
        for _, ds in groups:
            v, te = validate(ds, rule), test(ds, rule)
            dist += (max(0.0, 100 * v[0] - 2) + max(0.0, 80 - 100 * v[1]))
            cells.append('%.1f %% / %.0f %%, %.1f %% / %.0f %%' % (
                100 * v[0], 100 * v[1], 100 * te[0], 100 * te[1]))
        print('| %g | %s | %.1f |' % (t, ' | '.join(cells), dist))
        if best is None or dist < best[1]:
            best = (t, dist)
    print()
    print('closest to the goal on validation: T = %g (%.1f points)' % best)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    keep, meth = sys.argv[1], sys.argv[2]
    runs = devices(keep, meth)
    tasks = [runs] + [devices(k, meth) for k in sys.argv[3:]]
    print('| users | rule | validation worse / kept (devices) | test worse '
          '/ kept (users) |')
    print('|---|---|---|---|')
    for grp in ('warm', 'cold'):
        ds = [d for r in runs.values() for d in r
              if d['cold'] == (grp == 'cold')]
        if not any(d['nv'] and d['op'] > 0 for d in ds):
            continue
        ref = validate(ds, REF)
        best = None
        for z in ZS:
            for rank in (True, False):
                for t in TS:
                    rule = (z, rank, t)
                    v = validate(ds, rule)
                    if v[0] <= ref[0] and (best is None or
                                           v[1] > best[1][1]):
                        best = (rule, v)
        for lab, rule in (('served guard', REF), ('chosen', best[0])):
            v, t = validate(ds, rule), test(ds, rule)
            print('| %s | %s: %s | %.1f %% / %.0f %% (%d) | %.1f %% / '
                  '%.0f %% (%d) |' % (grp, lab, name(rule), 100 * v[0],
                                      100 * v[1], v[2], 100 * t[0],
                                      100 * t[1], t[2]))
    threshold(tasks)
    mvs = sorted(d['mv'] for r in runs.values() for d in r)
    if mvs:
        print()
        print('movement (cv_mv) quartiles: %s' % ', '.join(
            '%.4f' % mvs[int(q * (len(mvs) - 1))] for q in (.25, .5, .75)))


if __name__ == '__main__':
    main()
