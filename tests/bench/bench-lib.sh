# bench-lib.sh: what the cloudd benchmark scripts share (bench_rpc.sh,
# bench_download.sh). Source it after setting BENCH_NAME; it resolves
# ROOT and BIN, makes the temp dir T, and installs a trap that stops only
# the processes whose ids are in PIDS and removes T (KEEP=1 keeps it).

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${DCCL_BIN:-bin}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
export OPENBLAS_NUM_THREADS=1

# bench_need PROGRAM...: builds the programs missing from BIN.
bench_need() {
	for b in "$@"; do
		[ -x "$BIN/$b" ] || make -C "$ROOT" --no-print-directory \
		    "bin/$b" >/dev/null
	done
}

T=$(mktemp -d "${TMPDIR:-/tmp}/dccl-$BENCH_NAME.XXXXXX")
PIDS=""
cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	sleep 0.5
	for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

die() {
	echo "$BENCH_NAME.sh: FAIL: $*"
	for f in "$T"/*.log; do
		[ -f "$f" ] && { echo "== $f"; tail -n 20 "$f"; }
	done
	exit 1
}

# wait_log FILE PATTERN SECONDS PID: polls FILE for PATTERN while PID lives.
wait_log() {
	i=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		kill -0 "$4" 2>/dev/null || die "$(basename "$1" .log) exited"
		i=$((i + 1))
		[ $i -le $(($3 * 10)) ] || die "no '$2' in $1 after $3 s"
		sleep 0.1
	done
}

# ports N: N distinct free loopback ports, held together while chosen.
ports() {
	python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1" 2>/dev/null &&
	    return
	b=$((30000 + $$ % 20000))
	seq -s ' ' $b $((b + $1 - 1))
}

# model_pool DIR: the pool of the download figures (1000 users, 63500
# items), whose model at train.dim=256 packs to ~64 MiB.
model_pool() {
	"$BIN/dccl-data" synth "$1" --users 1000 --items 63500 \
	    --min-per-user 30 --max-per-user 60 --seed 3 >/dev/null ||
	    die "dccl-data synth (model pool) failed"
}

# db_copy FROM_DIR TO_DIR: an online copy of a cloudd database (same
# model, same checksum, no second training).
db_copy() {
	mkdir -p "$2"
	chmod 700 "$2"
	sqlite3 "$1/cloudd.db" ".timeout 10000" ".backup '$2/cloudd.db'" ||
	    die "sqlite3 .backup failed"
	chmod 600 "$2/cloudd.db"
}
