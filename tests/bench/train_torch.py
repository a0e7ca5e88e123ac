#!/usr/bin/python3
"""PyTorch CPU reference for tests/bench/bench_train.c.

    /usr/bin/python3 tests/bench/train_torch.py
    (needs Debian's python3-torch; this script does not install anything)

Same model as shared/ml/ctr.c without MetaPatch (with the options of
BENCH_INTERACTION / BENCH_ATTENTION, as bench_train): embeddings (D=16) of user,
item, mean genre bag, hour, weekday and the mean of the last K=20 history
items (the item table is shared), concatenated, MLP 128-64 with ReLU, one
logit, BCE-with-logits, Adam lr 1e-3, batch 256. Synthetic data drawn like
bench_train.c (200k samples, 2000 users, 10000 items, 20 genres; the random
draws differ, the shapes and distributions do not). Figures, one
"BENCH ..." line each:
  - training throughput (samples/s) over one epoch with 1 and 2 threads;
  - one device fine-tune: 200 samples, 5 epochs, batch 32, whole model,
    in a fresh subprocess for its peak RSS (which includes the torch
    runtime, reported separately as the RSS right after import).
The peer is the best straightforward PyTorch: each epoch permutes the
whole tensors once, so a batch is a contiguous slice (no per-batch
gathers of every field); the embedding tables have sparse gradients and
are stepped by SparseAdam (as dccl's row-sparse Adam), the dense layers by
Adam. `--train-once` prints only the 1-thread throughput:
tests/bench/train_pair.sh runs it alternately with bin/bench_train
--train-once for the ratio.

Measured on the 2-vCPU dev VM: with 2 threads torch is far slower than with
1 (OpenMP spin-waiting; OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1
recovers part of it). The figures are reported as they come out.
"""
import copy
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn

N_USERS, N_ITEMS, N_GENRES = 2000, 10000, 20
# DCCL_PEER_SPARSE=0: dense embedding gradients and one Adam (the peer
# picks whichever is faster; see train_pair.sh).
SPARSE = os.environ.get("DCCL_PEER_SPARSE", "1") != "0"
# The base-model options of shared/ml/ctr.h, as bench_train reads them:
# 1 = pairwise field dots as MLP inputs, 2 = also a weighted FM logit term;
# attention = softmax(D h_j . W t) pooling of the history.
INTER = int(os.environ.get("BENCH_INTERACTION", "0"))
ATT = os.environ.get("BENCH_ATTENTION", "0") != "0"
NF = 6
NP = NF * (NF - 1) // 2
D, K, HIDDEN = 16, 20, (128, 64)


def make_data(n, u0, nu, seed):
    rng = np.random.default_rng(seed)
    ub = 0.5 * rng.standard_normal(N_USERS)
    taste = rng.integers(0, N_GENRES, N_USERS)
    ib = 0.8 * rng.standard_normal(N_ITEMS)
    igen = np.zeros((N_ITEMS, N_GENRES), dtype=np.float32)
    for g in (rng.integers(0, N_GENRES, N_ITEMS), rng.integers(0, N_GENRES, N_ITEMS)):
        igen[np.arange(N_ITEMS), g] = 1.0
    user = u0 + rng.integers(0, nu, n)
    item = (rng.random(n) ** 2 * N_ITEMS).astype(np.int64)
    ts = 1500000000 + np.arange(n) * 60
    z = ub[user] + ib[item] + np.where(igen[item, taste[user]] > 0, 1.5, -0.3)
    label = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.float32)
    hist = np.full((n, K), N_ITEMS, dtype=np.int64)   # pad = OOV row
    hmask = np.zeros((n, K), dtype=np.float32)
    last = [[] for _ in range(N_USERS)]
    for k in range(n):
        h = last[user[k]][-K:]
        if h:
            hist[k, :len(h)] = h
            hmask[k, :len(h)] = 1.0
        if label[k] > 0.5:
            last[user[k]].append(int(item[k]))
    return dict(user=torch.from_numpy(user), item=torch.from_numpy(item),
                genres=torch.from_numpy(igen[item]),
                hour=torch.from_numpy((ts // 3600) % 24),
                wday=torch.from_numpy((ts // 86400 + 4) % 7),
                hist=torch.from_numpy(hist), hmask=torch.from_numpy(hmask),
                label=torch.from_numpy(label))


class CTR(nn.Module):
    def __init__(self):
        super().__init__()
        self.user = nn.Embedding(N_USERS + 1, D, sparse=SPARSE)
        self.item = nn.Embedding(N_ITEMS + 1, D, sparse=SPARSE)
        self.genre = nn.Parameter(0.05 * torch.randn(N_GENRES, D))
        self.hour = nn.Embedding(24, D, sparse=SPARSE)
        self.wday = nn.Embedding(7, D, sparse=SPARSE)
        for e in (self.user, self.item, self.hour, self.wday):
            nn.init.normal_(e.weight, std=0.05)
        layers, c = [], 6 * D + (NP if INTER else 0)
        if INTER == 2:
            self.fm = nn.Parameter(torch.ones(NP))
        if ATT:
            self.att = nn.Parameter(torch.zeros(D, D))
        self.iu, self.ju = torch.triu_indices(NF, NF, 1)
        for h in HIDDEN:
            layers += [nn.Linear(c, h), nn.ReLU()]
            c = h
        layers.append(nn.Linear(c, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, b):
        g = b["genres"]
        gbag = (g @ self.genre) / g.sum(1, keepdim=True).clamp(min=1)
        m = b["hmask"]
        t = self.item(b["item"])
        if ATT:
            h = self.item(b["hist"])
            s = (h @ (t @ self.att.t()).unsqueeze(-1)).squeeze(-1) * D
            s = s.masked_fill(m == 0, -1e9)
            a = torch.softmax(s, 1) * m
            beh = (a.unsqueeze(-1) * h).sum(1)
        else:
            beh = (self.item(b["hist"]) * m.unsqueeze(-1)).sum(1) / \
                m.sum(1, keepdim=True).clamp(min=1)
        f = torch.stack([self.user(b["user"]), t, gbag,
                         self.hour(b["hour"]), self.wday(b["wday"]), beh], 1)
        x = f.flatten(1)
        if INTER:
            dots = (f @ f.transpose(1, 2))[:, self.iu, self.ju]
            x = torch.cat([x, dots], 1)
        out = self.mlp(x).squeeze(1)
        if INTER == 2:
            out = out + (dots * self.fm).sum(1)
        return out


def optimizers(model, lr):
    if not SPARSE:
        return [torch.optim.Adam(model.parameters(), lr=lr)]
    sparse = [m.weight for m in (model.user, model.item, model.hour,
                                 model.wday)]
    ids = {id(w) for w in sparse}
    dense = [w for w in model.parameters() if id(w) not in ids]
    return [torch.optim.SparseAdam(sparse, lr=lr),
            torch.optim.Adam(dense, lr=lr)]


def train(model, data, idx, epochs, batch, lr, gen):
    opts = optimizers(model, lr)
    lossf = nn.BCEWithLogitsLoss()
    total = 0.0
    for _ in range(epochs):
        perm = idx[torch.randperm(len(idx), generator=gen)]
        ep = {k: v[perm] for k, v in data.items()}   # one gather per epoch
        total = 0.0
        for i in range(0, len(perm), batch):
            b = {k: v[i:i + batch] for k, v in ep.items()}
            loss = lossf(model(b), b["label"])
            for o in opts:
                o.zero_grad()
            loss.backward()
            for o in opts:
                o.step()
            total += loss.item() * len(b["label"])
    return total / len(idx)


def finetune():
    torch.set_num_threads(1)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    data = make_data(200, 42, 1, 7)
    idx = torch.arange(200)
    gen = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    base = CTR()
    times = []
    for _ in range(20):
        m = copy.deepcopy(base)
        t0 = time.perf_counter()
        train(m, data, idx, 5, 32, 1e-3, gen)
        times.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH finetune_torch sel=all samples=200 epochs=5 batch=32 "
          f"ms_mean={1e3 * sum(times) / len(times):.3f} "
          f"ms_min={1e3 * min(times):.3f}")
    print(f"BENCH finetune_torch_rss peak_rss_mib={rss:.2f} "
          f"rss_after_import_mib={rss0:.2f}")


def throughput(data, idx, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(1)
    model = CTR()
    train(model, data, idx[:256 * 20], 1, 256, 1e-3, gen)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    loss = train(model, data, idx, 1, 256, 1e-3, gen)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    # cpu_sps: per second of the process's CPU time, as bench_train
    print(f"BENCH train_torch threads={threads} samples={len(idx)} "
          f"secs={dt:.3f} samples_per_s={len(idx) / dt:.0f} "
          f"cpu_secs={dc:.3f} cpu_sps={len(idx) / dc:.0f} "
          f"loss={loss:.4f} torch={torch.__version__}")
    sys.stdout.flush()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--finetune":
        finetune()
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--train-once":
        throughput(make_data(200000, 0, N_USERS, 1), torch.arange(200000), 1)
        return
    sys.stdout.flush()
    subprocess.run([sys.executable, __file__, "--finetune"], check=False)
    data = make_data(200000, 0, N_USERS, 1)
    idx = torch.arange(200000)
    for threads in (1, 2):
        throughput(data, idx, threads)


if __name__ == "__main__":
    main()
