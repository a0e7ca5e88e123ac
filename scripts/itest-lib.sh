# Integration test helpers (sourced). Each scenario gets a temp dir, its own
# ports, and a trap that kills only the processes it started.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${DCCL_BIN:-bin}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
export OPENBLAS_NUM_THREADS=1
T=$(mktemp -d /tmp/dccl-itest.XXXXXX)
# Authentication is on by default: every daemon and probe of a scenario
# enrolls with this token (cloudd and deviced read $DCCL_AUTH_TOKEN when
# auth.token is not set); dccl-probe keeps its device keys in $T/probe.
DCCL_AUTH_TOKEN=${DCCL_AUTH_TOKEN:-itest-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')}
DCCL_PROBE_DIR=$T/probe
export DCCL_AUTH_TOKEN DCCL_PROBE_DIR
PIDS=""
cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT INT TERM

log() { echo "--- $*"; }
die() { echo "FAIL: $*"; for f in "$T"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -n 30 "$f"; }; done; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

# A free TCP port (asks the kernel, then releases it: another process may
# take it before we bind, so start_cloudd re-picks its ports on a BIND
# failure).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
	    echo $(( 20000 + $$ % 20000 + ${1:-0} ))
}

# wait_for COND_CMD TRIES DELAY_S: polls a shell condition.
wait_for() {
	i=0
	while [ $i -lt "$2" ]; do
		if eval "$1"; then return 0; fi
		sleep "$3"; i=$((i + 1))
	done
	return 1
}

# Endpoints: TRANSPORT=tcp (default) or ipc.
endpoints() {
	if [ "${TRANSPORT:-tcp}" = ipc ]; then
		EP="ipc://$T/cloudd.ipc"; PUB="ipc://$T/pub.ipc"
	else
		EP="tcp://127.0.0.1:$(free_port 1)"; PUB="tcp://127.0.0.1:$(free_port 2)"
	fi
	ADM="ipc://$T/admin.ipc"
}

# start_cloudd [extra -o options...]: logs to $T/cloudd.log, sets CPID.
# Waits for a READY line of this start, not of an earlier one. On a first
# start whose TCP port was taken meanwhile, picks new ports (3 tries).
start_cloudd() {
	touch "$T/cloudd.log"
	n0=$(grep -c 'READY: cloudd' "$T/cloudd.log" || true)
	for try in 1 2 3; do
		b0=$(grep -c 'BIND: ' "$T/cloudd.log" 2>/dev/null || true)
		"$BIN/cloudd" -o cloudd.listen="$EP" -o cloudd.pub-listen="$PUB" \
		    -o cloudd.admin-listen="$ADM" -o cloudd.data-dir="$T/cloud" \
		    -o train.epochs=3 "$@" >>"$T/cloudd.log" 2>&1 &
		CPID=$!
		PIDS="$PIDS $CPID"
		wait_for "[ \$(grep -c 'READY: cloudd' '$T/cloudd.log') -gt ${n0:-0} ] ||
		    ! kill -0 $CPID 2>/dev/null" 100 0.1 || die "cloudd not ready"
		[ "$(grep -c 'READY: cloudd' "$T/cloudd.log")" -gt "${n0:-0}" ] &&
		    return 0
		[ "${n0:-0}" = 0 ] && [ "${TRANSPORT:-tcp}" = tcp ] &&
		    [ "$(grep -c 'BIND: ' "$T/cloudd.log")" -gt "${b0:-0}" ] ||
		    die "cloudd exited before READY"
		log "port taken; new ports (try $try)"
		endpoints
	done
	die "cloudd could not bind"
}

# start_deviced NAME [extra -o options...]: logs to $T/NAME.log, sets DPID.
start_deviced() {
	name=$1; shift
	"$BIN/deviced" -o deviced.cloud="$EP" -o deviced.cloud-pub="$PUB" \
	    -o deviced.data-dir="$T/dev" -o net.request-timeout-ms=2000 \
	    -o net.resend-ms=1000 -o net.backoff-max-ms=1000 "$@" \
	    >>"$T/$name.log" 2>&1 &
	DPID=$!
	PIDS="$PIDS $DPID"
}

# pg_server: a throwaway PostgreSQL server for the scenario
# (scripts/pg-test-server.sh), stopped on exit; the test is skipped where
# none can run. Sets PGDIR and PGC (its conninfo); psqlq SQL prints one
# query's rows, unaligned.
pg_server() {
	PGDIR=$(sh "$ROOT/scripts/pg-test-server.sh" start) || {
		[ $? = 77 ] && skip "PostgreSQL cannot be run here: $PGDIR"
		die "cannot start a PostgreSQL server: $PGDIR"
	}
	trap pg_cleanup EXIT INT TERM
	PGC="host=$PGDIR user=dccl dbname=postgres"
}
pg_cleanup() {
	cleanup
	sh "$ROOT/scripts/pg-test-server.sh" stop "$PGDIR"
}
psqlq() { psql "$PGC" -Atqc "$1"; }

dcctl() { "$BIN/dcctl" -s "$ADM" -t 20 "$@"; }
# dcctl, retried while cloudd answers E_BUSY (right after READY the pool
# may still be loading); any other error fails the test. Sets $out.
dcctl_busy() {
	i=0
	until out=$(dcctl "$@" 2>&1); do
		echo "$out" | grep -q E_BUSY || die "dcctl $*: $out"
		i=$((i + 1)); [ $i -lt 100 ] || die "still busy: $out"
		sleep 0.1
	done
}
sql() { sqlite3 "$T/cloud/cloudd.db" "$1"; }

# Waits for a model version >= $1 to be announced.
wait_model() {
	wait_for "grep -q 'ANNOUNCE: model v$1' '$T/cloudd.log'" 600 0.1 || die "no model v$1"
}

# The distillation that made v$1 from v$2 changed the weights: its result
# line has soft samples from teachers, best epoch >= 1 and a lower
# validation logloss.
distill_accepted() {
	line=$(grep "DISTILL: model v$1 from v$2: " "$T/cloudd.log") ||
	    die "no DISTILL result line for v$1"
	echo "$line" | sed 's/.*DISTILL: /  /'
	echo "$line" | awk '{
	    for (i = 1; i <= NF; i++) {
		if ($i == "soft") soft = $(i - 1)
		if ($i == "logloss") { a = $(i + 1); b = $(i + 3) }
		if ($i == "epoch") best = $(i + 1)
	    }
	    exit !(soft > 0 && best >= 1 && b < a) }' ||
	    die "v$1 is not a distillation that changed the weights: $line"
}

# Imports $T/data/pool.csv into $T/cloud; more cloudd arguments follow it.
import_pool() {
	"$BIN/cloudd" -o cloudd.data-dir="$T/cloud" --import "$T/data/pool.csv" \
	    "$@" >"$T/import.log" 2>&1 || die "import failed"
}

# A small dataset: pool.csv and shards/ from the synthetic generator.
make_data() {	# users [samples-per-user]
	"$BIN/dccl-data" synth "$T/data" --users "$1" --items 300 \
	    --min-per-user "${2:-40}" --max-per-user "${2:-60}" --seed 7 >/dev/null \
	    || die "dccl-data synth failed"
	SHARDS=$T/data/devices
}
