#!/bin/sh
# distill-rounds.sh DATA [R]: MoMoDistill over R rounds through the real
# daemons. One cloudd trains v1 on the pool; every user of DATA runs as a
# device (not run-once: a device re-downloads, re-personalizes and
# re-evaluates on every announced version, with deviced.eval-dir set). Round
# r: once every device has uploaded its patch on v_r (and written its test
# predictions for v_r), `dcctl distill` makes v_{r+1}; the devices pick it
# up. A run whose validation rule keeps v_r's weights, or whose gain is
# below distill.accept-z standard errors, publishes no version:
# that round's model stays v_r (after = before), the devices upload
# nothing new, so a later round would distil the same patches again and
# the rounds end there. Per round, bin/dccl-eval compares the "cloud" rows
# of the two passes (the cloud model as each device downloaded it: v_r
# before, v_{r+1} after): GAUC, long-tail GAUC and a paired per-user
# bootstrap interval of the GAUC difference. Output: OUTDIR (default
# out/distill) rounds.md, rounds.csv and rounds.svg (drawn here, no
# plotting package needed).
# DATA is a MovieLens directory or a split directory (pool.csv + devices/).
# CLOUDD_OPTS / DEVICED_OPTS add -o options; DISTILL_OUT sets OUTDIR.
# DISTILL_WORK=DIR works in DIR and leaves it (logs, cloud database, each
# pass's complete prediction files in passV/) for the caller to read and
# remove; otherwise a temp dir is removed at exit.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DCCL_BIN:-$ROOT/bin}
DATA=${1:?usage: distill-rounds.sh DATA [R]}
R=${2:-3}
OUTDIR=${DISTILL_OUT:-$ROOT/out/distill}
DEVS_PER_PROC=${DEVS_PER_PROC:-250}
TIMEOUT=${DISTILL_TIMEOUT:-600}	# seconds per pass
export OPENBLAS_NUM_THREADS=1
# cloudd and the devices enroll with one token (auth.mode = mac); a cloudd
# without authentication ignores it.
DCCL_AUTH_TOKEN=${DCCL_AUTH_TOKEN:-distill-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')}
export DCCL_AUTH_TOKEN
mkdir -p "$OUTDIR"
if [ -n "${DISTILL_WORK:-}" ]; then
	WORK=$DISTILL_WORK; mkdir -p "$WORK"; OWN=0
else
	WORK=$(mktemp -d /tmp/dccl-distill.XXXXXX); OWN=1
fi
PIDS=""
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"
	elif [ $OWN = 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT INT TERM
t0=$(date +%s)
EP=ipc://$WORK/cloudd.ipc PUB=ipc://$WORK/pub.ipc ADM=ipc://$WORK/admin.ipc
fail() { echo "distill-rounds: $*"; tail -20 "$WORK/cloudd.log" 2>/dev/null; exit 1; }

if [ -f "$DATA/pool.csv" ]; then
	ln -sfn "$(cd "$DATA" && pwd)" "$WORK/data"
else
	"$BIN/dccl-data" split "$DATA" "$WORK/data" >/dev/null || fail "split failed"
fi
SHARDS=$WORK/data/devices
"$BIN/cloudd" -o cloudd.data-dir="$WORK/cloud" --import "$WORK/data/pool.csv" \
    >"$WORK/import.log" 2>&1 || fail "import failed"
"$BIN/cloudd" -o cloudd.listen="$EP" -o cloudd.pub-listen="$PUB" \
    -o cloudd.admin-listen="$ADM" -o cloudd.data-dir="$WORK/cloud" \
    ${CLOUDD_OPTS:-} >"$WORK/cloudd.log" 2>&1 &
CPID=$!
PIDS="$PIDS $CPID"
i=0
until grep -q "ANNOUNCE: model v1 " "$WORK/cloudd.log"; do
	i=$((i + 1)); [ $i -lt 3000 ] || fail "no model v1"
	kill -0 $CPID 2>/dev/null || fail "cloudd died"
	sleep 0.1
done

users=$(ls "$SHARDS" | sed -n 's/^\([0-9]*\)\.local\.csv$/\1/p' | sort -n)
N=$(echo "$users" | wc -l)
echo "$users" | split -l "$DEVS_PER_PROC" - "$WORK/group."
p=0
mkdir -p "$WORK/eval"
for g in "$WORK"/group.*; do
	p=$((p + 1))
	mkdir -p "$WORK/shards$p"
	for u in $(cat "$g"); do
		ln -sf "$SHARDS/$u.local.csv" "$WORK/shards$p/"
		[ -f "$SHARDS/$u.test.csv" ] && ln -sf "$SHARDS/$u.test.csv" "$WORK/shards$p/"
	done
	"$BIN/deviced" -o deviced.cloud="$EP" -o deviced.cloud-pub="$PUB" \
	    -o deviced.shards="$WORK/shards$p" -o deviced.data-dir="$WORK/dev" \
	    -o deviced.eval-dir="$WORK/eval" \
	    -o deviced.eval-methods=cloud,metapatch ${DEVICED_OPTS:-} \
	    >"$WORK/deviced$p.log" 2>&1 &
	PIDS="$PIDS $!"
	DPIDS="${DPIDS:-} $!"
done
for f in "$SHARDS"/*.local.csv; do
	echo "$(basename "$f" .local.csv),$(grep -vc '^#\|^user,' "$f")"
done >"$WORK/counts"

# Waits until every device has a patch on version $1, then keeps a copy
# of the prediction files written for it (before the upload, so complete).
pass() {
	v=$1; i=0
	while :; do
		n=$(sqlite3 "$WORK/cloud/cloudd.db" "SELECT count(DISTINCT device_id) FROM patches WHERE base_version = $v" 2>/dev/null || echo 0)
		[ "$n" -ge "$N" ] && break
		i=$((i + 1)); [ $i -lt $((TIMEOUT * 5)) ] || fail "only $n of $N devices uploaded on v$v"
		kill -0 $CPID 2>/dev/null || fail "cloudd died"
		for d in $DPIDS; do
			kill -0 "$d" 2>/dev/null || { tail -n 5 "$WORK"/deviced*.log; fail "a deviced process died"; }
		done
		sleep 0.2
	done
	mkdir -p "$WORK/pass$v"
	cp "$WORK"/eval/*.csv "$WORK/pass$v/"
	cp "$WORK"/eval/*.extra "$WORK/pass$v/" 2>/dev/null || true
	echo "v$v: $N devices personalized and evaluated ($(( $(date +%s) - t0 )) s)"
}

# Metric of a method row in a dccl-eval CSV: csv_get FILE METHOD COLUMN.
csv_get() {
	awk -F, -v m="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	    $1 == m { print $(col[c]) }' "$1"
}

pass 1
echo "round,before,after,patches,stale_used,gauc_before,gauc_after,d_gauc,d_gauc_lo,d_gauc_hi,lt_gauc_before,lt_gauc_after,mp_gauc_before,mp_gauc_after" >"$WORK/rounds.csv"
r=1
cv=1	# the model before the round
kept() { grep -c "DISTILL: v[0-9]* kept: " "$WORK/cloudd.log" || true; }
while [ $r -le "$R" ]; do
	nk=$(kept)
	out=$("$BIN/dcctl" -s "$ADM" -t 60 distill) || fail "dcctl distill: $out"
	echo "round $r: $out"
	pt=$(echo "$out" | sed -n 's/.*: \([0-9]*\) patches, \([0-9]*\) stale used.*/\1,\2/p')
	nv=$((cv + 1))
	i=0
	# A new version, or the run kept v_cv (then no version comes).
	until grep -q "ANNOUNCE: model v$nv " "$WORK/cloudd.log" || [ "$(kept)" -gt "$nk" ]; do
		i=$((i + 1)); [ $i -lt $((TIMEOUT * 10)) ] || fail "no model v$nv"
		grep -q "DISTILL: no new model" "$WORK/cloudd.log" && fail "distillation failed"
		sleep 0.1
	done
	if grep -q "ANNOUNCE: model v$nv " "$WORK/cloudd.log"; then
		grep "DISTILL: model v$nv " "$WORK/cloudd.log" | sed 's/.*DISTILL: /  /'
		pass $nv
		av=$nv
	else
		grep "DISTILL: v$cv kept: " "$WORK/cloudd.log" | tail -n 1 | sed 's/.*DISTILL: /  /'
		av=$cv
	fi
	# before = cloud rows of v_cv, after = cloud rows of v_av; paired.
	cmp=$WORK/cmp$r
	mkdir -p "$cmp/run"
	for f in "$WORK/pass$cv"/*.csv; do
		b=$(basename "$f")
		{ sed -n 's/^cloud,/before,/p; s/^metapatch,/mp-before,/p' "$f"
		  sed -n 's/^cloud,/after,/p; s/^metapatch,/mp-after,/p' "$WORK/pass$av/$b"; } >"$cmp/run/$b"
	done
	"$BIN/dccl-eval" --task ctr --seeds-dirs "$cmp/run" --out "$cmp" --name r \
	    --baseline before --methods after,mp-before,mp-after \
	    --user-counts "$WORK/counts" >/dev/null || fail "dccl-eval failed"
	c=$cmp/r.csv
	echo "$r,v$cv,v$av,$pt,$(csv_get "$c" before gauc),$(csv_get "$c" after gauc),$(csv_get "$c" after d_gauc),$(csv_get "$c" after d_gauc_lo),$(csv_get "$c" after d_gauc_hi),$(csv_get "$c" before lt_gauc),$(csv_get "$c" after lt_gauc),$(csv_get "$c" mp-before gauc),$(csv_get "$c" mp-after gauc)" >>"$WORK/rounds.csv"
	r=$((r + 1))
	if [ "$av" = "$cv" ]; then
		echo "round $((r - 1)) kept v$cv: no new version, so no new patches; the rounds end"
		break
	fi
	cv=$av
done
RAN=$((r - 1))
cp "$WORK/rounds.csv" "$OUTDIR/rounds.csv"

# The table.
awk -F, -v data="$(basename "$DATA")" -v n="$N" 'NR == 1 { next }
function f(x) { return sprintf("%.4f", x) }
function s(x) { return sprintf("%+.4f", x) }
BEGIN {
	print "### MoMoDistill rounds on " data " (" n " devices)\n"
	print "Cloud model before and after each distillation, scored on every"
	print "device'"'"'s held-out test samples (the `cloud` rows of the devices'"'"' prediction"
	print "files). Δ is the paired per-user bootstrap 95 % interval of the GAUC"
	print "difference (★ = excludes 0). Long tail = the 20 % of users with the"
	print "fewest local samples. MetaPatch = the devices'"'"' personalized models on"
	print "each version. A round whose distillation kept the weights (best epoch"
	print "0, or a validation gain below distill.accept-z standard errors)"
	print "publishes no version: its model stays, and the rounds end there.\n"
	print "| round | model | patches (stale used) | GAUC before → after | ΔGAUC [95% CI] | long-tail GAUC before → after | MetaPatch GAUC before → after |"
	print "|---|---|---|---|---|---|---|"
}
{
	star = ($9 + 0 > 0 || $10 + 0 < 0) ? " ★" : ""
	printf "| %d | %s | %s (%s) | %s → %s | %s [%s, %s]%s | %s → %s | %s → %s |\n", $1,
	    $2 == $3 ? $2 " kept (no version)" : $2 " → " $3, $4, $5,
	    f($6), f($7), s($8), s($9), s($10), star, f($11), f($12), f($13), f($14)
}' "$OUTDIR/rounds.csv" >"$OUTDIR/rounds.md"

# The plot: GAUC and long-tail GAUC of the cloud model by version.
awk -F, 'NR == 1 { next }
{ k++; g[k - 1] = $6; l[k - 1] = $11; g[k] = $7; l[k] = $12; m[k - 1] = $13; m[k] = $14
  vn[k - 1] = $2; vn[k] = $3 == $2 ? $3 " kept" : $3 }
END {
	W = 640; H = 400; L = 70; Rm = 170; T = 40; B = 50
	lo = 1; hi = 0
	for (i = 0; i <= k; i++) {
		if (g[i] < lo) lo = g[i]; if (l[i] < lo) lo = l[i]; if (m[i] < lo) lo = m[i]
		if (g[i] > hi) hi = g[i]; if (l[i] > hi) hi = l[i]; if (m[i] > hi) hi = m[i]
	}
	pad = (hi - lo) * 0.1 + 0.002; lo -= pad; hi += pad
	printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H
	printf "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H
	printf "<text x=\"%d\" y=\"22\" font-size=\"14\">MoMoDistill rounds: cloud model GAUC by version</text>\n", L
	pw = W - L - Rm; ph = H - T - B
	printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", L, T, pw, ph
	for (t = 0; t <= 4; t++) {
		v = lo + (hi - lo) * t / 4; y = T + ph - ph * t / 4
		printf "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, L + pw, y, y
		printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.4f</text>\n", L - 6, y + 4, v
	}
	for (i = 0; i <= k; i++) {
		x = L + (k ? pw * i / k : pw / 2)
		printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s%s</text>\n", x, T + ph + 18, vn[i], i ? "" : " (pool)"
	}
	printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">model version (round r distils v_r into v_r+1)</text>\n", L + pw / 2, H - 8
	split("#1f77b4,#d62728,#2ca02c", col, ",")
	split("cloud GAUC,cloud long-tail GAUC,MetaPatch GAUC", name, ",")
	for (s = 1; s <= 3; s++) {
		pts = ""
		for (i = 0; i <= k; i++) {
			v = s == 1 ? g[i] : s == 2 ? l[i] : m[i]
			x = L + (k ? pw * i / k : pw / 2); y = T + ph - ph * (v - lo) / (hi - lo)
			pts = pts sprintf("%.1f,%.1f ", x, y)
			printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x, y, col[s]
		}
		printf "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", pts, col[s], s == 3 ? " stroke-dasharray=\"5,3\"" : ""
		printf "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>\n", L + pw + 10, L + pw + 30, T + 10 + 20 * s, T + 10 + 20 * s, col[s]
		printf "<text x=\"%d\" y=\"%d\">%s</text>\n", L + pw + 35, T + 14 + 20 * s, name[s]
	}
	print "</svg>"
}' "$OUTDIR/rounds.csv" >"$OUTDIR/rounds.svg"

kill -TERM $CPID 2>/dev/null || true
wait $CPID 2>/dev/null || true
cat "$OUTDIR/rounds.md"
echo
echo "distill-rounds: $RAN of $R rounds in $(( $(date +%s) - t0 )) s; $OUTDIR/rounds.md, rounds.csv, rounds.svg"
