#!/usr/bin/env python3
"""val_compare.py KEEPDIR A B [A B ...]: two methods compared on validation.

For each pair of evaluation methods (say ft-cv and ft-pair-cv, which
differ only in learn.pair-weight), reads the devices' nested validation
(deviced/learn.h, struct learn_nested, in the .extra files an
EVAL_KEEP=KEEPDIR evaluation keeps): the setting chosen on every CV fold
but the last, scored on the last fold of the device's own past. No test
sample is read. Prints, for warm and cold devices, the paired per-device
difference B - A of the last fold's AUC change (net pairs ordered better
over pairs, sample-weighted as GAUC) and of its mean logloss gain, with
a 95 % bootstrap interval over devices (1,000 resamples, seed 1).
A setting is chosen on this when B's interval on AUC is above 0 and its
logloss interval is not below 0.

val_compare.py --across KEEP_A KEEP_B METHOD [METHOD ...]: the same
methods in two evaluations that differ only in a device setting (say
EVAL_DEVICED_OPTS="-o learn.batch=16"): each device of KEEP_B is paired
with the same round's same device of KEEP_A, B - A as above.
"""
import glob
import os
import random
import sys

from evalkeep import extra, rounds


def load(keep):
    dev = {}
    for run, cold in rounds(keep):
        for f in glob.glob(os.path.join(run, 'eval', '*.extra')):
            ex = extra(f)
            uf = f[:-6] + '.csv'
            user = None
            if os.path.exists(uf):
                with open(uf) as fh:
                    first = fh.readline()
                    user = first.split(',')[1] if first else None
            key = (os.path.basename(run), os.path.basename(f))
            dev[key] = (user in cold, ex)
    return dev


def merge(keep_a, keep_b):
    """One dict as load() returns, with KEEP_A's methods named 'A:m' and
    KEEP_B's 'B:m', over the devices both kept."""
    da, db = load(keep_a), load(keep_b)
    dev = {}
    for key in da.keys() & db.keys():
        ex = {'A:' + m: v for m, v in da[key][1].items()}
        ex.update({'B:' + m: v for m, v in db[key][1].items()})
        dev[key] = (da[key][0], ex)
    return dev


def stats(rows):
    W = sum(w for w, _, _ in rows)
    return (sum(w * a for w, a, _ in rows) / W,
            sum(w * g for w, _, g in rows) / W)


def main():
    if sys.argv[1] == '--across':
        dev = merge(sys.argv[2], sys.argv[3])
        pairs = [x for m in sys.argv[4:] for x in ('A:' + m, 'B:' + m)]
    else:
        dev = load(sys.argv[1])
        pairs = sys.argv[2:]
    rnd = random.Random(1)
    print('| A | B | devices | validation ΔAUC, B − A | '
          'validation Δlogloss gain, B − A |')
    print('|---|---|---|---|---|')
    for i in range(0, len(pairs) - 1, 2):
        a, b = pairs[i], pairs[i + 1]
        for grp in ('warm', 'cold'):
            rows = []
            for cold, ex in dev.values():
                if cold != (grp == 'cold'):
                    continue
                ea, eb = ex.get(a, {}), ex.get(b, {})
                if ea.get('nv_opairs', 0) <= 0 or eb.get('nv_opairs', 0) <= 0:
                    continue
                w = ea['nv_on']
                rows.append((w, eb['nv_orank'] / eb['nv_opairs'] -
                             ea['nv_orank'] / ea['nv_opairs'],
                             eb['nv_ogain'] - ea['nv_ogain']))
            if not rows:
                continue
            da, dg = stats(rows)
            bs = [stats([rows[rnd.randrange(len(rows))] for _ in rows])
                  for _ in range(1000)]
            ia = sorted(x[0] for x in bs)
            ig = sorted(x[1] for x in bs)
            print('| %s | %s, %s | %d | %+.4f [%+.4f, %+.4f] | '
                  '%+.4f [%+.4f, %+.4f] |' % (
                      a, b, grp, len(rows), da, ia[25], ia[974], dg,
                      ig[25], ig[974]))


if __name__ == '__main__':
    main()
