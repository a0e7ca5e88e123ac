#!/usr/bin/env python3
"""guard_ratio.py KEEPDIR UNGUARDED GUARDED [warm|cold]: the share of
UNGUARDED's mean per-user AUC gain over the cloud model
(impression-weighted, warm users unless "cold", each user's gains summed
over the kept rounds) that GUARDED keeps, with a 95 % bootstrap interval
over users (1,000 resamples), and the share of users each leaves worse.
Reads test labels: it measures a guard against issue 17's goal (>= 80 %
kept), it chooses nothing.
"""
import collections
import glob
import os
import random
import sys

from evalkeep import rounds, scores, auc

K, A, B = sys.argv[1:4]
GRP = sys.argv[4] if len(sys.argv) > 4 else 'warm'
per=collections.defaultdict(lambda:[0,0,0,0])  # user -> w*dA, w*dB, w, n
worse=[0,0,0]  # user-rounds: A worse, B worse, all
for run,cold in rounds(K):
    if not os.path.isdir(run): continue
    for f in glob.glob(run+'/eval/*.csv'):
        rows,user=scores(f)
        if (user in cold) != (GRP == 'cold'): continue
        a0=auc(rows['cloud'])
        if a0 is None: continue
        w=len(rows['cloud'])
        da, db = auc(rows[A])-a0, auc(rows[B])-a0
        p=per[user]; p[0]+=w*da; p[1]+=w*db; p[2]+=w; p[3]+=1
        worse[0]+=da<0; worse[1]+=db<0; worse[2]+=1
us=list(per.values())
r=sum(u[1] for u in us)/sum(u[0] for u in us)
random.seed(1); bs=[]
for _ in range(1000):
    s=[random.choice(us) for _ in us]
    bs.append(sum(u[1] for u in s)/sum(u[0] for u in s))
bs.sort()
print('%s, %s kept of %s: %.0f%% [%.0f%%, %.0f%%] (%d users, bootstrap over users); user-rounds worse: %.1f%% against %.1f%%'%(GRP,B,A,100*r,100*bs[25],100*bs[974],len(us),100*worse[1]/worse[2],100*worse[0]/worse[2]))
