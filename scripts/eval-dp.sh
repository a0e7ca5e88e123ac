#!/bin/sh
# eval-dp.sh DATASET_DIR [OUTDIR]: the accuracy cost of differential
# privacy (README, "Differential privacy"), through the real daemons as in
# scripts/eval.sh. For each target epsilon (DP off, then DP_EPS) and seed,
# one cloudd trains on the pool and every user runs as a device with DP on
# what leaves it (dp.* options): the retrieval query vectors and the
# uploaded patch, clipped and noised. The device scores its held-out test
# samples with DP_METHODS; for the first seed, scripts/distill-rounds.sh
# also runs one MoMoDistill round on the (noised) patches, and the
# distilled cloud model is scored the same way.
#
# Noise from the target: epsilon (per device, per round, for dp.delta =
# DP_DELTA) gives rho by inverting epsilon = rho + 2 sqrt(rho ln(1/delta)).
# DP_PATCH_SHARE of rho goes to the patch (one release: z = 1/sqrt(2 rho_p))
# and the rest to the Q query vectors a device sends per round
# (learn.retrieve-queries, read from deviced -p; z = sqrt(Q / (2 rho_v))).
# Clip norms: query vectors are L2-normalised to 1 by ctr_repr, so
# DP_REPR_CLIP = 1 clips nothing; the patch clip is the median L2 norm of the
# patches uploaded in the first seed's DP-off run (training side: patches
# are trained on pool and local samples only), unless DP_CLIP is given.
#
# Tables: bin/dccl-eval, paired per-user bootstrap intervals against the
# DP-off run of the same seed. Output: OUTDIR (default out/dp) table.md and
# table.csv. Environment: DP_EPS ("16 4 1"), DP_SEEDS ("1 2 3"), DP_DELTA
# (1e-5), DP_PATCH_SHARE (0.5), DP_CLIP, DP_REPR_CLIP (1), DP_METHODS,
# DP_DISTILL (1; 0 skips the round), CLOUDD_OPTS / DEVICED_OPTS (-o ...).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DCCL_BIN:-$ROOT/bin}
DATA=${1:?usage: eval-dp.sh DATASET_DIR [OUTDIR]}
OUTDIR=${2:-$ROOT/out/dp}
EPS=${DP_EPS:-16 4 1}
SEEDS=${DP_SEEDS:-1 2 3}
DELTA=${DP_DELTA:-1e-5}
SHARE=${DP_PATCH_SHARE:-0.5}
REPR_CLIP=${DP_REPR_CLIP:-1}
METHODS=${DP_METHODS:-cloud,metapatch,ft-coda,mp-lc-coda}
DISTILL=${DP_DISTILL:-1}
export OPENBLAS_NUM_THREADS=1
if [ ! -d "$DATA" ]; then
	echo "eval-dp.sh: $DATA: no such directory (a MovieLens directory such as"
	echo "ml-latest-small, or a split directory with pool.csv and devices/)"
	exit 1
fi
mkdir -p "$OUTDIR"
WORK=$(mktemp -d /tmp/dccl-evaldp.XXXXXX)
trap '[ "${KEEP:-0}" = 1 ] && echo "kept $WORK" || rm -rf "$WORK"' EXIT INT TERM
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }

if [ -f "$DATA/pool.csv" ]; then
	ln -sfn "$(cd "$DATA" && pwd)" "$WORK/data"
else
	"$BIN/dccl-data" split "$DATA" "$WORK/data" >/dev/null ||
	    { echo "eval-dp.sh: dccl-data split $DATA failed"; exit 1; }
fi
N=$(ls "$WORK/data/devices" | grep -c '\.local\.csv$' || true)
[ "$N" -gt 0 ] || { echo "eval-dp.sh: $DATA: no devices"; exit 1; }
for f in "$WORK/data"/devices/*.local.csv; do
	echo "$(basename "$f" .local.csv),$(grep -vc '^#\|^user,' "$f")"
done >"$WORK/counts"
# Q: query vectors per round, as the devices will be configured.
Q=$("$BIN/deviced" ${DEVICED_OPTS:-} -p 2>/dev/null |
    sed -n 's/^learn\.retrieve-queries *= *\([0-9][0-9]*\).*/\1/p')
[ -n "$Q" ] || { echo "eval-dp.sh: cannot read learn.retrieve-queries"; exit 1; }
first=${SEEDS%% *}
echo "data: $DATA ($N devices); epsilon: inf $EPS; delta $DELTA; seeds: $SEEDS"

# run SEED EPS [DP -o options]: one round; prediction files in $WORK/eval-SEED-EPS.
run() {
	s=$1 e=$2; shift 2
	dir=$WORK/r-$s-$e
	if [ "$DISTILL" = 1 ] && [ "$s" = "$first" ]; then
		DISTILL_WORK=$dir DISTILL_OUT=$dir/out \
		    CLOUDD_OPTS="${CLOUDD_OPTS:-} -o train.seed=$s" \
		    DEVICED_OPTS="-o learn.seed=$s -o deviced.eval-methods=$METHODS $* ${DEVICED_OPTS:-}" \
		    sh "$ROOT/scripts/distill-rounds.sh" "$WORK/data" 1 \
		    >"$WORK/log-$s-$e" 2>&1 || {
			echo "eval-dp.sh: distill round, seed $s, epsilon $e failed:"
			tail -n 20 "$WORK/log-$s-$e"; exit 1; }
		ln -s "$dir/pass1" "$WORK/eval-$s-$e"
	else
		mkdir -p "$dir/eval"
		OUT=$dir CLOUDD_OPTS="${CLOUDD_OPTS:-} -o train.seed=$s" \
		    DEVICED_OPTS="-o learn.seed=$s -o deviced.eval-dir=$dir/eval -o deviced.eval-methods=$METHODS $* ${DEVICED_OPTS:-}" \
		    sh "$ROOT/scripts/simulate.sh" "$N" "$WORK/data" \
		    >"$WORK/log-$s-$e" 2>&1 || {
			echo "eval-dp.sh: seed $s, epsilon $e failed:"
			grep -hE 'failed|died|Abort|Assert|no model' "$WORK/log-$s-$e" "$dir"/*.log | tail -n 20
			tail -n 5 "$WORK/log-$s-$e"; exit 1; }
		ln -s "$dir/eval" "$WORK/eval-$s-$e"
	fi
	# Per device, epsilon after its first patch (the end of round 1).
	cat "$dir"/deviced*.log | awk '/DP: device=.* patch norm/ {
		d = $0; sub(/.*device=/, "", d); sub(/ .*/, "", d)
		if (d in seen) next; seen[d] = 1
		x = $0; sub(/.*= \(/, "", x); sub(/,.*/, "", x); print x }' |
	    sort -g >"$WORK/eps-$s-$e"
	# Retried retrievals resend their release (dp.c) instead of a new one.
	rs=$(cat "$dir"/deviced*.log | grep -c 'query vectors: the earlier release' || true)
	# The device stores are large (a model each); keep logs and results.
	rm -rf "${dir:?}/dev"
	echo "  seed $s, epsilon $e: done ($(elapsed) s; $rs retried retrievals resent their release)"
}

# Median L2 norm of the patches on v1 in a cloud database (the blobs are
# packed UploadPatch messages: framed as one repeated field, one decode).
patch_norms() {	# DB
	cat >"$WORK/dp_norms.proto" <<-EOF
	syntax = "proto3";
	package dccl;
	import "dccl.proto";
	message DpPatches { repeated UploadPatch p = 1; }
	EOF
	mkdir -p "$WORK/blobs"
	sqlite3 "$1" "SELECT id, length(blob), writefile('$WORK/blobs/' || id, blob)
	    FROM patches WHERE base_version = 1" |
	while IFS='|' read -r id len _; do
		v="" n=$len
		while [ "$n" -ge 128 ]; do
			v="$v\\$(printf '%o' $(( (n & 127) | 128 )))"; n=$((n >> 7))
		done
		printf "\\012$v\\$(printf '%o' "$n")"
		cat "$WORK/blobs/$id"
	done >"$WORK/patches.bin"
	protoc-c --decode=dccl.DpPatches -I"$WORK" -I"$ROOT/proto" \
	    "$WORK/dp_norms.proto" <"$WORK/patches.bin" |
	    awk '/^p \{/ { if (k++) print sqrt(s), d; s = 0; d = 0 }
	    /^ *data:/ { s += $2 * $2; d++ } END { if (k) print sqrt(s), d }'
}

# Medians of a sorted column.
median() { awk '{ v[NR] = $1 } END { if (NR == 0) print "nan";
    else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "runs: DP off, seed $first"
run "$first" inf
if [ -n "${DP_CLIP:-}" ]; then
	CLIP=$DP_CLIP; clip_from="DP_CLIP"
else
	patch_norms "$WORK/r-$first-inf/cloud/cloudd.db" | sort -g >"$WORK/norms"
	[ -s "$WORK/norms" ] || { echo "eval-dp.sh: no patches on v1 to measure"; exit 1; }
	CLIP=$(median <"$WORK/norms")
	clip_from="median of $(wc -l <"$WORK/norms") patches uploaded without DP (seed $first)"
fi
PDIM=$(awk 'NR == 1 { print $2 }' "$WORK/norms" 2>/dev/null || true)
[ -n "$PDIM" ] || PDIM=nan
CLIP=$(awk -v c="$CLIP" 'BEGIN { printf "%.4g", c }')
echo "patch clip $CLIP ($clip_from); query vectors: clip $REPR_CLIP, Q = $Q per round"
rm -rf "$WORK/r-$first-inf/cloud" "$WORK/blobs" "$WORK/patches.bin"

# noise EPS -> "z_patch z_vec rho" (0 = that mechanism is off).
noise() {
	awk -v e="$1" -v dl="$DELTA" -v sh="$SHARE" -v q="$Q" 'BEGIN {
		L = log(1 / dl); r = (sqrt(L + e) - sqrt(L)) ^ 2
		zp = sh > 0 ? sqrt(1 / (2 * sh * r)) : 0
		zv = sh < 1 ? sqrt(q / (2 * (1 - sh) * r)) : 0
		printf "%.4g %.4g %.6g\n", zp, zv, r }'
}
dp_opts() {	# EPS
	set -- $(noise "$1")
	o="-o dp.delta=$DELTA"
	[ "$1" != 0 ] && o="$o -o dp.clip=$CLIP -o dp.noise=$1"
	[ "$2" != 0 ] && o="$o -o dp.repr-clip=$REPR_CLIP -o dp.repr-noise=$2"
	echo "$o"
}
for s in $SEEDS; do
	[ "$s" = "$first" ] || run "$s" inf
	for e in $EPS; do
		run "$s" "$e" $(dp_opts "$e")
	done
done

# --- device rows: each method against itself without DP, per seed --------
echo "kind,method,epsilon,z_patch,z_vectors,patch_clip,repr_clip,eps_measured_median,eps_measured_max,gauc,gauc_std,d_gauc,d_gauc_lo,d_gauc_hi,lt_gauc,n_runs,n_users" >"$WORK/table.csv"
csv_get() {	# FILE METHOD COLUMN
	awk -F, -v m="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	    $1 == m { print $(col[c]) }' "$1"
}
meas() {	# EPS -> "median max" of the measured epsilon over devices and seeds
	[ "$1" = inf ] && { echo "inf inf"; return; }
	cat "$WORK"/eps-*-"$1" | sort -g >"$WORK/eps-all"
	[ -s "$WORK/eps-all" ] || { echo "nan nan"; return; }
	echo "$(median <"$WORK/eps-all") $(tail -n 1 "$WORK/eps-all")"
}
# cmp/METHOD/sSEED/DEVICE.csv: that method's rows of every epsilon, renamed
# METHOD@EPS, so that dccl-eval pairs them per user.
for s in $SEEDS; do
	for m in $(echo "$METHODS" | tr ',' ' '); do mkdir -p "$WORK/cmp/$m/s$s"; done
	for e in inf $EPS; do
		awk -F, -v e="$e" -v s="$s" -v o="$WORK/cmp" -v ms="$METHODS" '
		    BEGIN { n = split(ms, a, ","); for (i = 1; i <= n; i++) want[a[i]] = 1 }
		    FNR == 1 { for (k in op) close(k); split("", op)
			b = FILENAME; sub(/.*\//, "", b) }
		    $1 in want { p = o "/" $1 "/s" s "/" b; r = $0; sub(/^[^,]*,/, "", r)
			print $1 "@" e "," r >>p; op[p] = 1 }' "$WORK/eval-$s-$e"/*.csv
	done
done
for m in $(echo "$METHODS" | tr ',' ' '); do
	dirs="" rows=""
	for s in $SEEDS; do dirs="$dirs${dirs:+,}$WORK/cmp/$m/s$s"; done
	for e in $EPS; do rows="$rows${rows:+,}$m@$e"; done
	"$BIN/dccl-eval" --task ctr --seeds-dirs "$dirs" --out "$WORK/cmp/$m" \
	    --name t --baseline "$m@inf" --methods "$rows" \
	    --user-counts "$WORK/counts" >/dev/null ||
	    { echo "eval-dp.sh: dccl-eval failed for $m"; exit 1; }
	for e in inf $EPS; do
		c=$WORK/cmp/$m/t.csv r=$m@$e
		if [ "$e" = inf ]; then z="- -"; else z=$(noise "$e" | cut -d' ' -f1,2); fi
		set -- $z $(meas "$e")
		echo "device,$m,$e,$1,$2,$CLIP,$REPR_CLIP,$3,$4,$(csv_get "$c" "$r" gauc),$(csv_get "$c" "$r" gauc_std),$(csv_get "$c" "$r" d_gauc),$(csv_get "$c" "$r" d_gauc_lo),$(csv_get "$c" "$r" d_gauc_hi),$(csv_get "$c" "$r" lt_gauc),$(csv_get "$c" "$r" n_runs),$(csv_get "$c" "$r" n_users)"
	done >>"$WORK/table.csv"
done

# --- MoMoDistill: the distilled cloud model (v2), first seed --------------
echo "epsilon,patches,v1_gauc,v2_gauc,d_round,d_round_lo,d_round_hi,val_logloss,best_epoch,d_vs_off,d_vs_off_lo,d_vs_off_hi" >"$WORK/distill.csv"
if [ "$DISTILL" = 1 ]; then
	d=$WORK/cmp/distill/s$first
	mkdir -p "$d"
	# The pass on the round's model: v2, or v1 when the run kept its
	# weights and published no version (rounds.csv's "after").
	after() { echo "$WORK/r-$first-$1/pass$(sed -n 2p "$WORK/r-$first-$1/out/rounds.csv" | cut -d, -f3 | tr -d v)"; }
	for f in "$(after inf)"/*.csv; do
		b=$(basename "$f")
		for e in inf $EPS; do
			sed -n "s/^cloud,/v2@$e,/p" "$(after "$e")/$b"
		done >"$d/$b"
	done
	rows=""
	for e in $EPS; do rows="$rows${rows:+,}v2@$e"; done
	"$BIN/dccl-eval" --task ctr --seeds-dirs "$d" --out "$WORK/cmp/distill" \
	    --name t --baseline v2@inf --methods "$rows" \
	    --user-counts "$WORK/counts" >/dev/null ||
	    { echo "eval-dp.sh: dccl-eval failed for the distill round"; exit 1; }
	c=$WORK/cmp/distill/t.csv
	for e in inf $EPS; do
		r=$WORK/r-$first-$e
		# rounds.csv: round,before,after,patches,stale_used,gauc_before,
		# gauc_after,d_gauc,d_gauc_lo,d_gauc_hi,...
		rr=$(sed -n 2p "$r/out/rounds.csv" | cut -d, -f4,6-10)
		# The round's result line, "model v2 from v1: ..." or "v1 kept: ...".
		vl=$(sed -n 's/.*DISTILL: .*val logloss [0-9.]* -> \([0-9.]*\) (best epoch \([0-9]*\) of.*/\1,\2/p' "$r/cloudd.log" | head -n 1)
		echo "$e,$rr,${vl:-,},$(csv_get "$c" "v2@$e" d_gauc),$(csv_get "$c" "v2@$e" d_gauc_lo),$(csv_get "$c" "v2@$e" d_gauc_hi)" >>"$WORK/distill.csv"
		if [ "$e" = inf ]; then z="- -"; else z=$(noise "$e" | cut -d' ' -f1,2); fi
		set -- $z $(meas "$e")
		echo "distill,cloud-v2,$e,$1,$2,$CLIP,$REPR_CLIP,$3,$4,$(csv_get "$c" "v2@$e" gauc),,$(csv_get "$c" "v2@$e" d_gauc),$(csv_get "$c" "v2@$e" d_gauc_lo),$(csv_get "$c" "v2@$e" d_gauc_hi),$(csv_get "$c" "v2@$e" lt_gauc),1,$(csv_get "$c" "v2@$e" n_users)" >>"$WORK/table.csv"
	done
	cp "$WORK/distill.csv" "$OUTDIR/distill.csv"
fi
cp "$WORK/table.csv" "$OUTDIR/table.csv"

# --- Markdown ---------------------------------------------------------------
# Query vectors have 3 * train.dim floats (ctr_repr_dim).
RDIM=$("$BIN/cloudd" ${CLOUDD_OPTS:-} -p 2>/dev/null |
    sed -n 's/^train\.dim *= *\([0-9][0-9]*\).*/\1/p')
RDIM=$(( ${RDIM:-0} * 3 ))
{
	echo "### Differential privacy: accuracy cost ($(basename "$DATA"), $N devices)"
	echo
	echo "Target epsilon per device and round (delta = $DELTA; zCDP accountant of"
	echo "deviced/dp.c). Budget split: $SHARE of rho to the patch (1 release), the"
	echo "rest to the $Q query vectors a device sends per round. Patch clip $CLIP"
	echo "($clip_from; a patch has $PDIM floats); query-vector clip $REPR_CLIP"
	echo "(they are L2-normalised, $RDIM floats). Noise / clip is the expected"
	echo "norm of the noise over the clip norm, z sqrt(floats). Measured epsilon:"
	echo "median / max over devices and seeds of the budget each device logged"
	echo "after its first round (devices with fewer than $Q local samples send"
	echo "fewer vectors and spend less)."
	echo
	echo "| epsilon | rho | z patch | z vectors | noise / clip, patch | noise / clip, vector | measured epsilon (median / max) |"
	echo "|---|---|---|---|---|---|---|"
	for e in $EPS; do
		set -- $(noise "$e") $(meas "$e")
		awk -v e="$e" -v zp="$1" -v zv="$2" -v r="$3" -v pd="$PDIM" \
		    -v rd="$RDIM" -v md="$4" -v mx="$5" 'BEGIN {
			printf "| %s | %.4g | %s | %s | %s | %s | %s / %s |\n", e, r,
			    zp == 0 ? "off" : zp, zv == 0 ? "off" : zv,
			    (pd == "nan" || zp == 0) ? "—" : sprintf("%.1f", zp * sqrt(pd)),
			    (rd == 0 || zv == 0) ? "—" : sprintf("%.1f", zv * sqrt(rd)), md, mx }'
	done
	echo
	echo "**Device rows** (mean ± std over seeds $SEEDS; Δ = paired per-user"
	echo "bootstrap 95% interval against the same method without DP, same seed;"
	echo "★ = excludes 0). DP changes these rows only through the noised query"
	echo "vectors (retrieval); the device serves its own noise-free patch."
	echo
	echo "| method | epsilon | GAUC | ΔGAUC vs no DP [95% CI] | long-tail GAUC |"
	echo "|---|---|---|---|---|"
	awk -F, '$1 == "device" {
		d = $3 == "inf" ? "—" : sprintf("%+.4f [%+.4f, %+.4f]%s", $12, $13, $14,
		    ($13 > 0 || $14 < 0) ? " ★" : "")
		sd = $11 == "" ? "" : sprintf(" ± %.4f", $11)
		printf "| %s | %s | %.4f%s | %s | %.4f |\n", $2, $3 == "inf" ? "∞ (off)" : $3, $10, sd, d, $15
	}' "$WORK/table.csv"
	if [ "$DISTILL" = 1 ]; then
		echo
		echo "**MoMoDistill round** (seed $first): the cloud model v2 distilled from"
		echo "the devices' patches on v1, scored on every device's test samples."
		echo "Round gain = v2 − v1 (paired interval); vs no DP = this v2 against the"
		echo "v2 distilled from noise-free patches. Best epoch 0 means validation kept"
		echo "v1's weights: no v2 was published, and the row's v2 is v1."
		echo
		echo "| epsilon | patches | GAUC v1 → v2 | round gain [95% CI] | v2 vs no DP [95% CI] | distill val logloss (best epoch) |"
		echo "|---|---|---|---|---|---|"
		awk -F, 'NR == 1 { next } {
			star = ($6 > 0 || $7 < 0) ? " ★" : ""
			vs = $1 == "inf" ? "—" : sprintf("%+.4f [%+.4f, %+.4f]%s", $10, $11, $12,
			    ($11 > 0 || $12 < 0) ? " ★" : "")
			printf "| %s | %s | %.4f → %.4f | %+.4f [%+.4f, %+.4f]%s | %s | %s (%s) |\n",
			    $1 == "inf" ? "∞ (off)" : $1, $2, $3, $4, $5, $6, $7, star, vs, $8, $9 }' "$WORK/distill.csv"
	fi
} >"$OUTDIR/table.md"
cat "$OUTDIR/table.md"
echo
echo "eval-dp: $(elapsed) s on $(nproc) cores; $OUTDIR/table.md, table.csv"
