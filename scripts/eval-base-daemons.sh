#!/bin/sh
# eval-base-daemons.sh [DATA]: the cloud model through the daemons against
# the model before issue 16, paired (scripts/eval-results.md, Base-model
# options). Runs eval.sh's ctr task with the cloud method only (EVAL_SEEDS,
# default 1 2 3) twice on the same splits: once as cloudd trains by
# default, once as the old model (--no-side data, train.interaction=off,
# train.lr-grid= : Adam 1e-3 alone), keeps the devices' predictions, and
# prints the warm and cold tables of the default against the old model
# (paired per-user bootstrap intervals). EVAL_BASE_D_OUT (out/base-daemons)
# gets the tables; the kept rounds are deleted afterwards.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DCCL_BIN:-$ROOT/bin}
DATA=${1:-$ROOT/../shared/data/ml-latest-small}
OUT=${EVAL_BASE_D_OUT:-$ROOT/out/base-daemons}
SEEDS=${EVAL_SEEDS:-1 2 3}
export OPENBLAS_NUM_THREADS=1 EVAL_TASKS=ctr EVAL_METHODS=cloud EVAL_SEEDS="$SEEDS"
WORK=$(mktemp -d /tmp/dccl-based.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM
mkdir -p "$OUT"
EVAL_KEEP=$WORK/new sh "$ROOT/scripts/eval.sh" "$DATA" "$WORK/new-out" \
    >"$WORK/new.log" 2>&1 || { tail "$WORK/new.log"; exit 1; }
EVAL_KEEP=$WORK/old EVAL_SPLIT_OPTS=--no-side \
    EVAL_CLOUDD_OPTS="-o train.interaction=off -o train.lr-grid=" \
    sh "$ROOT/scripts/eval.sh" "$DATA" "$WORK/old-out" >"$WORK/old.log" 2>&1 ||
    { tail "$WORK/old.log"; exit 1; }
dirs="" colds=""
for s in $SEEDS; do
	d=$WORK/p$s
	mkdir -p "$d"
	# the same users and test rows in both runs: the splits differ only in
	# the side column
	cat "$WORK/new/run-ctr-$s/eval"/*.csv >"$d/new.csv"
	cat "$WORK/old/run-ctr-$s/eval"/*.csv | sed 's/^cloud,/old-model,/' >"$d/old.csv"
	cmp -s "$WORK/new/ctr-$s/cold.csv" "$WORK/old/ctr-$s/cold.csv" ||
	    { echo "seed $s: the two runs' cold users differ"; exit 1; }
	dirs="$dirs${dirs:+,}$d" colds="$colds${colds:+,}$WORK/new/ctr-$s/cold.csv"
done
for g in warm cold; do
	"$BIN/dccl-eval" --task ctr --seeds-dirs "$dirs" --out "$OUT" \
	    --name "ctr-$g" --baseline old-model --methods cloud \
	    --cold-users "$colds" --users "$g" >/dev/null
	echo "### ctr, $g users: cloudd's default against the model before issue 16"
	sed -n '/^|/p' "$OUT/ctr-$g.md"
	echo
done
grep -h "cloud:" "$WORK/new/notes" "$WORK/old/notes" 2>/dev/null || true
