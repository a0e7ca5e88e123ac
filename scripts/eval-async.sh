#!/bin/sh
# eval-async.sh [DATA]: round-free (buffered) acceptance against synchronous
# rounds under heterogeneous device speeds, through the real daemons
# (`make eval-async`). One cloudd trains v1 on the pool of DATA (default
# ../shared/data/ml-latest-small); its store is copied for every arm, so all
# arms start from the same v1. Each arm then runs cloudd and ASYNC_DEVICES
# devices (the users with the lowest ids; every device re-downloads and
# re-personalizes on each announced version). Every device holds each patch
# for a delay drawn from learn.delay-dist (ASYNC_DIST, median or mean
# ASYNC_DELAY_MS, seeded by ASYNC_SEED, the device id and the version)
# before uploading it: a spread of device speeds and availability.
#   sync      distill.min-patches = N: the cloud distils once every device
#             has a patch on the current version, ASYNC_ROUNDS times
#   buf-poly  distill.buffer = K (ASYNC_K, default N/4): the cloud distils
#             whenever K users uploaded since its last run, whatever their
#             base; stale patches weigh lambda / (1 + age)^0.5
#   buf-decay the same with the present decay (lambda * 0.5^age)
#   buf-poly-k2 (only with ASYNC_K2 > 0, e.g. N/10): buf-poly, smaller buffer
# A buffered arm runs for ASYNC_LIMIT_X (1.2) times the synchronous arm's
# wall clock; 1 round (ASYNC_ROUNDS) by default, since further rounds on
# the same local data are rejected by the validation rule. A run the rule
# rejects (best epoch 0) publishes no version, so the devices stay and the
# synchronous arm ends at such a run: its result is then its last version
# (v1 when its first run is kept). Afterwards
# bin/dccl-score scores every version of every arm on the devices' test
# files, and bin/dccl-eval compares each with the synchronous run's last
# version (paired per-user bootstrap). The table gives, per arm, the time
# from the devices' start to each version's announcement, its GAUC and
# interval, the time to reach the synchronous run's final GAUC, and each
# arm's distillation runs (new version or kept; runs.csv in the work dir).
# Output: OUTDIR (ASYNC_OUT, default out/async) async.md, versions.csv.
# Other knobs: ASYNC_EPOCHS (distill.epochs, 3), DEVS_PER_PROC (250).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DCCL_BIN:-$ROOT/bin}
DATA=${1:-$ROOT/../shared/data/ml-latest-small}
OUT=${ASYNC_OUT:-$ROOT/out/async}
NDEV=${ASYNC_DEVICES:-100000}
DELAY=${ASYNC_DELAY_MS:-3000}
DIST=${ASYNC_DIST:-lognormal}
SEED=${ASYNC_SEED:-1}
R=${ASYNC_ROUNDS:-1}
LIMIT_X=${ASYNC_LIMIT_X:-1.2}
EPOCHS=${ASYNC_EPOCHS:-3}
DEVS_PER_PROC=${DEVS_PER_PROC:-250}
export OPENBLAS_NUM_THREADS=1
DCCL_AUTH_TOKEN=${DCCL_AUTH_TOKEN:-async-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')}
export DCCL_AUTH_TOKEN
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/dccl-async.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM
t00=$(date +%s)
fail() { echo "eval-async: $*"; tail -20 "$WORK"/*/cloudd.log 2>/dev/null | tail -20; exit 1; }
# Seconds since midnight UTC, from the script or from a log timestamp.
now() { date -u +%H:%M:%S.%N | awk -F: '{ print $1 * 3600 + $2 * 60 + $3 }'; }

if [ -f "$DATA/pool.csv" ]; then
	ln -sfn "$(cd "$DATA" && pwd)" "$WORK/data"
else
	"$BIN/dccl-data" split "$DATA" "$WORK/data" >/dev/null || fail "split failed"
fi
users=$(ls "$WORK/data/devices" | sed -n 's/^\([0-9]*\)\.local\.csv$/\1/p' | sort -n | head -n "$NDEV")
N=$(echo "$users" | wc -l)
K=${ASYNC_K:-$((N / 4))}
K2=${ASYNC_K2:-0}
mkdir -p "$WORK/shards"
for u in $users; do
	ln -sf "$WORK/data/devices/$u.local.csv" "$WORK/shards/"
	ln -sf "$WORK/data/devices/$u.test.csv" "$WORK/shards/"
done
echo "$users" | split -l "$DEVS_PER_PROC" - "$WORK/group."

# v1, once for every arm.
"$BIN/cloudd" -o cloudd.data-dir="$WORK/cloud0" --import "$WORK/data/pool.csv" \
    >"$WORK/import.log" 2>&1 || fail "import failed"
"$BIN/cloudd" -o cloudd.listen="ipc://$WORK/c0.ipc" -o cloudd.pub-listen="ipc://$WORK/p0.ipc" \
    -o cloudd.admin-listen="ipc://$WORK/a0.ipc" -o cloudd.data-dir="$WORK/cloud0" \
    -o ofa.enable=no >"$WORK/cloud0.log" 2>&1 &
CPID=$!
PIDS="$PIDS $CPID"
i=0
until grep -q "ANNOUNCE: model v1 " "$WORK/cloud0.log"; do
	i=$((i + 1)); [ $i -lt 3000 ] || fail "no model v1"
	kill -0 $CPID 2>/dev/null || fail "cloudd died"
	sleep 0.1
done
kill -TERM $CPID; wait $CPID 2>/dev/null || true
echo "eval-async: v1 trained, $N devices, K = $K, delays $DIST $DELAY ms ($(( $(date +%s) - t00 )) s)"

# run ARM LIMIT_S CLOUDD_OPTS...: one arm; stops after version R + 1 or a
# kept run (sync), or LIMIT_S seconds after the devices started.
run() {
	arm=$1 limit=$2
	shift 2
	A=$WORK/$arm
	mkdir -p "$A"
	cp -r "$WORK/cloud0" "$A/cloud"
	"$BIN/cloudd" -o cloudd.listen="ipc://$A/c.ipc" -o cloudd.pub-listen="ipc://$A/p.ipc" \
	    -o cloudd.admin-listen="ipc://$A/a.ipc" -o cloudd.data-dir="$A/cloud" \
	    -o ofa.enable=no -o cloudd.cron-ms=200 -o distill.epochs="$EPOCHS" "$@" \
	    >"$A/cloudd.log" 2>&1 &
	cp=$!
	PIDS="$PIDS $cp"
	i=0
	until [ -S "$A/c.ipc" ] && [ -S "$A/p.ipc" ]; do
		i=$((i + 1)); [ $i -lt 300 ] || fail "$arm: cloudd did not start"
		sleep 0.1
	done
	t0=$(now)
	dp=""
	p=0
	for g in "$WORK"/group.*; do
		p=$((p + 1))
		mkdir -p "$A/shards$p"
		for u in $(cat "$g"); do
			ln -sf "$WORK/shards/$u.local.csv" "$WORK/shards/$u.test.csv" "$A/shards$p/"
		done
		"$BIN/deviced" -o deviced.cloud="ipc://$A/c.ipc" -o deviced.cloud-pub="ipc://$A/p.ipc" \
		    -o deviced.shards="$A/shards$p" -o deviced.data-dir="$A/dev" \
		    -o learn.delay-ms="$DELAY" -o learn.delay-dist="$DIST" \
		    -o learn.delay-seed="$SEED" >"$A/deviced$p.log" 2>&1 &
		dp="$dp $!"
		PIDS="$PIDS $!"
	done
	while :; do
		el=$(awk -v a="$(now)" -v b="$t0" 'BEGIN { d = a - b; if (d < 0) d += 86400; printf "%d", d }')
		if [ -n "$limit" ] && [ "$el" -ge "$limit" ]; then break; fi
		if [ -z "$limit" ] && { grep -q "ANNOUNCE: model v$((R + 1)) " "$A/cloudd.log" ||
		    grep -q "DISTILL: v[0-9]* kept: " "$A/cloudd.log"; }; then break; fi
		[ "$el" -lt 1200 ] || fail "$arm: no end after 1200 s"
		kill -0 $cp 2>/dev/null || fail "$arm: cloudd died"
		for d in $dp; do kill -0 "$d" 2>/dev/null || fail "$arm: a deviced died"; done
		sleep 0.5
	done
	for d in $dp; do kill -TERM "$d" 2>/dev/null || true; done
	for d in $dp; do wait "$d" 2>/dev/null || true; done
	# A job that is running finishes first (its version is then scored too).
	kill -TERM $cp; wait $cp 2>/dev/null || true
	# version,seconds after the devices started,fresh,stale used
	awk -v t0="$t0" '
	    function sec(ts) { split(substr(ts, 12, 12), x, ":"); return x[1] * 3600 + x[2] * 60 + x[3] }
	    / DISTILL: model v/ { v = $0; sub(/.*model v/, "", v); sub(/ .*/, "", v)
		f = $0; sub(/.*: /, "", f); split(f, w, " "); fr[v] = w[1]; st[v] = w[4] }
	    / ANNOUNCE: model v/ { v = $0; sub(/.*model v/, "", v); sub(/ .*/, "", v)
		d = sec($1) - t0; if (d < -43200) d += 86400; if (!(v in t)) t[v] = d; ord[++n] = v }
	    END { for (i = 1; i <= n; i++) { v = ord[i]; if (v in seen) continue; seen[v] = 1
		printf "%s,%.1f,%s,%s\n", v, v == 1 ? 0 : t[v], (v in fr) ? fr[v] : 0, (v in st) ? st[v] : 0 } }' \
	    "$A/cloudd.log" >"$A/times.csv"
	# new|kept,version made (new) or kept,seconds,fresh,stale: every run
	# that ended
	awk -v t0="$t0" '
	    function sec(ts) { split(substr(ts, 12, 12), x, ":"); return x[1] * 3600 + x[2] * 60 + x[3] }
	    / DISTILL: (model v[0-9]+ from v[0-9]+|v[0-9]+ kept): / {
		k = $0 ~ / kept: / ? "kept" : "new"
		v = $0; sub(/.*DISTILL: (model )?v/, "", v); sub(/[^0-9].*/, "", v)
		f = $0; sub(/.*: /, "", f); split(f, w, " ")
		d = sec($1) - t0; if (d < -43200) d += 86400
		printf "%s,%s,%.1f,%s,%s\n", k, v, d, w[1], w[4] }' \
	    "$A/cloudd.log" >"$A/runs.csv"
	"$BIN/dccl-score" "$A/cloud/cloudd.db" "$WORK/shards" "$A/scores" --from 2 2>>"$A/score.log" ||
	    fail "$arm: scoring failed"
	echo "eval-async: $arm: $(grep -c . "$A/times.csv") versions, $(grep -c . "$A/runs.csv")" \
	    "runs ($(grep -c '^kept,' "$A/runs.csv") kept) in $el s ($(( $(date +%s) - t00 )) s)"
}

run sync "" -o distill.min-patches="$N"
# The synchronous wall clock: the end of its last run (a new version's
# announcement or the kept line); its result: its last version.
TS=$(tail -n 1 "$WORK/sync/runs.csv" | cut -d, -f3)
[ -n "$TS" ] || fail "sync: no distillation ended"
SV=$(tail -n 1 "$WORK/sync/times.csv" | cut -d, -f1)
LIM=$(awk -v t="$TS" -v x="$LIMIT_X" 'BEGIN { printf "%d", t * x + 1 }')
run buf-poly "$LIM" -o distill.buffer="$K" -o distill.stale=poly -o distill.poly-a=0.5
run buf-decay "$LIM" -o distill.buffer="$K" -o distill.stale=decay
ARMS="sync buf-poly buf-decay"
if [ "$K2" -gt 0 ] && [ "$K2" != "$K" ]; then
	run buf-poly-k2 "$LIM" -o distill.buffer="$K2" -o distill.stale=poly -o distill.poly-a=0.5
	ARMS="$ARMS buf-poly-k2"
fi

# Every version of every arm, paired against sync's last one.
mkdir -p "$WORK/cmp/run"
"$BIN/dccl-score" "$WORK/cloud0/cloudd.db" "$WORK/shards" "$WORK/v1" 2>/dev/null || fail "scoring v1"
sed 's/^cloud,/v1,/' "$WORK/v1/v1/preds.csv" >"$WORK/cmp/run/preds.csv"
methods=""
for a in $ARMS; do
	for d in "$WORK/$a/scores"/v*; do
		[ -d "$d" ] || continue
		v=$(basename "$d")
		sed "s/^cloud,/$a-$v,/" "$d/preds.csv" >>"$WORK/cmp/run/preds.csv"
		methods="$methods${methods:+,}$a-$v"
	done
done
BASE=sync-v$SV
[ -n "$SV" ] && [ "$SV" != 1 ] || BASE=v1
"$BIN/dccl-eval" --task ctr --seeds-dirs "$WORK/cmp/run" --out "$WORK/cmp" --name all \
    --baseline "$BASE" --methods "v1,$methods" >/dev/null || fail "dccl-eval failed"
# versions.csv: arm,version,seconds,fresh,stale,gauc,d,lo,hi
awk -F, 'FILENAME ~ /all.csv$/ { if (FNR == 1) { for (i = 1; i <= NF; i++) c[$i] = i; next }
	g[$1] = $(c["gauc"]); d[$1] = $(c["d_gauc"]); lo[$1] = $(c["d_gauc_lo"]); hi[$1] = $(c["d_gauc_hi"]); next }
    { np = split(FILENAME, p, "/"); arm = p[np - 1]; m = $1 == 1 ? "v1" : arm "-v" $1
      if (!(m in g) || m in done) next
      done[m] = 1; if (m == "v1") arm = "start"
      if (m == base) { d[m] = 0; lo[m] = 0; hi[m] = 0 }
      print arm "," $1 "," $2 "," $3 "," $4 "," g[m] "," d[m] "," lo[m] "," hi[m] }
    END { if (("v1" in g) && !("v1" in done)) print "start,1,0,0,0," g["v1"] "," d["v1"] "," lo["v1"] "," hi["v1"] }' base="$BASE" \
    "$WORK/cmp/all.csv" $(for a in $ARMS; do echo "$WORK/$a/times.csv"; done) >"$OUT/versions.csv"
cp "$WORK/cmp/all.md" "$OUT/all-versions.md"
target=$(awk -F, -v b="$BASE" '($1 == "start" ? "v1" : $1 "-v" $2) == b { print $6 }' "$OUT/versions.csv")
{
echo "## Round-free acceptance against synchronous rounds ($(basename "$DATA"), $N devices)"
echo
echo "Devices: the $N users with the lowest ids; each holds every patch for a"
echo "delay from learn.delay-dist = $DIST ($DELAY ms, seed $SEED) before uploading."
echo "sync: distill.min-patches = $N, $R round(s) or until a run is kept. buf-*: distill.buffer = $K"
[ "$K2" -gt 0 ] && [ "$K2" != "$K" ] && echo "(buf-poly-k2: $K2)"
echo "patches since the last run, any base; poly = λ/(1+age)^0.5, decay = λ·0.5^age;"
echo "run for $LIMIT_X × the synchronous wall clock. Time = seconds from the devices' start"
echo "to the version's announcement (v1 at 0). GAUC on the $N devices' test"
echo "files; Δ = paired per-user bootstrap 95 % interval against $BASE (GAUC $target)."
echo "A run whose best epoch is 0, or whose validation gain is below distill.accept-z"
echo "standard errors, keeps the weights and publishes no version."
echo
echo "| arm | distillation runs | new versions | kept (no version) |"
echo "|---|---|---|---|"
for a in $ARMS; do
	awk -F, -v a="$a" '{ n++; if ($1 == "kept") k++ }
	    END { printf "| %s | %d | %d | %d |\n", a, n, n - k, k }' "$WORK/$a/runs.csv"
done
echo
echo "| arm | version | time (s) | patches fresh + stale | GAUC | ΔGAUC vs $BASE [95% CI] |"
echo "|---|---|---|---|---|---|"
awk -F, '{ star = ($8 + 0 > 0 || $9 + 0 < 0) ? " ★" : ""
	printf "| %s | v%s | %.1f | %s + %s | %.4f | %+.4f [%+.4f, %+.4f]%s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, star }' \
    <<EOF
$(grep "^start," "$OUT/versions.csv"; grep -v "^start," "$OUT/versions.csv")
EOF
echo
echo "Time to reach the synchronous run's final GAUC ($target):"
echo
echo "| arm | first version ≥ target | time (s) | × sync's time | first version not below it (interval reaches 0) | time (s) | × sync's time | best GAUC in the run | its Δ [95% CI] |"
echo "|---|---|---|---|---|---|---|---|---|"
tsync=$(awk -F, -v t="$target" '$1 == "sync" && $6 + 0 >= t + 0 { print $3; exit }' "$OUT/versions.csv")
# Sync kept v1: its result came at the end of its run.
[ -n "$tsync" ] || tsync=$TS
awk -F, -v t="$target" -v ts="$tsync" -v arms="$ARMS" '
    $2 == 1 { next }
    { if (!($1 in seen)) { seen[$1] = 1; ord[++n] = $1 }
      if (!($1 in hit) && $6 + 0 >= t + 0) { hit[$1] = $2; ht[$1] = $3 }
      if (!($1 in nb) && $9 + 0 >= 0) { nb[$1] = $2; nt[$1] = $3 }
      if (!($1 in bg) || $6 > bg[$1]) { bg[$1] = $6; bd[$1] = $7; bl[$1] = $8; bh[$1] = $9 } }
    END { na = split(arms, al, " ")
      for (i = 1; i <= na; i++) { a = al[i]
	if (!(a in seen)) { printf "| %s | no version | — | — | no version | — | — | — | — |\n", a; continue }
	if (a in hit) printf "| %s | v%s | %.1f | %.2f |", a, hit[a], ht[a], ht[a] / ts
	else printf "| %s | not reached | — | — |", a
	if (a in nb) printf " v%s | %.1f | %.2f |", nb[a], nt[a], nt[a] / ts
	else printf " not reached | — | — |"
	printf " %.4f | %+.4f [%+.4f, %+.4f] |\n", bg[a], bd[a], bl[a], bh[a] } }' "$OUT/versions.csv"
} >"$OUT/async.md"
cat "$OUT/async.md"
echo
echo "eval-async: $(( $(date +%s) - t00 )) s; $OUT/async.md, versions.csv"
