#!/bin/sh
# sweep-synth.sh [OUTDIR]: where does each device method do what its paper
# claims? A fractional grid over the synthetic drift task, through the real
# daemons (scripts/simulate.sh), one dccl-eval table per setting, and one
# summary: rows = settings, columns = ΔGAUC vs cloud [95 % CI] of naive-ft,
# ft-guard, ft-lc, ft-lcoff, ft-coda, metapatch, the served default
# (ft-lcoffm-pair3-fb) and the MetaPatch preset (mp-fb), plus "users
# worse" of naive-ft, ft-guard and the served default. Writes OUTDIR (default out/sweep): summary.md, summary.csv,
# tables/<setting>.{md,csv}; appends OUTDIR/findings.md to summary.md if it
# exists. A setting whose table exists is not rerun (SWEEP_FORCE=1 reruns).
#
# Factors (SWEEP_SEEDS vary the data, the cloud and the device training;
# settings with the same drift, size and seed share one data set):
#   drift  none   --drift 0 --drift-std 0
#          bias1  per-user bias drift, mean 1.0 logit, std 0.5
#          bias2  per-user bias drift, mean 2.0 logit, std 0.5
#          taste  --taste-drift 0.5 (half the users switch taste cluster),
#                 no bias drift
#          (drift acts on the local and test shares, not on the pool)
#   size   tiny  20-40 samples per user in all  (local ~3-6)
#          few   60-100                          (local ~9-15, like ML)
#          more  400-600                         (local ~60-90)
#   ft     learn.ft-lr / learn.ft-steps of the fine-tuning rows
#          (naive-ft takes exactly that setting; the guarded rows choose
#          from the grid around it by cross-validation on local data,
#          deviced/README.md)
# metapatch uses learn.lr / learn.steps (defaults), so its column only
# moves with the data.
# Env: SWEEP_SEEDS ("1 2"), SWEEP_USERS (400), SWEEP_COLD (share of cold
# users, never in the pool: 0; when > 0 every table is over the cold
# users alone), SWEEP_GRID (a file of "name drift size lr
# steps" lines replacing the built-in grid). ★ = significant after Holm
# over the setting's table (dccl-eval).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DCCL_BIN:-$ROOT/bin}
OUTDIR=${1:-$ROOT/out/sweep}
SEEDS=${SWEEP_SEEDS:-1 2}
USERS=${SWEEP_USERS:-400}
COLD=${SWEEP_COLD:-0}
METHODS=cloud,naive-ft,ft-guard,ft-lc,ft-lcoff,ft-coda,metapatch,ft-lcoffm-pair3-fb,mp-fb
export OPENBLAS_NUM_THREADS=1
mkdir -p "$OUTDIR/tables"
WORK=$(mktemp -d /tmp/dccl-sweep.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM
t0=$(date +%s)

# name drift size ft-lr ft-steps
grid() {
	if [ -n "${SWEEP_GRID:-}" ]; then cat "$SWEEP_GRID"; return; fi
	cat <<'EOF'
none-few-lr1e-3      none  few  0.001 20
none-few-lr1e-2      none  few  0.01 20
none-few-lr1e-1      none  few  0.1 20
none-few-lr1e-2x5    none  few  0.01 100
bias1-few-lr1e-3     bias1 few  0.001 20
bias1-few-lr1e-2     bias1 few  0.01 20
bias1-few-lr1e-1     bias1 few  0.1 20
bias2-few-lr1e-3     bias2 few  0.001 20
bias2-few-lr1e-2     bias2 few  0.01 20
bias2-few-lr1e-1     bias2 few  0.1 20
bias2-few-lr1e-2x5   bias2 few  0.01 100
taste-few-lr1e-3     taste few  0.001 20
taste-few-lr1e-2     taste few  0.01 20
taste-few-lr1e-1     taste few  0.1 20
taste-few-lr1e-2x5   taste few  0.01 100
bias2-tiny-lr1e-2    bias2 tiny 0.01 20
bias2-tiny-lr1e-1    bias2 tiny 0.1 20
taste-tiny-lr1e-2    taste tiny 0.01 20
none-more-lr1e-2     none  more 0.01 20
none-more-lr1e-1     none  more 0.1 20
bias2-more-lr1e-2    bias2 more 0.01 20
bias2-more-lr1e-1    bias2 more 0.1 20
taste-more-lr1e-2    taste more 0.01 20
taste-more-lr1e-1    taste more 0.1 20
EOF
}

data_opts() {	# drift size
	case $1 in
	none)  d="--drift 0 --drift-std 0" ;;
	bias1) d="--drift 1 --drift-std 0.5" ;;
	bias2) d="--drift 2 --drift-std 0.5" ;;
	taste) d="--drift 0 --drift-std 0 --taste-drift 0.5" ;;
	*) echo "sweep-synth.sh: unknown drift $1" >&2; exit 1 ;;
	esac
	case $2 in
	tiny) s="--min-per-user 20 --max-per-user 40" ;;
	few)  s="--min-per-user 60 --max-per-user 100" ;;
	more) s="--min-per-user 400 --max-per-user 600" ;;
	*) echo "sweep-synth.sh: unknown size $2" >&2; exit 1 ;;
	esac
	echo "$d $s"
}

nset=$(grid | grep -c .)
echo "sweep: $nset settings x seeds ($SEEDS), $USERS users; out $OUTDIR"
k=0
grid | while read -r name drift size lr ep; do
	[ -n "$name" ] || continue
	k=$((k + 1))
	tab=$OUTDIR/tables/$name
	if [ -f "$tab.csv" ] && [ -z "${SWEEP_FORCE:-}" ]; then
		echo "[$k/$nset] $name: kept (table exists)"
		continue
	fi
	ts=$(date +%s)
	dirs="" first="" colds=""
	for s in $SEEDS; do
		data=$WORK/data-$drift-$size-$s
		if [ ! -d "$data" ]; then
			# shellcheck disable=SC2046
			"$BIN/dccl-data" synth "$data" --users "$USERS" \
			    --seed "$s" --cold "$COLD" \
			    $(data_opts "$drift" "$size") >/dev/null
			"$BIN/dccl-data" stats "$data" | awk '/mean \|r_u/ {
			    sub(/^ */, ""); print }' >"$data/drift.txt"
		fi
		[ -n "$first" ] || first=$data
		colds="$colds${colds:+,}$data/cold.csv"
		run=$WORK/run-$name-$s
		mkdir -p "$run/eval"
		OUT=$run CLOUDD_OPTS="-o train.seed=$s" \
		    DEVICED_OPTS="-o learn.seed=$s -o learn.ft-lr=$lr \
		    -o learn.ft-steps=$ep -o deviced.eval-dir=$run/eval \
		    -o deviced.eval-methods=$METHODS" \
		    sh "$ROOT/scripts/simulate.sh" "$USERS" "$data" >"$run.log" 2>&1 || {
			echo "run $name seed $s failed:"; tail -20 "$run.log"
			cp "$run.log" "$OUTDIR/$name-$s.failed.log"; exit 1; }
		dirs="$dirs${dirs:+,}$run/eval"
	done
	sel=""
	[ "$COLD" = 0 ] || sel="--cold-users $colds --users cold"
	# shellcheck disable=SC2086 # sel is a list of options
	"$BIN/dccl-eval" --task ctr --seeds-dirs "$dirs" --out "$OUTDIR/tables" \
	    --name "$name" --methods "$METHODS" $sel >/dev/null
	printf '%s\n' "$drift $size $lr $ep $(cat "$first/drift.txt")" >"$tab.setting"
	rm -rf "$WORK"/run-"$name"-*
	echo "[$k/$nset] $name: $(( $(date +%s) - ts )) s"
	: >"$WORK/ran"
done
[ -f "$WORK/ran" ] && echo "$(( $(date +%s) - t0 )) s on $(nproc) cores ($(date -u +%Y-%m-%dT%H:%MZ))" \
    >"$OUTDIR/sweep-time.txt"

# summary: one row per setting, in grid order
{
	echo "# Synthetic drift sweep: device methods against the cloud model"
	echo
	echo "$USERS users per setting, seeds $SEEDS (cloud and device training;"
	echo "one data set per drift x size); cold users (never in the pool): $COLD"
	[ "$COLD" = 0 ] || echo "of them, and every figure is over the cold users alone."
	echo "One data set per drift x size. ΔGAUC = method − cloud, paired"
	echo "per-user bootstrap 95 % interval; ★ = significant after Holm over the"
	echo "setting's table. \"worse\" ="
	echo "share of users whose test AUC is below the cloud model's. lr/ep ="
	echo "learn.ft-lr / learn.ft-steps of the fine-tuning rows (metapatch"
	echo "uses learn.lr and learn.steps throughout). |r_u−r_g| = mean"
	echo "per-user local CTR drift. Per-setting tables: tables/."
	echo
	echo "| setting | drift | size | lr | ep | \|r_u−r_g\| | cloud GAUC | naive-ft | worse | ft-guard | worse | ft-lc | ft-lcoff | ft-coda | metapatch | served default | worse | mp-fb |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} >"$OUTDIR/summary.md"
echo "setting,drift,size,ft_lr,ft_epochs,mean_abs_ru_rg,method,gauc,d_gauc,lo,hi,users_worse,adopted" \
    >"$OUTDIR/summary.csv"
grid | while read -r name drift size lr ep; do
	[ -n "$name" ] && [ -f "$OUTDIR/tables/$name.csv" ] || continue
	dr=$(sed -n 's/.*|r_u - r_g| \([0-9.]*\).*/\1/p' "$OUTDIR/tables/$name.setting" | head -1)
	awk -F, -v name="$name" -v drift="$drift" -v size="$size" -v lr="$lr" \
	    -v ep="$ep" -v dr="$dr" -v csv="$OUTDIR/summary.csv" '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	{ m = $1; g[m] = $col["gauc"]; d[m] = $col["d_gauc"]; lo[m] = $col["d_gauc_lo"]
	  hi[m] = $col["d_gauc_hi"]; w[m] = $col["users_worse"]; ad[m] = $col["adopted"]
	  ph[m] = $col["d_gauc_p_holm"]
	  printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", name, drift, size, lr, ep,
	      dr, m, g[m], d[m], lo[m], hi[m], w[m], ad[m] >>csv }
	function cell(m) {
		if (d[m] == "") return "—"
		return sprintf("%+.4f [%+.4f, %+.4f]%s", d[m], lo[m], hi[m],
		    (ph[m] != "" && ph[m] < 0.05) ? " ★" : "")
	}
	function pct(m) { return w[m] == "" ? "—" : sprintf("%.1f %%", 100 * w[m]) }
	END {
		printf "| %s | %s | %s | %s | %s | %s | %.4f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
		    name, drift, size, lr, ep, dr, g["cloud"], cell("naive-ft"),
		    pct("naive-ft"), cell("ft-guard"), pct("ft-guard"), cell("ft-lc"),
		    cell("ft-lcoff"), cell("ft-coda"), cell("metapatch"),
		    cell("ft-lcoffm-pair3-fb"), pct("ft-lcoffm-pair3-fb"), cell("mp-fb")
	}' "$OUTDIR/tables/$name.csv" >>"$OUTDIR/summary.md"
done
{
	echo
	echo "Sweep time (last run that trained anything): $(cat "$OUTDIR/sweep-time.txt" 2>/dev/null || echo unknown)."
	if [ -f "$OUTDIR/findings.md" ]; then echo; cat "$OUTDIR/findings.md"; fi
} >>"$OUTDIR/summary.md"
cat "$OUTDIR/summary.md"
