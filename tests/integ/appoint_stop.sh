# The retrieval lobby at shutdown (cloudd/retrieve_rpc.c): a device back
# for its appointment that finds every search place taken waits in the
# cloud, and a SIGTERM meanwhile must answer it, not leave it unanswered
# or hold the daemon up. Two places, one worker, 60 devices: SIGTERM
# while refused devices are coming back; cloudd exits 0 within 5 s, its
# APPOINT line counts requests told at stop, and the devices got typed
# E_SHUTTING_DOWN replies. The signal goes once /metrics shows someone
# in the lobby; it may have drained by the time the signal lands, so up to
# three tries, each a fresh cloud.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 60 300	# 18,000 pool rows: searches of ms, which collide
import_pool
told=0
for attempt in 1 2 3; do
	start_cloudd -o limits.max-inflight=2 -o cloudd.workers=1 \
	    -o limits.rate=0
	wait_model 1
	: > "$T/dev.log"
	start_deviced dev -o deviced.shards="$SHARDS" \
	    -o deviced.run-once=yes -o net.start-jitter-ms=0 \
	    -o net.backoff-max-ms=30000 -o learn.coda=yes
	wait_for "grep -q 'come back in' '$T/dev.log'" 2000 0.01 ||
	    die "no retrieval refused: the test needs collisions"
	# SIGTERM once a device back for its appointment waits in the lobby
	# (under ASan the first ones can take longer than 0.1 s to come)
	wait_for "dcctl metrics 2>/dev/null | grep -q '^dccl_retrieve_lobby [1-9]'" \
	    500 0.01 || log "try $attempt: nobody waited in the lobby"
	kill -TERM "$CPID"
	t0=$(date +%s)
	wait "$CPID" || die "cloudd exit $? at SIGTERM"
	[ $(( $(date +%s) - t0 )) -le 5 ] || die "cloudd took over 5 s to stop"
	line=$(grep 'APPOINT: ' "$T/cloudd.log" | tail -n 1)
	[ -n "$line" ] || die "no APPOINT line at stop"
	log "try $attempt: $line"
	told=$(echo "$line" | sed -n 's/.*, \([0-9]*\) of them told at stop.*/\1/p')
	kill -TERM "$DPID" 2>/dev/null
	wait "$DPID" 2>/dev/null
	[ "${told:-0}" -ge 1 ] && break
	rm -rf "$T/cloud" "$T/dev"
	import_pool
done
[ "${told:-0}" -ge 1 ] || die "the lobby was empty at every SIGTERM"
n=$(grep -c "retrieve: E_SHUTTING_DOWN" "$T/dev.log" || true)
log "E_SHUTTING_DOWN replies to retrievals: $n, told at stop: $told"
[ "$n" -ge 1 ] || die "no device was told the cloud is shutting down"
echo "PASS: appoint_stop"
