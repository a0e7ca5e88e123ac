"""evalkeep.py: reading the per-device files an evaluation kept.

`EVAL_KEEP=KEEPDIR scripts/eval.sh ...` leaves, for every round, the
round's data in KEEPDIR/TASK-SEED (with cold.csv, the users kept out of
the pool) and each device's files in KEEPDIR/run-TASK-SEED/eval: its
test predictions <dev>.csv (method,user,i,label,score) and its
cross-validation figures <dev>.extra (method,key,value). The analysis
scripts (guard_frontier.py, guard_select.py, val_compare.py) read them
through this module.
"""
import collections
import glob
import os


def auc(rows):
    """AUC of (label, score) pairs, ties counted half; None without both
    classes."""
    pos = sorted(s for y, s in rows if y >= 0.5)
    neg = sorted(s for y, s in rows if y < 0.5)
    if not pos or not neg:
        return None
    c, j, k = 0.0, 0, 0
    for p in pos:          # pairs (p, n) with n < p, ties half
        while j < len(neg) and neg[j] < p:
            j += 1
        k = j
        while k < len(neg) and neg[k] == p:
            k += 1
        c += j + 0.5 * (k - j)
    return c / len(pos) / len(neg)


def rounds(keep):
    """(run directory, set of cold user ids) for every kept round, in
    order."""
    for run in sorted(glob.glob(os.path.join(keep, 'run-*'))):
        data = os.path.join(keep, os.path.basename(run)[4:])
        cold = set()
        cf = os.path.join(data, 'cold.csv')
        if os.path.exists(cf):
            cold = set(l.strip() for l in open(cf)) - {'user'}
        yield run, cold


def scores(path):
    """A device's <dev>.csv: {method: [(label, score)]} and its user."""
    rows = collections.defaultdict(list)
    user = None
    for line in open(path):
        m, u, _, y, s = line.strip().split(',')
        rows[m].append((float(y), float(s)))
        user = u
    return rows, user


def extra(path, meth=None):
    """A device's <dev>.extra: {key: value} of METHOD, or of every method
    as {method: {key: value}} when METHOD is None."""
    ex = {}
    for line in open(path):
        m, k, v = line.strip().split(',')
        if meth is None:
            ex.setdefault(m, {})[k] = float(v)
        elif m == meth:
            ex[k] = float(v)
    return ex
