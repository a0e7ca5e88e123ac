#!/bin/sh
# eval-cloud.sh [DATA]: the cloud-side evaluation (`make eval-cloud`).
# MoMoDistill against its controls on a rolling time split, three seeds,
# on DATA (default ../shared/data/ml-latest-small) and on a synthetic
# drift set (943 users; the drift starts at the devices' slices), with
# bin/dccl-distill (scripts/tools/dccl-distill.c says what each arm is).
# Per data set and round: the choice of distill.freeze-users on the
# devices' validation slices and of the setting (freeze-users, teachers on
# the newest pool samples, centred teachers) by the pool validation rule
# (procedures, below), the test table against
# the lambda = 0 control and against self-distillation, the long tail (the
# 20 % of device users with the fewest pool samples) with its own paired
# intervals, what the adopted patches teach (from the logs), the teachers
# themselves scored on the next slice (arm teachers; teachers-cv and
# distill-cv: only patches that also pass one forward-chaining fold
# earlier), and a plot
# of GAUC by round. Then Forward-OFA against its own static backbone and
# against the CTR model (bin/dccl-ofa on a `dccl-data split` of DATA,
# three seeds, each backbone width of OFA_WIDTHS, the width tabulated
# chosen by the static backbone's validation logloss; with the behaviour
# controller and the DUET-style
# generator): GAUC and FLOPs per prediction of every budget, with z per
# device and per impression, the structures chosen, pooled over the seeds
# by bin/dccl-eval, and GAUC against FLOPs as a table, a text plot and an
# SVG. Output: OUTDIR (default out/cloud) cloud.md,
# <set>-*.md/csv, ofa.md/csv, cloud.svg, ofa.svg.
# SEEDS (default "1 2 3"), SYNTH_USERS (943; 0 = skip the synthetic set),
# EVAL_CLOUD_OUT = OUTDIR; EVAL_CLOUD_REUSE=1 tabulates the runs already
# in OUTDIR instead of running them again.
# Then DCCL's auxiliary encoder distilled from the device models against
# the encoder cloudd trains on the pool, for cold users (dccl-distill
# --cold 0.2, arms enc-pool and enc-dev), with deviced's guard and with
# every patch of positive cross-validated gain teaching.
# EVAL_CLOUD_PARTS ("distill encoder ofa") picks the parts; OFA_ARGS are the
# dccl-ofa options (where the OFA models learn, their learning rates).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DCCL_BIN:-$ROOT/bin}
DATA=${1:-$ROOT/../shared/data/ml-latest-small}
OUT=${EVAL_CLOUD_OUT:-$ROOT/out/cloud}
SEEDS=${SEEDS:-1 2 3}
SYNTH_USERS=${SYNTH_USERS:-943}
# Which parts run: distill (MoMoDistill), encoder (the encoder distilled
# from the device models) and ofa (Forward-OFA).
PARTS=${EVAL_CLOUD_PARTS:-distill encoder ofa}
case " $PARTS " in *" distill "*) do_distill=1 ;; *) do_distill=0 ;; esac
case " $PARTS " in *" encoder "*) do_enc=1 ;; *) do_enc=0 ;; esac
case " $PARTS " in *" ofa "*) do_ofa=1 ;; *) do_ofa=0 ;; esac
# How the OFA models learn: from the older half of each user's pool
# validation slice, on which the CTR model did not train, stopping on its
# newest half, with the learning rate of the lowest logloss there
# (dccl-ofa --res-val, --lr-grid).
OFA_ARGS=${OFA_ARGS:---res-val 0.5 --lr-grid 3e-3,1e-3,3e-4}
# The backbone widths the OFA part chooses among (below).
OFA_WIDTHS=${OFA_WIDTHS:-32 64 128}
# DISTILL_ARGS: more dccl-distill options (e.g. --no-prior, --arms).
DISTILL_ARGS=${DISTILL_ARGS:-}
export OPENBLAS_NUM_THREADS=1
t0=$(date +%s)
mkdir -p "$OUT"
ARMS=v1,self,distill,distill-frz,lam0-fix,self-fix,distill-fix,distill-frz-fix,conv-v1,conv-lam0,conv-distill,self-rec,distill-rec,distill-frz-rec,distill-ctr,distill-frz-ctr,distill-ctr-rec,teachers,distill-cv,teachers-cv,distill-2step,self-2step,lam0-2step,distill-uv,lam0-uv
# The MoMoDistill settings the validation rule chooses among (freeze-users,
# recent, center).
CANDS=distill,distill-frz,distill-rec,distill-frz-rec,distill-ctr,distill-frz-ctr,distill-ctr-rec,distill-2step,distill-uv

# Metric of a method row in a dccl-eval CSV: csv_get FILE METHOD COLUMN.
csv_get() {
	awk -F, -v m="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	    $1 == m { print $(col[c]) }' "$1"
}

# dirs SET WHAT ROUND: the seeds' prediction directories, comma-separated.
dirs() {
	d=""
	for s in $SEEDS; do d="$d${d:+,}$OUT/$1/seed$s/$2/r$3"; done
	echo "$d"
}

if [ "$do_distill" = 1 ]; then
sets="ml"
[ "$SYNTH_USERS" -gt 0 ] && sets="ml synth"
{
echo "## Cloud-side learning: MoMoDistill with controls"
echo
echo "Rolling time split 0.7 / 0.1 / 0.1 / 0.1: the pool (cloud) holds each"
echo "user's first 70 %; in round r every device holds slice S_r, trains its"
echo "MetaPatch on S_r and the cloud distils; the new cloud model is scored on"
echo "S_{r+1}. Seeds: $SEEDS (model init and shuffling; the data are fixed)."
echo "Δ = paired per-user bootstrap 95 % interval, * = excludes 0."
} >"$OUT/cloud.md"

for set in $sets; do
	for s in $SEEDS; do
		[ "${EVAL_CLOUD_REUSE:-0}" = 1 ] && [ -f "$OUT/$set/seed$s/test/r2/preds.csv" ] && continue
		if [ "$set" = ml ]; then
			"$BIN/dccl-distill" "$DATA" "$OUT/$set/seed$s" --seed "$s" \
			    $DISTILL_ARGS 2>"$OUT/$set-seed$s.log" || { tail "$OUT/$set-seed$s.log"; exit 1; }
		else
			"$BIN/dccl-distill" synth "$OUT/$set/seed$s" --seed "$s" \
			    --synth "$SYNTH_USERS" $DISTILL_ARGS 2>"$OUT/$set-seed$s.log" ||
			    { tail "$OUT/$set-seed$s.log"; exit 1; }
		fi
		echo "eval-cloud: $set seed $s done ($(( $(date +%s) - t0 )) s)"
	done
	first=$(echo $SEEDS | cut -d' ' -f1)
	counts=$OUT/$set/seed$first/counts
	nrounds=$(ls -d "$OUT/$set/seed$first/test"/r* | wc -l)
	# The long tail: the 20 % of devices with the fewest pool samples.
	n=$(wc -l <"$counts")
	sort -t, -k2,2n -k1,1n "$counts" | head -n $((n / 5)) | cut -d, -f1 >"$OUT/$set-tail"
	name=ml-latest-small
	[ "$set" = synth ] && name="synthetic drift ($SYNTH_USERS users)"
	{
	echo
	echo "### $name"
	echo
	echo "Per-seed logs: $set-seed*.log. v1 and its converged twin:"
	grep -h "v1 (patience" "$OUT"/$set-seed*.log | sed 's/^dccl-distill: /- /'
	echo
	echo "What the adopted patches teach (arm distill, per seed and round):"
	echo "their count, how far the patched m rows are from the cloud's own, and"
	echo "on those users' pool samples (what distillation trains on) the mean"
	echo "|p_teacher - p_cloud| next to the cloud's own error |y - p_cloud|, and"
	echo "the logloss of teacher and cloud on those samples:"
	echo
	for s in $SEEDS; do
		grep -h "round [0-9]* distill  *patch gap" "$OUT/$set-seed$s.log" |
		    sed "s/^dccl-distill: /- seed $s: /; s/  */ /g"
	done
	} >>"$OUT/cloud.md"
	r=1
	while [ $r -le "$nrounds" ]; do
		# Selection on validation (round 1 decides): freeze the
		# student's per-user rows iff distill-frz beats distill in GAUC
		# on the devices' validation slices, pooled over the seeds.
		"$BIN/dccl-eval" --task ctr --seeds-dirs "$(dirs $set val $r)" \
		    --out "$OUT" --name "$set-val-r$r" --baseline distill \
		    --methods distill-frz,lam0,self --user-counts "$counts" >/dev/null
		dv=$(csv_get "$OUT/$set-val-r$r.csv" distill-frz d_gauc)
		if [ $r = 1 ]; then
			pick=$(awk -v d="$dv" 'BEGIN { print (d + 0 > 0) ? "yes" : "no" }')
			echo "$set: distill.freeze-users chosen on the devices' validation slices: $pick (ΔGAUC frozen - unfrozen $dv)" >"$OUT/$set-selection"
			# The code's own rule on the pool's validation split:
			# the setting with the lowest pool validation logloss
			# after round 1 (arms.csv val_after), mean of seeds.
			for s in $SEEDS; do cat "$OUT/$set/seed$s/arms.csv"; done |
			    awk -F, -v c="$CANDS" 'BEGIN { n = split(c, a, ","); for (i = 1; i <= n; i++) want[a[i]] = i }
			    $1 == 1 && ($2 in want) { v[$2] += $6; k[$2]++ }
			    END { for (m in v) printf "%s %.5f\n", m, v[m] / k[m] }' | sort -k2,2n >"$OUT/$set-poolval"
			echo "$set: setting chosen on the pool's validation split (lowest validation logloss after round 1, mean of seeds): $(head -1 "$OUT/$set-poolval" | cut -d' ' -f1); all: $(tr '\n' ';' <"$OUT/$set-poolval")" >>"$OUT/$set-selection"
		fi
		"$BIN/dccl-eval" --task ctr --seeds-dirs "$(dirs $set test $r)" \
		    --out "$OUT" --name "$set-r$r-vs-lam0" --baseline lam0 \
		    --methods "$ARMS" --user-counts "$counts" >/dev/null
		"$BIN/dccl-eval" --task ctr --seeds-dirs "$(dirs $set test $r)" \
		    --out "$OUT" --name "$set-r$r-vs-self" --baseline self \
		    --methods distill,distill-frz,distill-ctr,distill-frz-ctr,distill-cv \
		    --user-counts "$counts" >/dev/null
		"$BIN/dccl-eval" --task ctr --seeds-dirs "$(dirs $set test $r)" \
		    --out "$OUT" --name "$set-r$r-vs-selfrec" --baseline self-rec \
		    --methods distill-rec,distill-frz-rec,distill-ctr-rec \
		    --user-counts "$counts" >/dev/null
		# DCCL's second step (U, V from the teachers) and its controls.
		"$BIN/dccl-eval" --task ctr --seeds-dirs "$(dirs $set test $r)" \
		    --out "$OUT" --name "$set-r$r-2step" --baseline lam0-2step \
		    --methods distill-2step,self-2step --user-counts "$counts" >/dev/null
		"$BIN/dccl-eval" --task ctr --seeds-dirs "$(dirs $set test $r)" \
		    --out "$OUT" --name "$set-r$r-step2" --baseline distill \
		    --methods distill-2step --user-counts "$counts" >/dev/null
		"$BIN/dccl-eval" --task ctr --seeds-dirs "$(dirs $set test $r)" \
		    --out "$OUT" --name "$set-r$r-uv" --baseline lam0-uv \
		    --methods distill-uv --user-counts "$counts" >/dev/null
		"$BIN/dccl-eval" --task ctr --seeds-dirs "$(dirs $set test $r)" \
		    --out "$OUT" --name "$set-r$r-vs-fix" --baseline lam0-fix \
		    --methods self-fix,distill-fix,distill-frz-fix --user-counts "$counts" >/dev/null
		# The long tail alone, for its own intervals.
		td=""
		for s in $SEEDS; do
			d=$OUT/$set/tail$s/r$r
			mkdir -p "$d"
			awk -F, 'NR == FNR { t[$1] = 1; next } ($2 in t)' "$OUT/$set-tail" \
			    "$OUT/$set/seed$s/test/r$r/preds.csv" >"$d/preds.csv"
			td="$td${td:+,}$d"
		done
		"$BIN/dccl-eval" --task ctr --seeds-dirs "$td" --out "$OUT" \
		    --name "$set-r$r-tail" --baseline lam0 --methods "$ARMS" >/dev/null
		{
		echo
		echo "#### Round $r: cloud model after round $r, tested on S_$((r + 1))"
		echo
		echo "Against the λ = 0 control (the same distillation epochs and early stopping):"
		echo
		sed -n '/^|/p' "$OUT/$set-r$r-vs-lam0.md"
		echo
		echo "Against self-distillation (the same soft copies, teachers without patches):"
		echo
		sed -n '/^|/p' "$OUT/$set-r$r-vs-self.md" | grep "^| \(self\|distill\|distill-frz\|distill-ctr\|distill-frz-ctr\|distill-cv\|method\) \|^|---"
		echo
		echo "Teachers on the newest pool samples only (*-rec), against self-distillation on the same samples:"
		echo
		sed -n '/^|/p' "$OUT/$set-r$r-vs-selfrec.md" | grep "^| \(self-rec\|distill-rec\|distill-frz-rec\|distill-ctr-rec\|method\) \|^|---"
		echo
		echo "DCCL's second step (the teachers distilled into U and V alone, after the whole-model fit), against the same two steps with λ = 0:"
		echo
		sed -n '/^|/p' "$OUT/$set-r$r-2step.md" | grep "^| \(lam0-2step\|self-2step\|distill-2step\|method\) \|^|---"
		echo
		echo "What the second step adds to MoMoDistill (distill-2step against distill):"
		echo
		sed -n '/^|/p' "$OUT/$set-r$r-step2.md" | grep "^| \(distill\|distill-2step\|method\) \|^|---"
		echo
		echo "The second step alone (U and V only, from v1), against λ = 0 under it:"
		echo
		sed -n '/^|/p' "$OUT/$set-r$r-uv.md" | grep "^| \(lam0-uv\|distill-uv\|method\) \|^|---"
		echo
		echo "Without the validation rule (the last of 3 epochs), against λ = 0 under the same rule:"
		echo
		sed -n '/^|/p' "$OUT/$set-r$r-vs-fix.md" | grep "^| \(lam0-fix\|self-fix\|distill-fix\|distill-frz-fix\|method\) \|^|---"
		echo
		echo "Long tail only ($(wc -l <"$OUT/$set-tail") users with the fewest pool samples), against λ = 0:"
		echo
		sed -n '/^|/p' "$OUT/$set-r$r-tail.md"
		} >>"$OUT/cloud.md"
		r=$((r + 1))
	done
	{ echo; cat "$OUT/$set-selection"; } >>"$OUT/cloud.md"
	# What cloudd would ship: a run with best epoch 0 keeps the model,
	# and one whose validation gain is below distill.accept-z (2)
	# clustered standard errors too (arms.csv val_gain, val_gain_se).
	{
	echo
	echo "Would cloudd publish it? Per distilled arm, the seeds × rounds whose run"
	echo "cloudd would publish (best epoch ≥ 1 and validation gain − 2 clustered"
	echo "standard errors > 0; distill.accept-z), and the mean gain / se over the"
	echo "runs with best epoch ≥ 1:"
	echo
	echo "| arm | runs | best epoch ≥ 1 | would publish | mean t = gain / se |"
	echo "|---|---|---|---|---|"
	for s in $SEEDS; do tail -n +2 "$OUT/$set/seed$s/arms.csv"; done |
	    awk -F, -v c="$CANDS,self,lam0" 'BEGIN { n = split(c, a, ","); for (i = 1; i <= n; i++) { want[a[i]] = 1; ord[i] = a[i] } }
	    ($2 in want) { runs[$2]++; if ($7 > 0) { b[$2]++; if ($9 - 2 * $10 > 0) pub[$2]++; if ($10 > 0) { t[$2] += $9 / $10; k[$2]++ } } }
	    END { for (i = 1; i <= n; i++) { m = ord[i]; if (!(m in runs)) continue
		printf "| %s | %d | %d | %d | %s |\n", m, runs[m], b[m] + 0, pub[m] + 0, k[m] ? sprintf("%.2f", t[m] / k[m]) : "—" } }'
	} >>"$OUT/cloud.md"
done

else
	echo "## Cloud-side learning (EVAL_CLOUD_PARTS=$PARTS)" >"$OUT/cloud.md"
fi

# ---- The auxiliary encoder distilled from the device models ----
if [ "$do_enc" = 1 ]; then
esets="ml"
[ "$SYNTH_USERS" -gt 0 ] && esets="ml synth"
{
echo
echo "## DCCL's auxiliary encoder distilled from the device models (cold users)"
echo
echo "dccl-distill --cold 0.2: a seeded fifth of the device users never reach"
echo "the pool, so v1 has no trained rows for them. In round r every device runs"
echo "deviced's MetaPatch job on S_r from v1. enc-pool = v1 with each cold user's"
echo "rows from the encoder cloudd trains on the pool (enc_fit); enc-dev = the"
echo "same from the encoder regressed onto the round's adopted uploads"
echo "(shared/ml/encoder_distill.h; two cross-fitted folds of cold users, so no"
echo "cold user's own patch trained the encoder that scores it); teachers = each"
echo "device's own adopted patch. Features: the samples the device trained on"
echo "in S_r. Scored on the cold users' S_{r+1}; Δ paired per-user bootstrap,"
echo "* = the 95 % interval excludes 0. Two guards: deviced's (the uploads"
echo "cloudd gets) and 'cvpos' (learn.guard-z=0, learn.guard-rank=no: every"
echo "patch with a positive cross-validated gain teaches). Seeds: $SEEDS."
} >>"$OUT/cloud.md"
for set in $esets; do
	for g in guard cvpos; do
		gopt=""
		[ $g = cvpos ] && gopt="--device-opt learn.guard-z=0 --device-opt learn.guard-rank=no"
		colds=""
		for s in $SEEDS; do
			d=$OUT/enc-$set-$g/seed$s
			colds="$colds${colds:+,}$d/cold"
			[ "${EVAL_CLOUD_REUSE:-0}" = 1 ] && [ -f "$d/test/r2/preds.csv" ] && continue
			dat=$DATA
			sy=""
			[ "$set" = synth ] && { dat=synth; sy="--synth $SYNTH_USERS"; }
			# shellcheck disable=SC2086 # option lists
			"$BIN/dccl-distill" "$dat" "$d" --seed "$s" $sy --cold 0.2 \
			    --arms v1,teachers,enc-pool,enc-dev $gopt \
			    2>"$OUT/enc-$set-$g-seed$s.log" || { tail "$OUT/enc-$set-$g-seed$s.log"; exit 1; }
		done
		echo "eval-cloud: encoder $set $g done ($(( $(date +%s) - t0 )) s)"
		ed=$OUT/enc-$set-$g
		first=$(echo $SEEDS | cut -d' ' -f1)
		nrounds=$(ls -d "$ed/seed$first/test"/r* | wc -l)
		{
		echo
		echo "### $set, guard: $g"
		echo
		for s in $SEEDS; do
			grep -h "enc-pool:\|enc-dev fold" "$OUT/enc-$set-$g-seed$s.log" |
			    sed "s/^dccl-distill: /- seed $s: /"
		done
		} >>"$OUT/cloud.md"
		r=1
		while [ $r -le "$nrounds" ]; do
			td=$(dirs "enc-$set-$g" test $r)
			"$BIN/dccl-eval" --task ctr --seeds-dirs "$td" --out "$OUT" \
			    --name "enc-$set-$g-r$r" --baseline v1 \
			    --methods enc-pool,enc-dev,teachers --cold-users "$colds" \
			    --users cold >/dev/null
			"$BIN/dccl-eval" --task ctr --seeds-dirs "$td" --out "$OUT" \
			    --name "enc-$set-$g-r$r-vs-pool" --baseline enc-pool \
			    --methods enc-dev --cold-users "$colds" --users cold >/dev/null
			{
			echo
			echo "Round $r, cold users' S_$((r + 1)), against v1:"
			echo
			sed -n '/^|/p' "$OUT/enc-$set-$g-r$r.md"
			echo
			echo "enc-dev against enc-pool:"
			echo
			sed -n '/^|/p' "$OUT/enc-$set-$g-r$r-vs-pool.md" | grep "^| \(enc-dev\|method\) \|^|---"
			} >>"$OUT/cloud.md"
			r=$((r + 1))
		done
	done
done
fi

# ---- Forward-OFA against its own static backbone ----
if [ "$do_ofa" != 1 ]; then
	echo "eval-cloud: $(( $(date +%s) - t0 )) s; $OUT/cloud.md, cloud.svg"
	exit 0
fi
mkdir -p "$OUT/ofa"
[ -f "$OUT/ofa/split/pool.csv" ] || "$BIN/dccl-data" split "$DATA" "$OUT/ofa/split" >/dev/null
# The backbone's width (dccl-ofa --hidden = --inner) is chosen on
# validation: each width of OFA_WIDTHS is trained for every seed, and the
# one whose static backbone has the lowest validation logloss (the
# "static backbone:" line, mean over the seeds) is tabulated. OFA and its
# backbone share the width, so their FLOPs compare like for like.
for w in $OFA_WIDTHS; do
	for s in $SEEDS; do
		d=$OUT/ofa/w$w/seed$s
		if [ "${EVAL_CLOUD_REUSE:-0}" != 1 ] || [ ! -f "$d/ofa.csv" ]; then
			mkdir -p "$d"
			# shellcheck disable=SC2086 # OFA_ARGS is a list of options
			"$BIN/dccl-ofa" "$OUT/ofa/split" --seed "$s" --preds "$d" \
			    --hidden "$w" --inner "$w" $OFA_ARGS >"$OUT/ofa-w$w-seed$s.log" 2>&1 ||
			    { tail "$OUT/ofa-w$w-seed$s.log"; exit 1; }
		fi
	done
	v=$(for s in $SEEDS; do sed -n 's/^static backbone:.*val logloss \([0-9.]*\).*/\1/p' "$OUT/ofa-w$w-seed$s.log"; done |
	    awk '{ t += $1; n++ } END { if (n) printf "%.5f", t / n }')
	[ -n "$v" ] || { echo "eval-cloud: no backbone validation for width $w"; exit 1; }
	echo "$w $v"
	echo "eval-cloud: ofa width $w done, backbone val logloss $v ($(( $(date +%s) - t0 )) s)" >&2
done | sort -k2,2n >"$OUT/ofa-widths"
OFA_W=$(head -1 "$OUT/ofa-widths" | cut -d' ' -f1)
od=""
for s in $SEEDS; do
	od="$od${od:+,}$OUT/ofa/w$OFA_W/seed$s"
	cp "$OUT/ofa-w$OFA_W-seed$s.log" "$OUT/ofa-seed$s.log"
done
OFA_METHODS=ofa-low,ofa-mid,ofa-high,ofa-imp-low,ofa-imp-mid,ofa-imp-high,bc-low,bc-mid,bc-high,bc-imp-low,bc-imp-mid,bc-imp-high,duet
"$BIN/dccl-eval" --task ctr --seeds-dirs "$od" --out "$OUT" --name ofa \
    --baseline static --methods $OFA_METHODS,cloud,cloud-full,cloud-nouser,naive-ft \
    >/dev/null
"$BIN/dccl-eval" --task ctr --seeds-dirs "$od" --out "$OUT" --name ofa-vs-cloud \
    --baseline cloud --methods static,$OFA_METHODS,cloud-full,cloud-nouser \
    >/dev/null
{
echo
echo "## Forward-OFA against its own static backbone ($(basename "$DATA"))"
echo
echo "Every OFA model takes the cloud model's input options (side fields, field"
echo "dots) and, on an FM base (cloudd's default), the CTR model's whole logit"
echo "as its base (ofa_config.ctr_base, OFA format 3): OFA = the CTR logit + its"
echo "residual, which starts at 0, so an OFA model that learns nothing is the"
echo "CTR model; FLOPs include the CTR model's forward. dccl-ofa options:"
echo "$OFA_ARGS (--res-val F: the OFA models learn from each user's older"
echo "1 - F of the pool's validation slice, which the CTR model did not train"
echo "on, and stop early on its newest F; --holdout F instead fits the CTR"
echo "model on the older training samples and OFA on the newest F of them;"
echo "cloud-full = the CTR model on every training sample, cloudd's). static = the same backbone trained alone (every block,"
echo "no controller, no mapper); ofa-C = z from the device's last behaviour,"
echo "one structure and parameter set per device for the whole test window;"
echo "ofa-imp-C = z recomputed for every impression, as in training, the"
echo "controller and the mapper run per prediction (counted in FLOPs); bc-* ="
echo "the same with the behaviour controller; duet = the DUET-style per-sample"
echo "generator (every block, z per impression); cloud-nouser = the CTR model"
echo "with its per-user MetaPatch and bias rows zeroed. Seeds: $SEEDS; Δ"
echo "against static."
echo
echo "Backbone width (hidden = inner) chosen on validation: $OFA_W, the lowest"
echo "static backbone validation logloss (mean of seeds). Every width, with the"
echo "test figures of its own backbone and cheapest OFA beside it (not used to"
echo "choose):"
echo
echo "| width | backbone val logloss | static FLOPs | ofa-low FLOPs (share) | ofa-low ΔGAUC vs static [95 % CI] |"
echo "|---|---|---|---|---|"
while read -r w v; do
	wd=""
	for s in $SEEDS; do wd="$wd${wd:+,}$OUT/ofa/w$w/seed$s"; done
	"$BIN/dccl-eval" --task ctr --seeds-dirs "$wd" --out "$OUT" --name "ofa-w$w" \
	    --baseline static --methods ofa-low >/dev/null
	awk -F, -v w="$w" -v v="$v" -v pick="$OFA_W" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	    { f[$1] = $(c["flops"]); d[$1] = $(c["d_gauc"]); lo[$1] = $(c["d_gauc_lo"]); hi[$1] = $(c["d_gauc_hi"]) }
	    END { printf "| %s%s | %s | %.0f | %.0f (%.0f %%) | %+.4f [%+.4f, %+.4f] |\n", w,
		w == pick ? " (chosen)" : "", v, f["static"], f["ofa-low"], 100 * f["ofa-low"] / f["static"],
		d["ofa-low"], lo["ofa-low"], hi["ofa-low"] }' "$OUT/ofa-w$w.csv"
done <"$OUT/ofa-widths"
echo
sed -n '/^|/p' "$OUT/ofa.md"
echo
echo "The same rows against the cloud CTR model:"
echo
sed -n '/^|/p' "$OUT/ofa-vs-cloud.md"
echo
echo "Per seed: the models' validation and the structures each controller chose"
echo "(distinct structures and the three commonest, per budget class):"
echo
for s in $SEEDS; do
	echo "- seed $s: $(grep -h '^OFA:\|^static backbone:\|^behaviour controller\|^DUET' "$OUT/ofa-seed$s.log" | tr '\n' ' ')"
	grep -h '^where OFA learns\|^  there:' "$OUT/ofa-seed$s.log" | sed 's/^ */  - /'
	grep -h '^structures' "$OUT/ofa-seed$s.log" | sed 's/^/  - /'
done
} >>"$OUT/cloud.md"
# GAUC against FLOPs (mean over seeds; FLOPs from the .extra files).
awk -F, 'FNR == 1 && FILENAME ~ /ofa.csv$/ { for (i = 1; i <= NF; i++) c[$i] = i; next }
    FILENAME ~ /ofa.csv$/ { g[$1] = $(c["gauc"]); next }
    $2 == "flops" { f[$1] += $3; nf[$1]++ }
    END { for (m in g) if (nf[m]) print m "," g[m] "," f[m] / nf[m] }' \
    "$OUT/ofa.csv" "$OUT"/ofa/w"$OFA_W"/seed*/ofa.extra | sort >"$OUT/ofa-flops.csv"
# The same as a table and a text plot (GAUC against FLOPs, one row each).
{
echo
echo "Accuracy against FLOPs per prediction (mean of seeds), sorted by FLOPs:"
echo
echo "| method | GAUC | FLOPs/prediction | vs static |"
echo "|---|---|---|---|"
sf=$(awk -F, '$1 == "static" { print $3 }' "$OUT/ofa-flops.csv")
sort -t, -k3,3n "$OUT/ofa-flops.csv" | awk -F, -v sf="$sf" \
    '{ printf "| %s | %.4f | %.0f | %.0f %% |\n", $1, $2, $3, 100 * $3 / sf }'
echo
echo '```'
sort -t, -k3,3n "$OUT/ofa-flops.csv" | awk -F, '
{ n++; m[n] = $1; g[n] = $2; f[n] = $3; if (n == 1 || $2 < lo) lo = $2; if (n == 1 || $2 > hi) hi = $2 }
END {
	W = 50
	printf "%-14s %-9s GAUC %.4f %*s %.4f\n", "method", "kFLOPs", lo, W - 12, "", hi
	for (i = 1; i <= n; i++) {
		p = hi > lo ? int((g[i] - lo) / (hi - lo) * (W - 1) + 0.5) : 0
		bar = ""; for (k = 0; k < p; k++) bar = bar "-"
		printf "%-14s %7.1f   |%s*\n", m[i], f[i] / 1000, bar
	}
}'
echo '```'
} >>"$OUT/cloud.md"
awk -F, '
{ n++; m[n] = $1; g[n] = $2; f[n] = $3
  if (n == 1 || $2 < lo) lo = $2; if (n == 1 || $2 > hi) hi = $2; if ($3 > fx) fx = $3 }
END {
	W = 720; H = 420; L = 80; R = 30; T = 40; B = 50; pw = W - L - R; ph = H - T - B
	pad = (hi - lo) * 0.15 + 0.0005; lo -= pad; hi += pad; fx *= 1.1
	printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H
	printf "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H
	printf "<text x=\"%d\" y=\"22\" font-size=\"14\">Forward-OFA: GAUC against FLOPs per prediction (mean of seeds)</text>\n", L
	printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", L, T, pw, ph
	for (t = 0; t <= 4; t++) {
		v = lo + (hi - lo) * t / 4; y = T + ph - ph * t / 4
		printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.4f</text>\n", L - 6, y + 4, v
		v = fx * t / 4; x = L + pw * t / 4
		printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0fk</text>\n", x, T + ph + 16, v / 1000
	}
	printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">FLOPs per prediction</text>\n", L + pw / 2, H - 10
	for (i = 1; i <= n; i++) {
		x = L + pw * f[i] / fx; y = T + ph - ph * (g[i] - lo) / (hi - lo)
		col = m[i] == "static" ? "#d62728" : m[i] ~ /^ofa-imp/ ? "#ff7f0e" : m[i] ~ /^ofa/ ? "#1f77b4" : m[i] ~ /^bc/ ? "#2ca02c" : m[i] == "duet" ? "#9467bd" : "#7f7f7f"
		printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", x, y, col
		printf "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x + 6, y - 4, m[i]
	}
	print "</svg>"
}' "$OUT/ofa-flops.csv" >"$OUT/ofa.svg"

# The plot: GAUC by round, per arm and data set, drawn here.
for set in $sets; do
	for f in "$OUT/$set"-r*-vs-lam0.csv; do
		r=$(basename "$f" | sed 's/.*-r\([0-9]*\)-vs-lam0.csv/\1/')
		awk -F, -v set="$set" -v r="$r" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		    { print set "," r "," $1 "," $(c["gauc"]) }' "$f"
	done
done | sort -t, -k1,1 -k3,3 -k2,2n >"$OUT/gauc.csv"
awk -F, '
{ k = $1 SUBSEP $3; if (!(k in seen)) { seen[k] = 1; ord[++nk] = k; setof[k] = $1; armof[k] = $3 }
  g[k, $2] = $4; if ($2 > R) R = $2
  if (!($1 in lo) || $4 < lo[$1]) lo[$1] = $4; if (!($1 in hi) || $4 > hi[$1]) hi[$1] = $4
  if (!($1 in sidx)) { sidx[$1] = ++ns; sname[ns] = $1 } }
END {
	W = 900; PH = 300; L = 70; Rm = 190; T = 40; B = 40
	H = T + ns * (PH + B) + 10
	printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H
	printf "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H
	printf "<text x=\"%d\" y=\"22\" font-size=\"14\">MoMoDistill and controls: cloud GAUC on the next slice, by round (mean of seeds)</text>\n", L
	split("#7f7f7f,#1f77b4,#ff7f0e,#2ca02c,#d62728,#9467bd,#8c564b,#e377c2,#17becf", col, ",")
	pw = W - L - Rm
	for (s = 1; s <= ns; s++) {
		st = sname[s]; y0 = T + (s - 1) * (PH + B)
		pad = (hi[st] - lo[st]) * 0.1 + 0.001; a = lo[st] - pad; b = hi[st] + pad
		printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", L, y0, pw, PH
		printf "<text x=\"%d\" y=\"%d\">%s</text>\n", L + 5, y0 + 15, st
		for (t = 0; t <= 4; t++) {
			v = a + (b - a) * t / 4; y = y0 + PH - PH * t / 4
			printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.4f</text>\n", L - 6, y + 4, v
			printf "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", L, L + pw, y, y
		}
		for (r = 1; r <= R; r++) {
			x = L + (R > 1 ? pw * (r - 1) / (R - 1) : pw / 2)
			printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">round %d</text>\n", x, y0 + PH + 15, r
		}
		n = 0
		for (i = 1; i <= nk; i++) {
			k = ord[i]; if (setof[k] != st) continue
			n++; pts = ""
			for (r = 1; r <= R; r++) {
				if (!((k, r) in g)) continue
				x = L + (R > 1 ? pw * (r - 1) / (R - 1) : pw / 2)
				y = y0 + PH - PH * (g[k, r] - a) / (b - a)
				pts = pts sprintf("%.1f,%.1f ", x, y)
				printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x, y, col[(n - 1) % 9 + 1]
			}
			printf "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", pts, col[(n - 1) % 9 + 1], armof[k] ~ /^conv/ ? " stroke-dasharray=\"5,3\"" : ""
			printf "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>\n", L + pw + 10, L + pw + 30, y0 + 14 * n, y0 + 14 * n, col[(n - 1) % 9 + 1]
			printf "<text x=\"%d\" y=\"%d\">%s</text>\n", L + pw + 35, y0 + 4 + 14 * n, armof[k]
		}
	}
	print "</svg>"
}' "$OUT/gauc.csv" >"$OUT/cloud.svg"
cat "$OUT/cloud.md"
echo
echo "eval-cloud: $(( $(date +%s) - t0 )) s; $OUT/cloud.md, cloud.svg, ofa.svg"
