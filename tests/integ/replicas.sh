# Three cloudd replicas on one PostgreSQL store (a throwaway server started
# here by scripts/pg-test-server.sh) and a deviced whose REQ socket connects
# to all three and whose SUB socket connects to every replica's PUB.
#   1. The leader (advisory lock) trains v1; every replica announces it.
#   2. A round of 80 devices: requests spread over the replicas (a device
#      registered on one is known to all); one replica is killed with SIGKILL
#      mid-round; the round still completes, and every patch a device saw
#      acknowledged is in the store.
#   3. dcctl enroll through the leader; the pre-enrolled device, with no
#      token, does a round on another replica alone.
#   4. dcctl train on a follower queues a task; the leader starts it and is
#      killed with SIGKILL mid-training; the surviving replica takes the
#      leader lock, runs the task again and makes v2, which it announces.
# Authentication is on (auth.mode=mac, one enrollment token for all): the
# cloud key pair and the device keys live in the shared store, so all three
# replicas answer with the same cloud key (the first to start made it),
# a device enrolled through one replica is recognised by the others, and
# counters are checked per replica and max-merged into the store.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
pg_server
TOKEN=replica-test-token-$$

make_data 80 40
log "import into postgresql"
import_pool -o cloudd.store=postgresql -o "cloudd.pg-conninfo=$PGC"
[ "$(psqlq 'SELECT count(*) FROM pool')" -gt 0 ] || die "empty pool"

# start_replica I [options]: endpoints EP<I>/PUB<I>, admin $T/adm<I>.ipc.
start_replica() {
	i=$1; shift
	eval "ep=\$EP$i pub=\$PUB$i"
	"$BIN/cloudd" -o cloudd.listen="$ep" -o cloudd.pub-listen="$pub" \
	    -o cloudd.admin-listen="ipc://$T/adm$i.ipc" \
	    -o cloudd.data-dir="$T/c$i" -o cloudd.store=postgresql \
	    -o "cloudd.pg-conninfo=$PGC" -o cloudd.cron-ms=200 \
	    -o auth.mode=mac -o "auth.token=$TOKEN" \
	    -o train.epochs=3 -o train.patience=100 "$@" \
	    >>"$T/c$i.log" 2>&1 &
	eval "CP$i=$!"
	PIDS="$PIDS $!"
}
for i in 1 2 3; do
	eval "EP$i=tcp://127.0.0.1:$(free_port)"
	eval "PUB$i=tcp://127.0.0.1:$(free_port)"
done
for i in 1 2 3; do start_replica $i; done
# (wait_for counts in $i: loops around it use $r.)
for r in 1 2 3; do
	wait_for "grep -q 'READY: cloudd' '$T/c$r.log'" 100 0.1 || die "replica $r not ready"
done
leader() {	# the live replicas that logged leadership
	for r in 1 2 3; do
		eval "p=\$CP$r"
		kill -0 "$p" 2>/dev/null || continue
		if grep -q 'LEADER: this replica leads' "$T/c$r.log"; then
			echo "$r"
		fi
	done
	return 0
}
wait_for "[ -n \"\$(leader)\" ]" 100 0.1 || die "no leader"
L=$(leader)
[ "$(echo "$L" | wc -w)" = 1 ] || die "several leaders: $L"
log "leader: replica $L"
# A replica that started after v1 was stored loads it at start instead.
for r in 1 2 3; do
	wait_for "grep -qE 'ANNOUNCE: model v1|MODEL: loaded v1' '$T/c$r.log'" 300 0.1 ||
	    die "replica $r did not get v1"
done
[ "$(grep -l 'TRAIN: started' "$T"/c?.log | wc -l)" = 1 ] || die "v1 trained by more than one replica"
# Started together, the replicas share one cloud key pair: one made it.
[ "$(psqlq 'SELECT count(*) FROM cloud_key')" = 1 ] || die "cloud_key rows"
[ "$(grep -l 'AUTH: new cloud key pair' "$T"/c?.log | wc -l)" = 1 ] ||
    die "not exactly one replica made the cloud key"

log "round: 80 devices on 3 replicas; SIGKILL one mid-round"
# The devices start together (start-jitter 0), so all have enrolled
# before the kill: a replica SIGKILLed between its key commit and its
# AUTH-ENROLL line would leave 79 lines for 80 keys.
# Two deviced processes list the replicas in opposite orders: a REQ
# socket's first request goes to whichever connection is up first, so with
# one order the last replica would see little of a short round.
EP="$EP1,$EP2,$EP3" PUB="$PUB1,$PUB2,$PUB3"
start_deviced devs -o deviced.shards="$SHARDS" -o deviced.run-once=yes \
    -o deviced.devices=40 -o deviced.device-id=a -o auth.mode=mac \
    -o "auth.token=$TOKEN" \
    -o learn.steps=200 -o net.resend-ms=500 -o net.start-jitter-ms=0
DP1=$DPID
EP="$EP3,$EP2,$EP1" PUB="$PUB3,$PUB2,$PUB1"
start_deviced devs -o deviced.shards="$SHARDS" -o deviced.run-once=yes \
    -o deviced.devices=40 -o deviced.device-id=b -o auth.mode=mac \
    -o "auth.token=$TOKEN" \
    -o learn.steps=200 -o net.resend-ms=500 -o net.start-jitter-ms=0
DP2=$DPID
wait_for "[ \$(grep -c 'ACK: ' '$T/devs.log') -ge 15 ]" 600 0.02 || die "no first acks"
# The victim: the busier follower (the leader's fate is phase 3's).
served() { grep -cE 'UPLOAD: |REGISTER: |RETRIEVE' "$T/c$1.log" || true; }
V=0 best=-1
for i in 1 2 3; do
	[ "$i" = "$L" ] && continue
	n=$(served "$i")
	if [ "$n" -gt "$best" ]; then V=$i best=$n; fi
done
eval "VP=\$CP$V"
kill -9 "$VP"
wait "$VP" 2>/dev/null || true
acked_before=$(grep -c 'ACK: ' "$T/devs.log" || true)
log "killed replica $V after $acked_before acks; it had served $best requests"
[ "$best" -gt 0 ] || die "the victim had served nothing"
for p in $DP1 $DP2; do
	wait_for "! kill -0 $p 2>/dev/null" 600 0.1 || die "devices did not finish"
	rc=0; wait "$p" || rc=$?
	[ $rc = 0 ] || die "deviced exit $rc"
done
[ "$acked_before" -lt 80 ] || die "the round was over before the kill"
busy=0
for i in 1 2 3; do
	n=$(grep -c 'UPLOAD: ' "$T/c$i.log" || true)
	echo "replica $i: $n uploads, $(grep -c 'REGISTER: ' "$T/c$i.log" || true) registrations"
	[ "$n" -gt 0 ] && busy=$((busy + 1))
done
[ "$busy" -ge 2 ] || die "requests did not spread over the replicas"
grep 'ACK: ' "$T/devs.log" | sed 's/.*device=\([^ ]*\) req=\([0-9]*\).*/\1 \2/' |
while read -r dev req; do
	n=$(psqlq "SELECT count(*) FROM patches WHERE device_id='$dev' AND request_id=$req")
	[ "$n" = 1 ] || { echo "LOST: $dev $req"; exit 1; }
done || die "an acknowledged patch is missing"
total=$(psqlq "SELECT count(DISTINCT device_id) FROM patches")
[ "$total" = 80 ] || die "expected patches from 80 devices, got $total"
# Authentication across replicas: 80 keys enrolled once each; counters
# reached the store; no authenticated device was refused. (A REQ socket
# mostly stays on one replica while it lives, so how many devices another
# replica served varies; phase 3 checks a cross-replica device for sure.)
[ "$(psqlq 'SELECT count(*) FROM device_keys')" = 80 ] || die "device keys"
[ "$(cat "$T"/c?.log | grep -c 'AUTH-ENROLL: ')" = 80 ] || die "enrolment lines"
cross=0
for i in 1 2 3; do
	for dev in $(sed -n 's/.*AUTH-ENROLL: device=\([^ ]*\).*/\1/p' "$T/c$i.log"); do
		for j in 1 2 3; do
			[ "$j" = "$i" ] && continue
			if grep -q "UPLOAD: device=$dev " "$T/c$j.log"; then
				cross=$((cross + 1)); break
			fi
		done
	done
done
echo "devices that uploaded to a replica other than the one they enrolled through: $cross"
# A device re-sends an unanswered request (net.resend-ms) with a new
# counter; when the first send arrives after the re-send, its older
# counter is refused as a replay, which is right and which the device
# ignores. Any other authentication failure is a refusal.
grep -h 'RPC-ERROR: E_UNAUTHENTICATED\|RPC-ERROR: E_NOT_REGISTERED' "$T"/c?.log | head -5
grep 'RPC-ERROR: E_UNAUTHENTICATED' "$T"/c?.log | grep -vq 'replayed' &&
    die "a replica refused an enrolled device"
[ "$(psqlq 'SELECT count(*) FROM device_keys WHERE counter > 0')" -gt 0 ] ||
    die "no counter reached the store"

F=$((6 - L - V))	# the third replica
log "dcctl enroll through replica $L; the device, without a token, served by replica $F"
"$BIN/dcctl" -s "ipc://$T/adm$L.ipc" -t 20 enroll pre-1 -o "$T/pre-1.key" >/dev/null ||
    die "dcctl enroll"
mkdir -p "$T/dev/pre-1"
cp "$T/pre-1.key" "$T/dev/pre-1/auth.key"
u=$(ls "$SHARDS" | grep local | sort -n | head -1)
u=${u%%.*}
eval "EP=\$EP$F PUB=\$PUB$F"
tok_env=$DCCL_AUTH_TOKEN
unset DCCL_AUTH_TOKEN
start_deviced pre -o deviced.local-data="$SHARDS/$u.local.csv" -o deviced.user-id="$u" \
    -o deviced.device-id=pre-1 -o deviced.run-once=yes -o auth.mode=mac
export DCCL_AUTH_TOKEN="$tok_env"
rc=0; wait "$DPID" || rc=$?
[ $rc = 0 ] || die "pre-enrolled deviced exit $rc"
grep -q "ACK: device=pre-1 " "$T/pre.log" || die "pre-1: upload not acknowledged"
grep -q "REGISTER: device=pre-1 " "$T/c$F.log" || die "pre-1 not served by replica $F"
grep -q "AUTH-ENROLL: device=pre-1 .* by dcctl" "$T/c$L.log" || die "pre-1 not enrolled by $L"

log "leader takeover during training"
ep0=$(grep -c 'TRAIN: epoch ' "$T/c$L.log" || true)
"$BIN/dcctl" -s "ipc://$T/adm$F.ipc" -t 20 train 400 >/dev/null || die "dcctl train"
wait_for "grep -q 'TASK: .* started' '$T/c$L.log'" 100 0.1 || die "leader did not start the task"
# Mid-training: the task's first epoch is done.
wait_for "[ \$(grep -c 'TRAIN: epoch ' '$T/c$L.log') -gt $ep0 ]" 600 0.05 ||
    die "the task trained no epoch"
grep -q 'ANNOUNCE: model v2' "$T/c$L.log" && die "training ended before the kill; make it longer"
eval "LP=\$CP$L"
kill -9 "$LP"
wait "$LP" 2>/dev/null || true
log "killed leader $L; replica $F must take over"
wait_for "grep -q 'LEADER: this replica leads' '$T/c$F.log'" 100 0.1 || die "no takeover"
wait_for "grep -q 'TASK: .* done: made v2' '$T/c$F.log'" 600 0.1 || die "the task was not finished"
grep -q 'ANNOUNCE: model v2' "$T/c$F.log" || die "v2 not announced"
[ "$(psqlq 'SELECT count(*) FROM tasks WHERE done IS NULL')" = 0 ] || die "a task is pending"
[ "$(psqlq 'SELECT string_agg(version::text, $$,$$ ORDER BY version) FROM models')" = "1,2" ] ||
    die "models: $(psqlq 'SELECT version FROM models')"
# The follower survived everything and stops cleanly.
eval "FP=\$CP$F"
kill -TERM "$FP"
wait_for "! kill -0 $FP 2>/dev/null" 100 0.1 || die "replica $F did not stop"
grep -q "EXIT: clean shutdown" "$T/c$F.log" || die "no clean exit"
echo "replicas OK: leader $L, killed $V mid-round ($acked_before acks before), leader killed mid-training, $F took over and made v2"
