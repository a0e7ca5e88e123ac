#!/bin/sh
# eval.sh DATASET_DIR [OUTDIR]: the evaluation table, through the real
# daemons. For each task (ctr, ranking, synthetic drift) and seed, one
# cloudd trains on the pool and every user of the data set runs as a
# device (deviced hosts many device instances per process), personalizes
# with each method and scores its held-out test samples; bin/dccl-eval
# then builds the tables (mean +- std over seeds, paired per-user bootstrap
# intervals against the cloud model). Tables go to stdout and, as Markdown
# and CSV, to OUTDIR (default out/eval). EVAL_SEEDS, EVAL_TASKS override.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DCCL_BIN:-$ROOT/bin}
DATA=${1:?usage: eval.sh DATASET_DIR [OUTDIR]}
OUTDIR=${2:-$ROOT/out/eval}
SEEDS=${EVAL_SEEDS:-1 2 3}
TASKS=${EVAL_TASKS:-ctr ranking synth}
METHODS=${EVAL_METHODS:-cloud,naive-ft,ft-guard,ft-lc,ft-lcoff,ft-coda,ft-lc-coda,ft-coda-u,metapatch,mp-lc-coda,mp-lc-coda-u,ofa-low,ofa-mid,ofa-high}
export OPENBLAS_NUM_THREADS=1
[ -d "$DATA" ] || { echo "eval.sh: $DATA: no such directory"; exit 1; }
mkdir -p "$OUTDIR"
WORK=$(mktemp -d /tmp/dccl-eval.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM
t0=$(date +%s)

echo "data: $DATA ($("$BIN/dccl-data" stats "$DATA" 2>/dev/null | head -1))"
for task in $TASKS; do
	case $task in
	ctr) "$BIN/dccl-data" split "$DATA" "$WORK/ctr" >/dev/null ;;
	ranking) "$BIN/dccl-data" split "$DATA" "$WORK/ranking" --task ranking \
	    --negatives 99 --seed 1 >/dev/null ;;
	synth) "$BIN/dccl-data" synth "$WORK/synth" --users 1000 --seed 1 >/dev/null ;;
	*) echo "unknown task $task"; exit 1 ;;
	esac
done
n_runs=0 total=0
for task in $TASKS; do
	n=$(ls "$WORK/$task/devices" | grep -c '\.local\.csv$')
	for s in $SEEDS; do total=$((total + n)); n_runs=$((n_runs + 1)); done
done
echo "$n_runs runs, $total device rounds"

# progress: devices done over all runs, redrawn in place on a terminal
progress() {	# done total label
	if [ -t 2 ]; then
		w=40; f=$(( $1 * w / ($2 ? $2 : 1) ))
		bar=$(printf '%*s' "$f" '' | tr ' ' '#')
		printf '\r[%-40s] %3d%% %s ' "$bar" $(( $1 * 100 / ($2 ? $2 : 1) )) "$3" >&2
	fi
}

done_before=0
for task in $TASKS; do
	dirs=""
	n=$(ls "$WORK/$task/devices" | grep -c '\.local\.csv$')
	for s in $SEEDS; do
		run=$WORK/run-$task-$s
		mkdir -p "$run/eval"
		OUT=$run CLOUDD_OPTS="-o train.seed=$s" \
		    DEVICED_OPTS="-o learn.seed=$s -o deviced.eval-dir=$run/eval" \
		    sh "$ROOT/scripts/simulate.sh" "$n" "$WORK/$task" >"$run.log" 2>&1 &
		sp=$!
		while kill -0 $sp 2>/dev/null; do
			d=$(cat "$run"/deviced*.log 2>/dev/null | grep -c 'DONE: device=' || true)
			progress $((done_before + d)) "$total" "$task seed $s"
			sleep 0.5
		done
		wait $sp || {
			echo; echo "run $task seed $s failed:"
			grep -E 'failed|died|Abort|Assert|no model' "$run.log" "$run"/*.log | tail -20
			tail -5 "$run.log"; exit 1; }
		done_before=$((done_before + n))
		progress "$done_before" "$total" "$task seed $s"
		grep -h "TRAIN: model v1" "$run/cloudd.log" | sed "s/.*TRAIN: /  $task seed $s cloud: /" >>"$WORK/notes"
		dirs="$dirs${dirs:+,}$run/eval"
	done
	[ -t 2 ] && echo >&2
	# users' local sample counts, for the long-tail rows
	for f in "$WORK/$task"/devices/*.local.csv; do
		u=$(basename "$f" .local.csv)
		echo "$u,$(grep -vc '^#\|^user,' "$f")"
	done >"$WORK/$task.counts"
	kind=$task; [ "$task" = synth ] && kind=ctr
	"$BIN/dccl-eval" --task "$kind" --seeds-dirs "$dirs" --out "$OUTDIR" \
	    --name "$task" --methods "$METHODS" --user-counts "$WORK/$task.counts"
	echo
done
cat "$WORK/notes"
echo "eval: $(( $(date +%s) - t0 )) s on $(nproc) cores; tables in $OUTDIR"
# MoMoDistill rounds (out/distill); EVAL_DISTILL=0 skips them.
if [ "${EVAL_DISTILL:-1}" != 0 ]; then
	echo
	sh "$ROOT/scripts/distill-rounds.sh" "$DATA" "${EVAL_DISTILL_ROUNDS:-3}"
fi
