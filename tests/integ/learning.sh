# Learning helps, through the daemons, on data with a known answer (the
# synthetic drift generator: labels follow user bias and taste clusters).
#  1. A cloud trained on the pool beats a control cloud trained on the
#     same pool with its labels shuffled across rows (the procedure below,
#     seeded): the devices' held-out test predictions of the "cloud"
#     method, pooled over users, have a higher AUC, and the paired
#     bootstrap interval over users of the difference excludes 0.
#  2. Devices whose adaptation is known to hurt (their local data is their
#     pool share with the labels shuffled, trained with learning rates far
#     too high; the unguarded fine-tuning row is worse than the cloud model
#     on their true-labelled test split) keep the cloud model: guarded
#     fine-tuning scores exactly as the cloud model on every device, and
#     guarded MetaPatch adopts nothing that is worse than the cloud model on
#     that device's test split.
# Nothing here is tuned to a result: the thresholds are "better than the
# control" and "no worse than the cloud model".
. "$(dirname "$0")/../../scripts/itest-lib.sh"
command -v python3 >/dev/null 2>&1 || skip "python3 not installed"
endpoints
make_data 60 60

# The control pool: the (rating, label) pairs permuted across rows with a
# fixed seed; users, items, times, genres and histories unchanged.
awk -F, 'NR > 2 { print $4 "," $5 }' "$T/data/pool.csv" |
    python3 -c 'import random, sys
l = sys.stdin.read().splitlines(); random.Random(7).shuffle(l); print("\n".join(l))' \
    >"$T/labels" || die "shuffle"
mkdir -p "$T/ctl"
awk -F, -v OFS=, 'NR == FNR { lab[FNR] = $0; next }
    FNR <= 2 { print; next }
    { split(lab[FNR - 2], rl, ","); $4 = rl[1]; $5 = rl[2]; print }' \
    "$T/labels" "$T/data/pool.csv" >"$T/ctl/pool.csv"
[ "$(wc -l <"$T/ctl/pool.csv")" = "$(wc -l <"$T/data/pool.csv")" ] || die "control pool"
cmp -s "$T/ctl/pool.csv" "$T/data/pool.csv" && die "control pool not shuffled"

# run_devices NAME [options]: one deviced hosting every shard, once, as
# devices NAME-<user> (new ids: a new key for a known id is refused).
run_devices() {
	name=$1; shift
	mkdir -p "$T/eval-$name"
	start_deviced "$name" -o deviced.shards="$SHARDS" -o deviced.run-once=yes \
	    -o deviced.data-dir="$T/dev-$name" -o deviced.eval-dir="$T/eval-$name" \
    -o deviced.device-id="$name" "$@"
	rc=0; wait "$DPID" || rc=$?
	[ $rc = 0 ] || die "deviced $name exit $rc"
	[ "$(ls "$T/eval-$name"/*.csv | wc -l)" = "$(ls "$SHARDS"/*.local.csv | wc -l)" ] ||
	    die "$name: eval files"
}

log "cloud trained on the pool"
import_pool
start_cloudd
wait_model 1
run_devices real -o deviced.eval-methods=cloud
log "devices whose adaptation hurts: poisoned local labels"
# Five users get their pool share again as local data, with the labels
# shuffled among them (a fixed seed per user): the rate is the one the
# cloud model already learned for them, and nothing in the features
# predicts a label, so whatever an adaptation learns is noise; the test
# split keeps its true labels. A guard that judges on local data can see
# that (flipping the older labels instead would only test where the guard
# looks, and a shuffle of newer data keeps a real rate drift to learn).
mkdir -p "$T/poison"
for u in 0 1 2 3 4; do
	{ sed -n 1,2p "$SHARDS/$u.local.csv"
	  awk -F, -v u=$u 'NR > 2 && $1 == u' "$T/data/pool.csv" |
	    sort -t, -k3,3n |
	    awk -F, -v OFS=, -v seed=$((u + 1)) '{ r[NR] = $0; split($0, f, ","); y[NR] = f[5] }
		END {
		srand(seed)
		for (i = NR; i > 1; i--) {	# Fisher-Yates over the labels
			j = int(rand() * i) + 1; t = y[i]; y[i] = y[j]; y[j] = t }
		for (i = 1; i <= NR; i++) {
			split(r[i], f, ","); f[5] = y[i]
			r[i] = f[1]; for (k = 2; k <= 7; k++) r[i] = r[i] "," f[k]
			print r[i] } }'; } >"$T/poison/$u.local.csv"
	cp "$SHARDS/$u.test.csv" "$T/poison/"
done
[ "$(awk -F, 'NR > 2' "$T/poison/0.local.csv" | wc -l)" -ge 30 ] || die "poisoned shard too small"
SHARDS_REAL=$SHARDS SHARDS=$T/poison
run_devices hurt -o deviced.eval-methods=cloud,naive-ft,ft-guard,metapatch \
    -o learn.ft-lr=3 -o learn.lr=30 -o learn.ft-steps=20 -o learn.retrieve-k=0
SHARDS=$SHARDS_REAL
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit $?"

log "control cloud: the same pool, labels shuffled"
: >"$T/cloudd.log"
endpoints
"$BIN/cloudd" -o cloudd.data-dir="$T/cloud-ctl" --import "$T/ctl/pool.csv" \
    >"$T/import-ctl.log" 2>&1 || die "control import failed"
start_cloudd -o cloudd.data-dir="$T/cloud-ctl"
wait_model 1
run_devices ctl -o deviced.eval-methods=cloud
kill -TERM "$CPID"; wait "$CPID" || die "control cloudd exit $?"

python3 - "$T" >"$T/learning.out" 2>&1 <<'PY' || { cat "$T/learning.out"; die "learning checks"; }
import csv, glob, math, random, sys
T = sys.argv[1]
def load(run, method):
    rows = {}
    for f in glob.glob(f"{T}/eval-{run}/*.csv"):
        for r in csv.reader(open(f)):
            if r[0] == method:
                rows.setdefault(int(r[1]), []).append((float(r[3]), float(r[4])))
    return rows
def auc(pairs):
    pos = [s for y, s in pairs if y >= 0.5]; neg = [s for y, s in pairs if y < 0.5]
    if not pos or not neg: return None
    allp = sorted([(s, 1) for s in pos] + [(s, 0) for s in neg])
    rank, i, rsum = 1, 0, 0.0
    while i < len(allp):
        j = i
        while j < len(allp) and allp[j][0] == allp[i][0]: j += 1
        r = (rank + rank + (j - i) - 1) / 2
        rsum += r * sum(1 for k in range(i, j) if allp[k][1])
        rank += j - i; i = j
    return (rsum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
def logloss(pairs):
    e = 1e-7
    return -sum(y * math.log(min(max(s, e), 1 - e)) + (1 - y) * math.log(min(max(1 - s, e), 1 - e))
                for y, s in pairs) / len(pairs)
def pooled(rows, users, f): return f([p for u in users for p in rows[u]])
real, ctl = load("real", "cloud"), load("ctl", "cloud")
users = sorted(set(real) & set(ctl))
assert len(users) == 60, f"users with test rows: {len(users)}"
a_r, a_c = pooled(real, users, auc), pooled(ctl, users, auc)
rng = random.Random(1)
diffs = []
for _ in range(300):
    bs = [rng.choice(users) for _ in users]
    r, c = pooled(real, bs, auc), pooled(ctl, bs, auc)
    if r is not None and c is not None: diffs.append(r - c)
diffs.sort()
lo, hi = diffs[int(0.025 * len(diffs))], diffs[int(0.975 * len(diffs)) - 1]
print(f"cloud AUC {a_r:.4f}, shuffled-label control {a_c:.4f}, "
      f"difference {a_r - a_c:+.4f} [{lo:+.4f}, {hi:+.4f}] (paired bootstrap over users)")
assert a_r > a_c and lo > 0, "the cloud model does not beat the shuffled-label control"
h = {m: load("hurt", m) for m in ("cloud", "naive-ft", "ft-guard", "metapatch")}
hu = sorted(h["cloud"])
assert len(hu) == 5, f"poisoned devices with test rows: {len(hu)}"
ll = {m: pooled(h[m], hu, logloss) for m in h}
print("poisoned devices, test logloss: " + ", ".join(f"{m} {v:.4f}" for m, v in ll.items()))
assert ll["naive-ft"] > ll["cloud"] + 0.02, "the adaptation does not hurt: the scenario failed"
# Fine-tuning is what hurts here (naive-ft above): its guarded twin must
# keep the cloud model on every device.
kept = sum(1 for u in hu if h["ft-guard"][u] == h["cloud"][u])
print(f"ft-guard: {kept} of {len(hu)} poisoned devices kept the cloud model")
assert kept == len(hu), f"ft-guard: the guard adopted a hurtful model on {len(hu) - kept} devices"
# MetaPatch (m and the user's bias) may find something real; whatever a
# guard adopts must not be worse than the cloud model on that device.
kept = sum(1 for u in hu if h["metapatch"][u] == h["cloud"][u])
worse = [u for u in hu if h["metapatch"][u] != h["cloud"][u] and
         logloss(h["metapatch"][u]) > logloss(h["cloud"][u])]
print(f"metapatch: {kept} of {len(hu)} kept the cloud model; adopted and worse on test: {len(worse)}")
assert not worse, f"metapatch: adopted a hurtful patch on devices {worse}"
PY
cat "$T/learning.out"
# The daemon logs one decision per device for the method it serves.
nk=$(grep -c "TRAIN: device=hurt-.*kept the cloud model" "$T/hurt.log" || true)
na=$(grep -c "TRAIN: device=hurt-" "$T/hurt.log" || true)
echo "served method on shuffled labels: the daemon kept the cloud model on $nk of $na"
[ "$na" = 5 ] || die "the daemon logged $na learning decisions, not 5"
echo "learning OK"
