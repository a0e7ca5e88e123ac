#!/bin/sh
# bench_replicas.sh: the PostgreSQL store and several cloudd replicas.
#
#   1. Pool import: `cloudd --import` of the same synthetic CSV (ROWS rows,
#      default 500000) into SQLite and into PostgreSQL (binary COPY in one
#      transaction); the rows/s of each IMPORT line (CSV parsing included,
#      the same on both sides).
#   2. Small-request throughput with 1, 2 and 3 replicas on one PostgreSQL
#      database: bin/bench_replicas with 16 clients, each a REQ socket
#      connected to every replica (as deviced is), for BENCH_SECS seconds
#      (default 3) per figure: GetStatus (memory only) and RegisterReq (one
#      committed upsert in the shared store per request).
# The server is a throwaway one (scripts/pg-test-server.sh, durable: fsync
# on, synchronous_commit on), on a unix socket on this machine; it shares
# the machine's cores with the replicas and the clients, so on 2 cores the
# replica figures measure contention more than scale-out (see the README's
# "Deployment: several replicas"). Only the processes started here are
# stopped. Exits 77 when PostgreSQL is not installed.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${DCCL_BIN:-bin}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
SECS=${BENCH_SECS:-3}
ROWS=${ROWS:-500000}
export OPENBLAS_NUM_THREADS=1

for b in cloudd dccl-data bench_replicas; do
	[ -x "$BIN/$b" ] || make -C "$ROOT" --no-print-directory "bin/$b" \
	    >/dev/null
done

T=$(mktemp -d "${TMPDIR:-/tmp}/dccl-bench-rep.XXXXXX")
PIDS=""
PGDIR=""
cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	sleep 0.5
	for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
	[ -n "$PGDIR" ] && sh "$ROOT/scripts/pg-test-server.sh" stop "$PGDIR"
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

die() {
	echo "bench_replicas.sh: FAIL: $*"
	for f in "$T"/*.log; do
		[ -f "$f" ] && { echo "== $f"; tail -n 20 "$f"; }
	done
	exit 1
}

PGDIR=$(sh "$ROOT/scripts/pg-test-server.sh" start durable) || {
	rc=$?
	echo "$PGDIR"
	PGDIR=""
	exit $rc
}
PGC="host=$PGDIR user=dccl dbname=postgres"
psql "$PGC" -qc "CREATE DATABASE imp" && psql "$PGC" -qc "CREATE DATABASE rep" ||
    die "createdb"

# --- 1. pool import ----------------------------------------------------------
users=$((ROWS / 100))
"$BIN/dccl-data" synth "$T/idata" --users "$users" --items 20000 \
    --min-per-user 100 --max-per-user 100 --seed 3 >/dev/null ||
    die "dccl-data synth failed"
rows_s() { sed -n 's/.*IMPORT: \([0-9]*\) rows .* in \([0-9.]*\) s (\([0-9]*\) rows\/s).*/\1 rows in \2 s: \3 rows\/s/p' "$1"; }
"$BIN/cloudd" -o cloudd.data-dir="$T/sq" --import "$T/idata/pool.csv" \
    >"$T/import-sqlite.log" 2>&1 || die "sqlite import"
echo "import sqlite:     $(rows_s "$T/import-sqlite.log")"
"$BIN/cloudd" -o cloudd.store=postgresql \
    -o "cloudd.pg-conninfo=host=$PGDIR user=dccl dbname=imp" \
    -o cloudd.data-dir="$T/pg" --import "$T/idata/pool.csv" \
    >"$T/import-pg.log" 2>&1 || die "postgresql import"
echo "import postgresql: $(rows_s "$T/import-pg.log")"

# --- 2. replicas -------------------------------------------------------------
RPG="host=$PGDIR user=dccl dbname=rep"
"$BIN/dccl-data" synth "$T/rdata" --users 200 --items 300 \
    --min-per-user 20 --max-per-user 30 --seed 5 >/dev/null ||
    die "dccl-data synth failed"
"$BIN/cloudd" -o cloudd.store=postgresql -o "cloudd.pg-conninfo=$RPG" \
    -o cloudd.data-dir="$T/r0" --import "$T/rdata/pool.csv" \
    >"$T/import-rep.log" 2>&1 || die "replica pool import"
set -- $(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
EPS="tcp://127.0.0.1:$1 tcp://127.0.0.1:$2 tcp://127.0.0.1:$3"
PUBS="tcp://127.0.0.1:$4 tcp://127.0.0.1:$5 tcp://127.0.0.1:$6"
nth() { echo "$2" | cut -d' ' -f"$1"; }

echo "replicas: $(nproc) CPUs shared by PostgreSQL, the replicas and 16 clients"
for n in 1 2 3; do
	RP=""
	list=""
	for i in $(seq 1 $n); do
		ep=$(nth "$i" "$EPS")
		log="$T/r$n-$i.log"
		"$BIN/cloudd" -o cloudd.listen="$ep" \
		    -o cloudd.pub-listen="$(nth "$i" "$PUBS")" \
		    -o cloudd.admin-listen="ipc://$T/adm$i.ipc" \
		    -o cloudd.data-dir="$T/r$i" -o cloudd.store=postgresql \
		    -o "cloudd.pg-conninfo=$RPG" -o auth.mode=off \
		    -o train.epochs=1 -o limits.rate=0 >"$log" 2>&1 &
		RP="$RP $!"
		PIDS="$PIDS $!"
		list="$list${list:+,}$ep"
	done
	for i in $(seq 1 $n); do
		log="$T/r$n-$i.log"
		j=0
		until grep -qE 'POOL: .* vectors of v1|TRAIN: model v1' "$log" 2>/dev/null; do
			j=$((j + 1))
			[ $j -le 600 ] || die "replica $i of $n has no v1 pool"
			sleep 0.1
		done
	done
	for m in status register; do
		"$BIN/bench_replicas" -e "$list" -c 16 -d "$SECS" -m "$m" ||
		    die "bench_replicas $m with $n replicas"
	done
	for p in $RP; do kill -TERM "$p"; done
	for p in $RP; do wait "$p" || true; done
done
