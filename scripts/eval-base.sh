#!/bin/sh
# eval-base.sh [DATA]: what each base-model option buys the cloud model
# (`make eval-base`). For each task (ctr, ranking: as in eval.sh, 20 % cold
# users) and seed, the data are split with that seed and bin/dccl-base
# trains the cloud model once per variant with cloudd's train.* defaults
# and scores the devices' local slices (validation) and test slices.
# Selection, on validation only: per task, the variant with the highest
# warm-user GAUC pooled over the seeds on the local slices; the test table
# then shows every variant against base with paired per-user bootstrap
# intervals (warm and cold users), and the line "chosen on validation".
# The default line names the variant with the largest mean validation
# GAUC gain over the tasks (base unless some gain is above 0): the one
# cloudd's train.* defaults should carry.
# DATA defaults to ../shared/data/ml-latest-small; SEEDS ("1 2 3"),
# TASKS ("ctr ranking"), VARIANTS (base,fm,side,side+fm,side+fm+att,
# side+fm+lr3e-3,side+fm+lrgrid: base is the model before issue 16, no
# side fields, no interaction, Adam 1e-3; side+fm+lrgrid is cloudd's
# default; dccl-base's header lists the tokens, e.g. wd1, d32, b64),
# EVAL_BASE_OUT (out/base). Output: OUT/base.md, OUT/<task>-{val,test-warm,test-cold}.md/csv.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DCCL_BIN:-$ROOT/bin}
DATA=${1:-$ROOT/../shared/data/ml-latest-small}
OUT=${EVAL_BASE_OUT:-$ROOT/out/base}
SEEDS=${SEEDS:-1 2 3}
TASKS=${TASKS:-ctr ranking}
VARIANTS=${VARIANTS:-base,fm,side,side+fm,side+fm+att,side+fm+lr3e-3,side+fm+lrgrid}
export OPENBLAS_NUM_THREADS=1
t0=$(date +%s)
mkdir -p "$OUT"
: >"$OUT/selection"
: >"$OUT/val-gains.csv"
others=$(echo "$VARIANTS" | tr ',' '\n' | grep -vx base | paste -sd, -)

# csv_get FILE METHOD COLUMN: one metric of a dccl-eval CSV row
csv_get() {
	awk -F, -v m="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	    $1 == m { print $(col[c]) }' "$1"
}

{
echo "## Base-model options: the cloud model alone"
echo
echo "Cloud model trained with cloudd's defaults and each option set"
echo "(bin/dccl-base), scored on the devices' test slices; seeds: $SEEDS."
echo "Δ = paired per-user bootstrap 95 % interval against base, * = excludes 0."
echo "Variants: inter = field dots as MLP inputs, fm = the same plus a"
echo "weighted FM term in the logit, att = target attention over the behaviour,"
echo "side = the data's side fields, lrX = Adam's rate (else 1e-3), lrgrid ="
echo "cloudd's train.lr-grid (the rate of best pool-validation GAUC kept)."
} >"$OUT/base.md"

for task in $TASKS; do
	vd="" td="" colds=""
	for s in $SEEDS; do
		d=$OUT/$task/seed$s
		mkdir -p "$d"
		if [ "$task" = ranking ]; then
			"$BIN/dccl-data" split "$DATA" "$d/split" --task ranking \
			    --negatives 99 --rank-positives 3 --cold 0.2 --seed "$s" >/dev/null
		else
			"$BIN/dccl-data" split "$DATA" "$d/split" --cold 0.2 --seed "$s" >/dev/null
		fi
		nice -n 5 "$BIN/dccl-base" "$d/split" "$d" --seed "$s" \
		    --variants "$VARIANTS" >"$d.log" 2>&1 || { tail "$d.log"; exit 1; }
		echo "eval-base: $task seed $s done ($(( $(date +%s) - t0 )) s)"
		vd="$vd${vd:+,}$d/val" td="$td${td:+,}$d/test"
		colds="$colds${colds:+,}$d/split/cold.csv"
	done
	kind=ctr
	[ "$task" = ranking ] && kind=ranking
	"$BIN/dccl-eval" --task "$kind" --seeds-dirs "$vd" --out "$OUT" \
	    --name "$task-val" --baseline base --methods "$others" \
	    --cold-users "$colds" --users warm >/dev/null
	# the variant with the highest validation GAUC (base on ties)
	pick=base best=$(csv_get "$OUT/$task-val.csv" base gauc)
	for v in $(echo "$others" | tr ',' ' '); do
		g=$(csv_get "$OUT/$task-val.csv" "$v" gauc)
		if awk -v a="$g" -v b="$best" 'BEGIN { exit !(a + 0 > b + 0) }'; then
			pick=$v best=$g
		fi
	done
	for g in warm cold; do
		"$BIN/dccl-eval" --task "$kind" --seeds-dirs "$td" --out "$OUT" \
		    --name "$task-test-$g" --baseline base --methods "$others" \
		    --cold-users "$colds" --users "$g" >/dev/null
	done
	{
	echo
	echo "### $task"
	echo
	echo "Chosen on validation (devices' local slices, warm users): $pick"
	echo "(GAUC $best; base $(csv_get "$OUT/$task-val.csv" base gauc))."
	echo
	echo "Validation, warm users:"
	echo
	sed -n '/^|/p' "$OUT/$task-val.md"
	echo
	echo "Test, warm users:"
	echo
	sed -n '/^|/p' "$OUT/$task-test-warm.md"
	echo
	echo "Test, cold users (none of their samples in the pool):"
	echo
	sed -n '/^|/p' "$OUT/$task-test-cold.md"
	echo
	echo "Training (seed, variant, params, epochs, best epoch, pool-val logloss, pool-val GAUC, learning rate kept, s, samples/s):"
	echo
	for s in $SEEDS; do
		tail -n +2 "$OUT/$task/seed$s/variants.csv" | sed "s/^/- $s,/"
	done
	} >>"$OUT/base.md"
	echo "$task: chosen on validation: $pick" >>"$OUT/selection"
	for v in $(echo "$others" | tr ',' ' '); do
		echo "$v,$(csv_get "$OUT/$task-val.csv" "$v" d_gauc)"
	done >>"$OUT/val-gains.csv"
done
# The default for cloudd: the variant with the largest mean validation
# GAUC gain over the tasks, if that mean is above 0 (else base).
awk -F, '{ s[$1] += $2; n[$1]++ }
    END { best = "base"; bv = 0
	for (v in s) if (s[v] / n[v] > bv) { bv = s[v] / n[v]; best = v }
	printf "default (largest mean validation ΔGAUC over the tasks): %s (%+.4f)\n", best, bv }' \
    "$OUT/val-gains.csv" >>"$OUT/selection"
{ echo; sed 's/^/- /' "$OUT/selection"; } >>"$OUT/base.md"
cat "$OUT/base.md"
echo
echo "eval-base: $(( $(date +%s) - t0 )) s; $OUT/base.md"
