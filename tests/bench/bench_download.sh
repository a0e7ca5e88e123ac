#!/bin/sh
# bench_download.sh: authenticated model download from cloudd
# (tests/bench/bench_download.c says what is measured and how).
#
#   1. dccl-data synth writes the model pool of bench_rpc.sh (1000 users,
#      63500 items); a cloudd trains with train.dim=256 and
#      train.epochs=1 (a packed model of ~64 MiB) and stops.
#   2. A cloudd serves a copy of that database with the shipped defaults
#      (auth.mode=mac, 1 MiB chunks, limits.*) on tcp.
#   3. With BENCH_PEER_CLOUDD=/path/to/another/cloudd (for example the
#      build before a change), a second cloudd of that binary serves a copy
#      of the same database, and every figure alternates between the two.
#      When the peer speaks another protocol version, BENCH_PEER_CLIENT
#      names its own bench_download: then each run is one process of each
#      client in turn (A B A B ...), and the script prints the medians and
#      the median and range of the pairwise ratios. Before each peer run
#      it waits BENCH_PEER_PAUSE_S (2): an older client re-uses one device
#      id, whose rate-limit bucket must refill between runs.
#   4. bin/bench_download: one client, then BENCH_CLIENTS (4) at once,
#      BENCH_RUNS (5) runs (pairs) each, for each chunk-request window in
#      BENCH_WINDOWS ("2 1"; 2, as deviced since protocol 8, asks for the
#      next chunk as soon as this one arrived and then checks this one,
#      inline with BENCH_THREADS 0 (the default, as deviced) or on that
#      many threads; 1 asks once this one is checked: bench_download.c);
#      BENCH_CLIENT_ARGS go to this build's client (e.g. "-H blake2b").
#      Then each cloudd's peak RSS (VmHWM) and its SEAL line (chunk bytes
#      shared / copied).
# Only the processes started here are stopped (trap).
set -eu

BENCH_NAME=bench_download
. "$(dirname "$0")/bench-lib.sh"
PEER=${BENCH_PEER_CLOUDD:-}
export DCCL_AUTH_TOKEN=bench-download-token
bench_need cloudd dccl-data bench_download

set -- $(ports 4)
A_TCP=tcp://127.0.0.1:$1 A_PUB=tcp://127.0.0.1:$2
B_TCP=tcp://127.0.0.1:$3 B_PUB=tcp://127.0.0.1:$4

model_pool "$T/mdata"
"$BIN/cloudd" -o cloudd.data-dir="$T/t" --import "$T/mdata/pool.csv" \
    >"$T/t-import.log" 2>&1 || die "cloudd --import failed"
# Trained by a cloudd of its own, so the peak RSS of the two measured
# below is that of serving, not of training.
"$BIN/cloudd" -o cloudd.listen="$A_TCP" -o cloudd.pub-listen="$A_PUB" \
    -o cloudd.admin-listen="ipc://$T/t-admin.ipc" -o cloudd.data-dir="$T/t" \
    -o train.dim=256 -o train.epochs=1 -o ofa.enable=no >"$T/t.log" 2>&1 &
TPID=$!
PIDS="$PIDS $TPID"
wait_log "$T/t.log" "ANNOUNCE: model v" 300 $TPID
sed -n 's/.*\(ANNOUNCE: .*\)/cloudd: \1/p' "$T/t.log"
kill -TERM $TPID
wait $TPID || die "the training cloudd did not exit cleanly"
PIDS=""
db_copy "$T/t" "$T/a"
db_copy "$T/t" "$T/b"
"$BIN/cloudd" -o cloudd.listen="$A_TCP" -o cloudd.pub-listen="$A_PUB" \
    -o cloudd.admin-listen="ipc://$T/a-admin.ipc" -o cloudd.data-dir="$T/a" \
    -o ofa.enable=no >"$T/a.log" 2>&1 &
APID=$!
PIDS="$PIDS $APID"
wait_log "$T/a.log" "POOL: " 60 $APID
! grep -q "TRAIN: started" "$T/a.log" || die "cloudd retrained"
PEER_ARGS=""
if [ -n "$PEER" ]; then
	"$PEER" -o cloudd.listen="$B_TCP" -o cloudd.pub-listen="$B_PUB" \
	    -o cloudd.admin-listen="ipc://$T/b-admin.ipc" \
	    -o cloudd.data-dir="$T/b" -o ofa.enable=no >"$T/b.log" 2>&1 &
	BPID=$!
	PIDS="$PIDS $BPID"
	wait_log "$T/b.log" "POOL: " 60 $BPID
	! grep -q "TRAIN: started" "$T/b.log" || die "the peer retrained"
	PEER_ARGS="-E $B_TCP"
	echo "peer: $PEER on a copy of the database"
fi
mkdir -p "$T/keys"
rc=0
PCLI=${BENCH_PEER_CLIENT:-}
for w in ${BENCH_WINDOWS:-2 1}; do
	if [ -z "$PCLI" ]; then
		"$BIN/bench_download" -e "$A_TCP" $PEER_ARGS -k "$T/keys" \
		    -r "${BENCH_RUNS:-5}" -P "${BENCH_CLIENTS:-4}" -W "$w" \
		    -T "${BENCH_THREADS:-0}" ${BENCH_CLIENT_ARGS:-} || rc=1
		continue
	fi
	# A peer of another protocol: its own client, one process per run.
	: >"$T/pairs"
	for i in $(seq "${BENCH_RUNS:-5}"); do
		a=$("$BIN/bench_download" -e "$A_TCP" -k "$T/keys" -r 1 -P 1 \
		    -W "$w" -T "${BENCH_THREADS:-0}" ${BENCH_CLIENT_ARGS:-} |
		    sed -n 's/.*1 client: \([0-9.]*\) MB.*/\1/p')
		mkdir -p "$T/keys-b"
		# The peer client may reuse one device id for every run (the
		# builds before protocol 5 did): let its rate-limit bucket
		# (limits.burst, limits.rate) refill first.
		sleep "${BENCH_PEER_PAUSE_S:-2}"
		b=$("$PCLI" -e "$B_TCP" -k "$T/keys-b" -r 1 -P 1 |
		    sed -n 's/.*1 client: \([0-9.]*\) MB.*/\1/p')
		[ -n "$a" ] && [ -n "$b" ] || { rc=1; break; }
		echo "$a $b" >>"$T/pairs"
	done
	python3 - "$T/pairs" "$w" <<'PY'
import statistics as st, sys
p = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
if p:
    q = [a / b for a, b in p]
    print("download auth mac, window %s, 1 client: %.0f MB/s (median of %d "
          "runs); peer client and cloudd %.0f MB/s; pairwise ratio median "
          "%.2f [%.2f, %.2f] over %d alternating pairs" % (sys.argv[2],
          st.median(a for a, _ in p), len(p), st.median(b for _, b in p),
          st.median(q), min(q), max(q), len(p)))
PY
done
for p in $PIDS; do
	[ "$p" = "$APID" ] && w=cloudd || w=peer
	echo "$w: peak RSS $(awk '/VmHWM/ { printf "%.0f MiB", $2 / 1024 }' \
	    "/proc/$p/status")"
done
kill -TERM $PIDS
for p in $PIDS; do wait "$p" || rc=1; done
PIDS=""
grep -h "SEAL:" "$T"/a.log | sed 's/^/cloudd: /'
[ -z "$PEER" ] || grep -h "SEAL:" "$T"/b.log | sed 's/^/peer: /'
grep -h "RPC-ERROR" "$T"/*.log | head -5
[ $rc = 0 ] || die "bench_download failed"
exit 0
