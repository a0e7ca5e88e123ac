#!/bin/sh
# simulate.sh N [DATA]: one cloudd and N devices on this machine, the native
# twin of the docker-compose topology. DATA is a MovieLens directory or a
# split directory (pool.csv + devices/); without it, a synthetic data set
# is generated. Devices are hosted by deviced processes of at most
# DEVS_PER_PROC devices each (one loop thread each; they share one
# connection to the cloud, deviced/uplink.h).
# Prints a summary and leaves everything in $OUT (default a temp dir).
set -eu
N=${1:-8}
DATA=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DCCL_BIN:-$ROOT/bin}
OUT=${OUT:-$(mktemp -d /tmp/dccl-sim.XXXXXX)}
DEVS_PER_PROC=${DEVS_PER_PROC:-250}
TRANSPORT=${TRANSPORT:-ipc}
export OPENBLAS_NUM_THREADS=1
# Authentication is on (auth.mode = mac): cloudd and every device enroll
# with this token unless one is given.
DCCL_AUTH_TOKEN=${DCCL_AUTH_TOKEN:-sim-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')}
export DCCL_AUTH_TOKEN
mkdir -p "$OUT"
PIDS=""
trap 'for p in $PIDS; do kill -9 $p 2>/dev/null || true; done' EXIT INT TERM

if [ "$TRANSPORT" = tcp ]; then
	port=$(( 30000 + $$ % 20000 ))
	EP=tcp://127.0.0.1:$port; PUB=tcp://127.0.0.1:$((port + 1))
else
	EP=ipc://$OUT/cloudd.ipc; PUB=ipc://$OUT/pub.ipc
fi
ADM=ipc://$OUT/admin.ipc

t0=$(date +%s.%N)
echo "== data"
if [ -z "$DATA" ]; then
	"$BIN/dccl-data" synth "$OUT/data" --users "$N" --seed 1 >/dev/null
	echo "synthetic drift data: $N users"
elif [ -f "$DATA/pool.csv" ]; then
	ln -sfn "$(cd "$DATA" && pwd)" "$OUT/data"
else
	"$BIN/dccl-data" split "$DATA" "$OUT/data" >/dev/null
	echo "MovieLens $(basename "$DATA"): split 70/15/15 per user by time"
fi
SHARDS=$OUT/data/devices

echo "== cloud"
: >"$OUT/cloudd.log"
"$BIN/cloudd" -o cloudd.data-dir="$OUT/cloud" --import "$OUT/data/pool.csv" \
    2>&1 | sed -n 's/.*IMPORT: /import: /p'
"$BIN/cloudd" -o cloudd.listen="$EP" -o cloudd.pub-listen="$PUB" \
    -o cloudd.admin-listen="$ADM" -o cloudd.data-dir="$OUT/cloud" \
    ${CLOUDD_OPTS:-} >"$OUT/cloudd.log" 2>&1 &
CPID=$!
PIDS="$PIDS $CPID"
i=0
until grep -q "ANNOUNCE: model v" "$OUT/cloudd.log"; do
	i=$((i + 1))
	[ $i -lt 3000 ] || { echo "no model after 300 s"; tail "$OUT/cloudd.log"; exit 1; }
	kill -0 $CPID 2>/dev/null || { echo "cloudd died"; tail "$OUT/cloudd.log"; exit 1; }
	sleep 0.1
done
sed -n 's/.*\(TRAIN: model v.*\)/\1/p' "$OUT/cloudd.log"

echo "== devices"
td=$(date +%s.%N)
: >"$OUT/devices.pids"
# One deviced, restarted if it is SIGKILLed (the dropout test of
# scripts/scale.sh, with RESTART_KILLED=1) until it exits by itself.
# The deviceds run at nice DEVICED_NICE (default 11): the simulated phones
# would each have a CPU of their own, and on one machine their loops,
# nanomsg threads and stores otherwise starve cloudd, the system under
# test: its I/O thread writes every reply, and its workers (at nice 10,
# GUARD_NICE) run the searches. At nice 5 the deviceds installing 10,000
# models doubled a search's wall time, and cloudd's appointments, which
# are spaced by it, sent the devices away for longer than the searches
# then took (scripts/bench-results.md, *Lanes*).
run_deviced() {
	while :; do
		nice -n "${DEVICED_NICE:-11}" "$BIN/deviced" "$@" \
		    >>"$OUT/deviced$p.log" 2>&1 &
		echo $! >>"$OUT/devices.pids"
		r=0; wait $! || r=$?
		[ $r -eq 137 ] && [ -n "${RESTART_KILLED:-}" ] || return $r
		echo "RESTART: deviced $p was killed; starting it again" \
		    >>"$OUT/deviced$p.log"
	done
}
users=$(ls "$SHARDS" | sed -n 's/^\([0-9]*\)\.local\.csv$/\1/p' | sort -n | head -n "$N")
n=$(echo "$users" | wc -l)
p=0
# As few processes as DEVS_PER_PROC allows, with equal shares (610 users:
# 204/204/202, not 250/250/110, whose small process idles for the last
# minutes of a round; each device's results do not depend on its process).
per=$(( (n + DEVS_PER_PROC - 1) / DEVS_PER_PROC ))
per=$(( (n + per - 1) / per ))
echo "$users" | split -l "$per" - "$OUT/group."
# Federated selection (SELECT_OPTS set): a round before the devices'
# own, in which each user's device (id sel-<user>, a store of its own)
# runs its setting grid on its local data and reports the validation
# sums; the cloud chooses, and the devices below fetch the choice.
if [ -n "${SELECT_OPTS:-}" ]; then
	ts=$(date +%s.%N)
	k=0 spids=""
	for g in "$OUT"/group.*; do
		k=$((k + 1))
		mkdir -p "$OUT/sel-shards$k"
		for u in $(cat "$g"); do ln -sf "$SHARDS/$u.local.csv" "$OUT/sel-shards$k/"; done
		# shellcheck disable=SC2086
		"$BIN/deviced" -o deviced.cloud="$EP" -o deviced.cloud-pub="$PUB" \
		    -o deviced.shards="$OUT/sel-shards$k" -o deviced.data-dir="$OUT/dev-sel" \
		    -o deviced.device-id=sel -o deviced.run-once=yes \
		    -o learn.fedsel-report=yes -o learn.adapt=none \
		    -o learn.retrieve-k=0 $SELECT_OPTS >"$OUT/select$k.log" 2>&1 &
		spids="$spids $!"
	done
	for sp in $spids; do
		wait "$sp" || { echo "selection round failed"; tail -5 "$OUT"/select*.log; exit 1; }
	done
	printf "selection round: %.2f s, %d reports\n" \
	    "$(echo "$(date +%s.%N) - $ts" | bc)" \
	    "$(cat "$OUT"/select*.log | grep -c 'REPORTED: device=' || true)"
fi
# Every process's shard directory first, with one ln per directory: one
# ln per user cost ~12 s per 250 users under load and started the
# deviceds minutes apart, which the device phase then counted.
for g in "$OUT"/group.*; do
	p=$((p + 1))
	mkdir -p "$OUT/shards$p"
	sed "s|.*|$SHARDS/&.local.csv|" "$g" | xargs ln -sf -t "$OUT/shards$p"
	sed "s|.*|$SHARDS/&.test.csv|" "$g" | while read -r f; do
		[ -f "$f" ] && echo "$f"
	done | xargs -r ln -sf -t "$OUT/shards$p"
done
[ -n "${SELECT_OPTS:-}" ] || td=$(date +%s.%N)	# (a selection round counts)
echo "devices start: $td"
p=0
for g in "$OUT"/group.*; do
	p=$((p + 1))
	: >"$OUT/deviced$p.log"
	run_deviced -o deviced.cloud="$EP" -o deviced.cloud-pub="$PUB" \
	    -o deviced.shards="$OUT/shards$p" -o deviced.data-dir="$OUT/dev" \
	    -o deviced.run-once=yes ${DEVICED_OPTS:-} &
	PIDS="$PIDS $!"
	eval "DP$p=$!"
done
rc=0
for k in $(seq 1 $p); do
	eval "pid=\$DP$k"
	wait "$pid" || { echo "deviced $k failed"; tail -5 "$OUT/deviced$k.log"; rc=1; }
done
t1=$(date +%s.%N)
printf "device phase: %.2f s\n" "$(echo "$t1 - $td" | bc)"
peak=$(grep VmHWM /proc/$CPID/status | awk '{print $2}')

echo "== summary"
"$BIN/dcctl" -s "$ADM" status
cat "$OUT"/deviced*.log | awk -v n="$n" '
/TRAIN: device=/ {
	for (i = 1; i <= NF; i++) if ($i ~ /^device=/) d = substr($i, 8)
	loc[d] = $0; sub(/.*device=[^ ]* /, "", loc[d]); sub(/ samples.*/, "", loc[d])
	if ($0 ~ /patch adopted/) { adopt++; st[d] = "adopted" } else st[d] = "kept cloud"
	v = $0; sub(/.*val logloss /, "", v); sub(/,.*/, "", v); vl[d] = v
	ms = $0; sub(/.* /, "", ms); t = $(NF-1); tm[d] = t; tsum += t
}
/DONE: device=/ {
	for (i = 1; i <= NF; i++) if ($i ~ /^device=/) d = substr($i, 8)
	up[d] = $(NF-4); down[d] = $(NF-1); tu += $(NF-4); td += $(NF-1); done++
	order[done] = d
}
END {
	printf "%-12s %-26s %-17s %-11s %8s %9s %9s\n", "device", "samples (local + pool)",
	    "val logloss", "decision", "train ms", "bytes up", "bytes dn"
	for (k = 1; k <= done && k <= 12; k++) { d = order[k]
		printf "%-12s %-26s %-17s %-11s %8s %9d %9d\n", d, loc[d], vl[d], st[d], tm[d], up[d], down[d] }
	if (done > 12) printf "... %d more\n", done - 12
	printf "devices done: %d of %d; patches adopted: %d; mean train %.1f ms; " \
	    "mean bytes up %.0f, down %.0f\n", done, n, adopt, tsum / (done ? done : 1),
	    tu / (done ? done : 1), td / (done ? done : 1)
}'
printf "round time: %.2f s for %d devices in %d deviced process(es); cloudd peak RSS %d KiB\n" \
    "$(echo "$t1 - $t0" | bc)" "$n" "$p" "$peak"
kill -TERM $CPID
wait $CPID || rc=1
grep -q "EXIT: clean shutdown" "$OUT/cloudd.log" && echo "cloudd stopped cleanly" || rc=1
echo "output: $OUT"
exit $rc
