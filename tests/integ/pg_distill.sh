# Distillation's trigger on two cloudd replicas sharing one PostgreSQL
# store (a throwaway server from scripts/pg-test-server.sh). Only the
# leader distils, and which patches a run used is kept in the store:
#   1. The devices talk to the follower alone; the leader, which takes no
#      upload, still counts their patches (dccl_patches, every 5 s) and
#      their 4 users, and starts a run
#      (distill.min-patches=4). v1 is trained to convergence and distilled
#      at ten times the default rate, so the run keeps v1 (as in
#      distill_kept.sh) and the patches stay on the current version.
#   2. The leader is stopped; the follower takes the lead and starts no
#      run on the patches the first run used (they would count again if
#      the record lived in the old leader's memory).
#   3. 4 new users start the next run on the new leader.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
pg_server

make_data 8 60
import_pool -o cloudd.store=postgresql -o "cloudd.pg-conninfo=$PGC"
mkdir -p "$T/A" "$T/B"
n=0
for f in "$SHARDS"/*.local.csv; do
	d=$T/A; [ $n -ge 4 ] && d=$T/B
	ln -s "$f" "$d/"
	n=$((n + 1))
done
[ $n = 8 ] || die "$n device shards"

# start_replica I: endpoints EP<I>/PUB<I>, admin $T/adm<I>.ipc.
start_replica() {
	i=$1
	eval "ep=\$EP$i pub=\$PUB$i"
	"$BIN/cloudd" -o cloudd.listen="$ep" -o cloudd.pub-listen="$pub" \
	    -o cloudd.admin-listen="ipc://$T/adm$i.ipc" \
	    -o cloudd.data-dir="$T/c$i" -o cloudd.store=postgresql \
	    -o "cloudd.pg-conninfo=$PGC" -o cloudd.cron-ms=200 \
	    -o ofa.enable=no -o train.epochs=20 -o distill.lr=0.005 \
	    -o distill.min-patches=4 >>"$T/c$i.log" 2>&1 &
	eval "CP$i=$!"
	PIDS="$PIDS $!"
}
for i in 1 2; do
	eval "EP$i=tcp://127.0.0.1:$(free_port)"
	eval "PUB$i=tcp://127.0.0.1:$(free_port)"
done
# Replica 1 starts first, so it leads.
start_replica 1
wait_for "grep -q 'LEADER: this replica leads' '$T/c1.log'" 100 0.1 || die "replica 1 does not lead"
start_replica 2
for r in 1 2; do
	wait_for "grep -qE 'ANNOUNCE: model v1|MODEL: loaded v1' '$T/c$r.log'" 600 0.1 ||
	    die "replica $r did not get v1"
done
grep -q 'LEADER: this replica leads' "$T/c2.log" && die "two leaders"
runs() { grep -c "DISTILL: started on" "$T/c$1.log" || true; }
kept() { grep -c "DISTILL: v1 kept: .*; no new version" "$T/c$1.log" || true; }

log "4 users upload to the follower only"
EP="$EP2" PUB="$PUB1,$PUB2"
start_deviced A -o deviced.shards="$T/A" -o learn.guard-z=0 \
    -o learn.guard-rank=no
wait_for "[ \$(kept 1) -ge 1 ]" 600 0.1 || die "the leader ran no distillation"
grep -q "DISTILL: automatic run: 4 users with a patch on v1 (distill.min-patches reached)" \
    "$T/c1.log" || die "run: $(grep 'DISTILL: automatic run' "$T/c1.log")"
[ "$(grep -c 'UPLOAD: ' "$T/c1.log" || true)" = 0 ] || die "the leader took uploads"
[ "$(grep -c 'UPLOAD: ' "$T/c2.log" || true)" -ge 4 ] || die "the follower took no uploads"
[ "$(psqlq 'SELECT count(*) FROM patches WHERE distilled = 1')" -ge 4 ] ||
    die "used patches not recorded: $(psqlq 'SELECT id, distilled FROM patches')"
grep "DISTILL: v1 kept: " "$T/c1.log" | sed 's/.*DISTILL: /  /'
# The leader's dccl_patches follows the store's count within 5 s.
np=$(psqlq 'SELECT count(*) FROM patches')
lp() { "$BIN/dcctl" -s "ipc://$T/adm1.ipc" -t 20 metrics | sed -n 's/^dccl_patches //p'; }
wait_for "[ \"\$(lp)\" = $np ]" 100 0.1 || die "leader's dccl_patches $(lp), store $np"

log "the leader stops; the follower takes the lead"
kill -TERM "$CP1"
wait "$CP1" || die "replica 1 exit"
wait_for "grep -q 'LEADER: this replica leads' '$T/c2.log'" 100 0.1 || die "no takeover"
sleep 3		# 15 cron ticks
[ "$(runs 2)" = 0 ] || die "the new leader ran again on the used patches"

log "4 new users"
start_deviced B -o deviced.shards="$T/B" -o learn.guard-z=0 \
    -o learn.guard-rank=no
wait_for "[ \$(kept 2) -ge 1 ]" 600 0.1 || die "the new users started no run"
grep "DISTILL: automatic run: " "$T/c2.log" | tail -n 1 |
    grep -q "4 users with a patch on v1 (distill.min-patches reached)" ||
    die "run: $(grep 'DISTILL: automatic run: ' "$T/c2.log" | tail -n 1)"
[ "$(runs 2)" = 1 ] || die "$(runs 2) runs on replica 2"
kill -TERM "$CP2"
wait "$CP2" || die "replica 2 exit"
echo "pg_distill OK"
