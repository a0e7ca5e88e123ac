#!/bin/sh
# bench_rpc.sh: RPC, model download and pool import figures of cloudd
# (tests/bench/bench_rpc.c says what is measured and how).
#
# Everything runs in a temp dir on loopback, with its own ports and ipc
# paths:
#   1. dccl-data synth writes two pools: a "model" pool (1000 users, 63500
#      items) and a 1M-row "import" pool (10000 users x 100 samples).
#   2. cloudd A imports the model pool and trains at start with train.dim=256
#      and train.epochs=1: the embedding tables, (1001 + 63501) x 256 floats,
#      make a packed model of ~64 MiB. A listens on tcp and ipc with the
#      256 KiB chunks (the default before protocol 6).
#   3. cloudd B gets an online copy of A's database (sqlite3 .backup: same
#      model, same checksum, no second training) and serves 1 MiB chunks
#      (limits.max-message raised to 2 MiB).
#   4. bin/bench_rpc measures GetStatus rt/s against both transports of A
#      and against its own bare nanomsg echo server, downloads the model
#      from A and B over tcp and ipc, and times `cloudd --import` of the 1M
#      rows into a fresh database.
# Only the processes started here are stopped (trap). BENCH_SECS sets the
# seconds per GetStatus figure (default 3). The run takes about a minute
# on 2 cores. Exits 0 when every figure was measured and checked.
set -eu

BENCH_NAME=bench_rpc
. "$(dirname "$0")/bench-lib.sh"
SECS=${BENCH_SECS:-3}
bench_need cloudd dcctl dccl-data bench_rpc

set -- $(ports 5)
A_TCP=tcp://127.0.0.1:$1 A_PUB=tcp://127.0.0.1:$2
B_TCP=tcp://127.0.0.1:$3 B_PUB=tcp://127.0.0.1:$4
BARE_TCP=tcp://127.0.0.1:$5
A_IPC=ipc://$T/a.ipc B_IPC=ipc://$T/b.ipc BARE_IPC=ipc://$T/bare.ipc

echo "data: synthetic pools in $T"
model_pool "$T/mdata"
"$BIN/dccl-data" synth "$T/idata" --users 10000 --items 5000 \
    --min-per-user 100 --max-per-user 100 --fractions 1,0,0 --seed 5 \
    >/dev/null || die "dccl-data synth (import pool) failed"

# The raw clients of bench_rpc.c do not sign (the figures compare with a
# bare nanomsg echo): authentication off; make loadtest measures it on.
"$BIN/cloudd" -o cloudd.data-dir="$T/a" --import "$T/mdata/pool.csv" \
    >"$T/a-import.log" 2>&1 || die "cloudd --import (model pool) failed"
"$BIN/cloudd" -o cloudd.listen="$A_TCP,$A_IPC" -o cloudd.pub-listen="$A_PUB" \
    -o cloudd.admin-listen="ipc://$T/a-admin.ipc" -o cloudd.data-dir="$T/a" \
    -o train.dim=256 -o train.epochs=1 -o auth.mode=off \
    -o limits.chunk-size=262144 >"$T/a.log" 2>&1 &
PIDS="$PIDS $!"
APID=$!
t0=$(date +%s)
wait_log "$T/a.log" "ANNOUNCE: model v" 240 $APID
echo "cloudd A: model trained in $(($(date +%s) - t0)) s;" \
    "$(sed -n 's/.*\(TRAIN: [0-9]* train.*\)/\1/p' "$T/a.log")"
"$BIN/dcctl" -s "ipc://$T/a-admin.ipc" -t 20 models | awk 'NR == 2 {
	printf "model: v%s, %d bytes packed (%.2f MiB)\n", $1, $3, $3 / 1048576
}'

db_copy "$T/a" "$T/b"
"$BIN/cloudd" -o cloudd.listen="$B_TCP,$B_IPC" -o cloudd.pub-listen="$B_PUB" \
    -o cloudd.admin-listen="ipc://$T/b-admin.ipc" -o cloudd.data-dir="$T/b" \
    -o limits.chunk-size=1048576 -o limits.max-message=2097152 \
    -o auth.mode=off >"$T/b.log" 2>&1 &
PIDS="$PIDS $!"
BPID=$!
wait_log "$T/b.log" "POOL: " 60 $BPID
grep -q "MODEL: loaded v" "$T/b.log" || die "cloudd B has no model"
! grep -q "TRAIN: started" "$T/b.log" || die "cloudd B retrained"
echo "cloudd B: same database, 1 MiB chunks"

echo "bench_rpc: $SECS s per GetStatus figure"
rc=0
"$BIN/bench_rpc" -t "$A_TCP" -i "$A_IPC" -T "$B_TCP" -I "$B_IPC" \
    -b "$BARE_TCP" -B "$BARE_IPC" -u 0 -d "$SECS" \
    -x "$BIN/cloudd" -p "$T/idata/pool.csv" -D "$T/import" || rc=1

kill -TERM $APID $BPID
for p in $APID $BPID; do wait "$p" || rc=1; done
PIDS=""
for f in a b; do
	grep -q "EXIT: clean shutdown" "$T/$f.log" ||
	    { echo "cloudd $f: no clean shutdown"; rc=1; }
done
grep -h "RPC-ERROR\|warn" "$T/a.log" "$T/b.log" | head -5
[ $rc = 0 ] || die "bench_rpc failed"
exit 0
