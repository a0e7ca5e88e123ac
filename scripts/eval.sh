#!/bin/sh
# eval.sh DATASET_DIR [OUTDIR]: the evaluation tables, through the real
# daemons. For each task and seed the data are split (or generated) with
# that seed, one cloudd trains on the pool and every user of the data set
# runs as a device (deviced hosts many device instances per process),
# personalizes with each method and scores its held-out test samples;
# bin/dccl-eval then builds the tables (mean +- std over seeds, paired
# per-user bootstrap intervals against the cloud model, Holm over each
# table). Tables go to stdout and, as Markdown and CSV, to OUTDIR (default
# out/eval).
#
# Tasks (EVAL_TASKS):
#   ctr           MovieLens, label = rating >= 4
#   ranking       MovieLens, every rating an interaction, each of a user's
#                 first 3 test positives ranked against 99 never-rated
#                 items of its own, in its own context
#   synth         generator: per-user click bias drifting from the local
#                 part on, taste clusters; oracle row = true P(click)
#   synth-tail    500 users, heavy-tailed per-user counts (Pareto 1.2,
#                 10..400 samples; DCCL's setting)
#   synth-switch  500 users, taste switches (half the users) inside the
#                 test window, no bias drift: what no local data can show
# In every task a share EVAL_COLD (0.2) of users is cold: none of their
# samples reach the pool (the cloud has no user embedding or patch for
# them); each task prints a warm and a cold table.
# The devices score exactly the tables' methods (EVAL_METHODS, else the
# list below), passed as deviced.eval-methods.
# EVAL_SEEDS (1 2 3) vary the split's cold users, the ranking negatives
# and the synthetic data, and seed the cloud's and devices' training.
# EVAL_JOBS (2) rounds run at a time.
# EVAL_DEVICED_OPTS adds deviced options (-o key=value ...) to every round,
# EVAL_CLOUDD_OPTS cloudd options, EVAL_SPLIT_OPTS dccl-data split options
# (MovieLens tasks; e.g. --no-side with -o train.interaction=off: the base
# model before issue 16, scripts/eval-results.md, Base-model options).
# EVAL_KEEP=DIR keeps each round's per-device files (DIR/run-TASK-SEED/eval)
# and the split data, for analyses the tables do not make.
# Rows "<m>-fed" train at the setting the cloud chose by federated
# selection, from the reports of a selection round on the devices' local
# data before the test round (simulate.sh, SELECT_OPTS); "<m>-def" at the
# default setting (deviced/README.md, Federated selection). Rows with
# "-pairw" (ft-pairw-cv, ft-pairw) train at the pair weight the cloud
# chose for the row's users' group from the same round.
# A row "<m>-w<N>" is method m with a training window of N local samples
# instead of learn.window (deviced/README.md, step 4): mp-fb-w64 is what
# conf/deviced-metapatch.conf serves.
# EVAL_DISTILL=1 also runs the MoMoDistill rounds (scripts/distill-rounds.sh,
# about 5 more minutes), which used to run by default.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DCCL_BIN:-$ROOT/bin}
DATA=${1:?usage: eval.sh DATASET_DIR [OUTDIR]}
OUTDIR=${2:-$ROOT/out/eval}
SEEDS=${EVAL_SEEDS:-1 2 3}
TASKS=${EVAL_TASKS:-ctr ranking synth synth-tail synth-switch}
COLD=${EVAL_COLD:-0.2}
METHODS=${EVAL_METHODS:-cloud,naive-ft,ft-cv,ft-guard,ft-lc,ft-lcm,ft-lcoffm,ft-lcoffm-pair3-fb,ft-lcoffm-pair3-cv,ft-coda,ft-lcm-coda,ft-coda-u,metapatch,mp-cv,mp-lc-coda,mp-lcm-coda,bias,ft-fb,mp-fb,mp-fb-w64,oov,enc,enc-cv,ofa-low,ofa-mid,ofa-high}
export OPENBLAS_NUM_THREADS=1
[ -d "$DATA" ] || { echo "eval.sh: $DATA: no such directory"; exit 1; }
mkdir -p "$OUTDIR"
WORK=$(mktemp -d /tmp/dccl-eval.XXXXXX)
# The devices' stores go to RAM (/dev/shm) when it has room: each device
# writes 1-4 MB of SQLite pages (a MovieLens round's stores peak at 2.2
# GB) and syncs its store at exit, 9,660 devices in all, and none of it
# is read after its round. The stores are deleted as each round ends, and
# a round that starts with less than 6 GiB of memory available keeps its
# stores on disk. EVAL_STORES=DIR chooses the place (no memory check);
# with EVAL_KEEP they stay in the rounds' directories.
STORES=${EVAL_STORES:-}
if [ -z "$STORES" ] && [ -z "${EVAL_KEEP:-}" ] && [ -d /dev/shm ] &&
    [ "$(df -Pk /dev/shm | awk 'NR == 2 { print $4 }')" -gt 8388608 ]; then
	STORES=/dev/shm
fi
SWORK=""
[ -z "$STORES" ] || SWORK=$(mktemp -d "$STORES/dccl-eval.XXXXXX")
trap 'rm -rf "$WORK" ${SWORK:+"$SWORK"}' EXIT INT TERM
t0=$(date +%s)

# make_data TASK SEED DIR: the task's data for one seed
make_data() {
	case $1 in
	ctr) "$BIN/dccl-data" split "$DATA" "$3" --cold "$COLD" --seed "$2" ${EVAL_SPLIT_OPTS:-} ;;
	ranking) "$BIN/dccl-data" split "$DATA" "$3" --task ranking \
	    --negatives 99 --rank-positives 3 --cold "$COLD" --seed "$2" ${EVAL_SPLIT_OPTS:-} ;;
	synth) "$BIN/dccl-data" synth "$3" --users 1000 --cold "$COLD" \
	    --seed "$2" ;;
	synth-tail) "$BIN/dccl-data" synth "$3" --users 500 --cold "$COLD" \
	    --count-tail 1.2 --min-per-user 10 --max-per-user 400 --seed "$2" ;;
	synth-switch) "$BIN/dccl-data" synth "$3" --users 500 --cold "$COLD" \
	    --taste-drift 0.5 --drift-std 0 --drift-start 0.9 --seed "$2" ;;
	*) echo "unknown task $1" >&2; return 1 ;;
	esac
}

echo "data: $DATA ($("$BIN/dccl-data" stats "$DATA" 2>/dev/null | head -1))"
# Each round makes its own data (run_one), so one round's split or
# generator runs while the other job's daemons train: making all of it
# first used to take 1-3 minutes of one core before any round started.
n_runs=0
for task in $TASKS; do for s in $SEEDS; do n_runs=$((n_runs + 1)); done; done
echo "$n_runs runs; cold users: $COLD of each task's users"

# progress: devices done over all runs, redrawn in place on a terminal
progress() {	# done total label
	if [ -t 2 ]; then
		w=40; f=$(( $1 * w / ($2 ? $2 : 1) ))
		bar=$(printf '%*s' "$f" '' | tr ' ' '#')
		printf '\r[%-40s] %3d%% %s ' "$bar" $(( $1 * 100 / ($2 ? $2 : 1) )) "$3" >&2
	fi
}

join() { tr ' ' '\n' | sed '/^$/d' | paste -sd, -; }

# select_opts SEED: with "<m>-fed" or "-pairw" rows, the selection round's
# options (scripts/simulate.sh): the devices report the grids of those <m>
# (a "-pairw" family at every weight of learn.pair-weights).
select_opts() {
	fm=$( { echo "$METHODS" | tr ',' '\n' | sed -n 's/-fed$//p'
	    echo "$METHODS" | tr ',' '\n' | grep -e '-pairw' | sed 's/-fed$//'; } |
	    awk 'NF && !seen[$0]++' | paste -sd, -)
	[ -n "$fm" ] && echo "-o learn.seed=$1 -o learn.fedsel-methods=$fm"
	return 0
}

# run_one TASK SEED: one round through the daemons (simulate.sh) and what
# the tables need from it, in $WORK/run-TASK-SEED (ok = it succeeded).
run_one() {
	data=$WORK/$1-$2 run=$WORK/run-$1-$2
	make_data "$1" "$2" "$data" >/dev/null || { echo "run $1 seed $2: no data"; return 1; }
	n=$(ls "$data/devices" | grep -c '\.local\.csv$')
	sdir=""	# this round's stores, when not in $run/dev (STORES)
	if [ -n "$SWORK" ] && { [ -n "${EVAL_STORES:-}" ] ||
	    [ "$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)" -gt 6291456 ]; }; then
		sdir=$SWORK/dev-$1-$2
	fi
	mkdir -p "$run/eval"
	if ! OUT=$run CLOUDD_OPTS="-o train.seed=$2${EVAL_CLOUDD_OPTS:+ $EVAL_CLOUDD_OPTS}" SELECT_OPTS="$(select_opts "$2")" \
	    DEVICED_OPTS="-o learn.seed=$2 -o deviced.eval-dir=$run/eval${sdir:+ -o deviced.data-dir=$sdir} -o deviced.eval-methods=$METHODS${EVAL_DEVICED_OPTS:+ $EVAL_DEVICED_OPTS}" \
	    sh "$ROOT/scripts/simulate.sh" "$n" "$data" >"$run.log" 2>&1; then
		echo; echo "run $1 seed $2 failed:"
		grep -E 'failed|died|Abort|Assert|no model' "$run.log" "$run"/*.log | tail -20
		tail -5 "$run.log"
		return 1
	fi
	grep -h "TRAIN: model v1" "$run/cloudd.log" | sed "s/.*TRAIN: /  $1 seed $2 cloud: /" >"$run/note"
	grep -h "ENCODER: " "$run/cloudd.log" | head -1 | sed "s/.*ENCODER: /  $1 seed $2 encoder: /" >>"$run/note"
	# the cloud's federated choices, as the first device fetched them
	grep -h "SELECTION: " "$run"/deviced*.log 2>/dev/null | awk '{ d = $0; sub(/.*device=/, "", d); sub(/ .*/, "", d) } NR == 1 { first = d } d == first' |
	    sed "s/.*SELECTION: device=[^ ]* /  $1 seed $2 federated: /" >>"$run/note"
	# the synthetic oracle scores like one more method
	[ -f "$data/oracle.pred" ] && cp "$data/oracle.pred" "$run/eval/oracle.csv"
	# users' local sample counts, for the long-tail rows
	# (one awk for all files: a grep per device cost minutes under load)
	awk 'BEGIN { for (i = 1; i < ARGC; i++) { f = ARGV[i]; c = 0
		while ((getline l < f) > 0) if (l !~ /^#|^user,/) c++
		close(f); u = f; sub(/.*\//, "", u); sub(/\.local\.csv$/, "", u)
		print u "," c } }' "$data"/devices/*.local.csv >"$run/counts"
	# Nothing reads the daemons' stores after the round (0.8-2.2 GB a
	# round, mostly the devices' model copies): gone now, not at the end,
	# so /tmp holds two rounds' stores, not fifteen (EVAL_KEEP keeps all).
	[ -n "${EVAL_KEEP:-}" ] || rm -rf "$run/dev" "$run/cloud" ${sdir:+"$sdir"}
	: >"$run/ok"
}

# fed_tables TASK KIND DIRS COUNTS COLDS GROUPS: for each "<m>-fed" row,
# "<m>-def" (the default setting) and "<m>-fed" (federated selection)
# against <m> (per-device CV) as the baseline: paired per-user intervals,
# Holm over the two rows of each table.
fed_tables() {
	for x in $(echo "$METHODS" | tr ',' '\n' | sed -n 's/-fed$//p'); do
		cd3="" k=0
		for d in $3; do
			k=$((k + 1)); c=$WORK/cmp-$1-$x-$k
			mkdir -p "$c"
			cat "$d"/*.csv | grep -E "^($x|$x-def|$x-fed)," >"$c/rows.csv" || true
			cd3="$cd3 $c"
		done
		for g in $6; do
			name=$1-$x-fed; sel=""
			[ "$g" = all ] || { name=$1-$g-$x-fed; sel="--cold-users $(echo $5 | join) --users $g"; }
			# the rows the list has: <m> is the baseline
			rows=$(echo "$METHODS" | tr ',' '\n' | grep -xE "$x-def|$x-fed" | paste -sd, -)
			echo "$METHODS" | tr ',' '\n' | grep -qx "$x" || continue
			echo "**$1, $g users: the default setting and federated selection against per-device CV ($x)**"
			# shellcheck disable=SC2086
			"$BIN/dccl-eval" --task "$2" --seeds-dirs "$(echo $cd3 | join)" \
			    --out "$OUTDIR" --name "$name" --baseline "$x" \
			    --methods "$rows" $sel \
			    --user-counts "$(echo $4 | join)"
			echo
		done
	done
}

# EVAL_JOBS rounds at a time (default 2): a round's cloud training, index
# build and data loading are single-threaded, and each deviced runs one
# learning job at a time, so two rounds keep both cores busy. Results do
# not depend on it (every round has its own daemons and seeds).
JOBS=${EVAL_JOBS:-2}
pids=""
running() {
	c=0
	for p in $pids; do kill -0 "$p" 2>/dev/null && c=$((c + 1)); done
	echo $c
}
# device rounds of the rounds whose data exist so far (progress only)
devices_total() {
	ls "$WORK"/*/devices 2>/dev/null | grep -c '\.local\.csv$' || true
}
devices_done() {
	cat "$WORK"/run-*/deviced*.log 2>/dev/null | grep -c 'DONE: device=' || true
}
# task_tables TASK: the task's tables, once its rounds are done; run in
# the background beside the remaining rounds (output to $WORK/tables-TASK,
# printed in TASKS' order at the end), so only the last task's tables
# are left for the end.
task_tables() {
	task=$1
	dirs="" counts="" colds=""
	for s in $SEEDS; do
		data=$WORK/$task-$s
		run=$WORK/run-$task-$s
		[ -f "$run/ok" ] || { echo "run $task seed $s: no result"; exit 1; }
		cat "$run/note" >>"$WORK/notes-$task"
		dirs="$dirs $run/eval" counts="$counts $run/counts"
		[ -f "$data/cold.csv" ] && colds="$colds $data/cold.csv"
	done
	kind=ctr; [ "$task" = ranking ] && kind=ranking
	m=$METHODS; ref=""
	case $task in synth*) m=$(echo "$METHODS" | sed 's/^cloud,/cloud,oracle,/'); ref="--reference oracle" ;; esac
	if [ -n "$colds" ]; then groups="warm cold"; else groups=all; fi
	# the warm and the cold table side by side (two processes)
	tabs="" tpids=""
	for g in $groups; do
		name=$task; sel=""
		[ "$g" = all ] || { name=$task-$g; sel="--cold-users $(echo $colds | join) --users $g"; }
		# shellcheck disable=SC2086
		{ "$BIN/dccl-eval" --task "$kind" --seeds-dirs "$(echo $dirs | join)" \
		    --out "$OUTDIR" --name "$name" --methods "$m" $ref $sel \
		    --user-counts "$(echo $counts | join)"
		echo; } >"$WORK/tab-$name" &
		tabs="$tabs $WORK/tab-$name" tpids="$tpids $!"
	done
	for p in $tpids; do wait "$p"; done
	# shellcheck disable=SC2086
	cat $tabs
	# the settings the devices chose (per-device cross-validation)
	for dd in $dirs; do ls "$dd"/*.extra >/dev/null 2>&1 &&
		awk 'FNR == 1 { print "#device" } { print }' "$dd"/*.extra; done |
	    awk -F, -v title="$task, all users, all seeds" \
	    -f "$ROOT/scripts/settings.awk" | tee "$OUTDIR/$task-settings.md"
	fed_tables "$task" "$kind" "$dirs" "$counts" "$colds" "$groups"
}
# start_tables: task_tables for every task whose rounds are all done
# (its own variable names: it runs inside the launch loop)
started="" tabpids=""
start_tables() {
	for tt in $TASKS; do
		case " $started " in *" $tt "*) continue ;; esac
		for ts in $SEEDS; do [ -f "$WORK/run-$tt-$ts/ok" ] || continue 2; done
		task_tables "$tt" >"$WORK/tables-$tt" 2>"$WORK/tables-$tt.err" &
		started="$started $tt" tabpids="$tabpids $!"
	done
}

# The longest rounds start first, so the last to finish is a short one
# (CPU seconds per round: ranking 172, synth 133, ctr 95, synth-switch 62,
# synth-tail 35; tasks not in this list after them); the tables keep
# TASKS' order.
LAUNCH=""
for t in ranking synth ctr synth-switch synth-tail; do
	case " $TASKS " in *" $t "*) LAUNCH="$LAUNCH $t" ;; esac
done
for t in $TASKS; do
	case " $LAUNCH " in *" $t "*) ;; *) LAUNCH="$LAUNCH $t" ;; esac
done
for task in $LAUNCH; do
	for s in $SEEDS; do
		while [ "$(running)" -ge "$JOBS" ]; do
			[ -t 2 ] && progress "$(devices_done)" "$(devices_total)" "running"
			start_tables
			sleep 0.5
		done
		run_one "$task" "$s" &
		pids="$pids $!"
	done
done
while [ "$(running)" -gt 0 ]; do
	[ -t 2 ] && progress "$(devices_done)" "$(devices_total)" "running"
	start_tables
	sleep 0.5
done
fail=0
for p in $pids; do wait "$p" || fail=1; done
[ -t 2 ] && echo >&2
# (tables already started finish before a failed evaluation exits)
[ $fail -ne 0 ] || start_tables
for p in $tabpids; do wait "$p" || fail=1; done
if [ $fail -ne 0 ]; then
	# what the tables said: a failed table is otherwise silent (its
	# output lives in $WORK, which goes with the exit)
	for task in $started; do
		cat "$WORK/tables-$task.err" >&2
		tail -5 "$WORK/tables-$task" >&2
	done
	exit 1
fi

for task in $TASKS; do
	cat "$WORK/tables-$task"
	cat "$WORK/tables-$task.err" >&2
	cat "$WORK/notes-$task" >>"$WORK/notes"
done
cat "$WORK/notes"
if [ -n "${EVAL_KEEP:-}" ]; then
	mkdir -p "$EVAL_KEEP" && cp -r "$WORK"/. "$EVAL_KEEP"/
fi
echo "eval: $(( $(date +%s) - t0 )) s on $(nproc) cores; tables in $OUTDIR"
# MoMoDistill rounds (out/distill) with EVAL_DISTILL=1.
if [ "${EVAL_DISTILL:-0}" != 0 ]; then
	echo
	sh "$ROOT/scripts/distill-rounds.sh" "$DATA" "${EVAL_DISTILL_ROUNDS:-3}"
fi
