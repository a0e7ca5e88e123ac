# One connection per deviced, not per device (deviced/uplink.h, issue 14):
# a deviced hosting 40 devices holds one TCP connection to the cloud while
# they all register, download and upload over it, and every reply reaches
# its own device. Before the uplink each device had a socket of its own,
# and a fleet of 30,000 needed more descriptors than a cloudd may open.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
TRANSPORT=tcp endpoints
make_data 40 40
import_pool
start_cloudd -o limits.rate=0
wait_model 1
port=${EP##*:}
# Slow enough that the devices are all connected at once: each holds its
# upload back for a second (learn.delay-ms) before it goes up.
start_deviced dev -o deviced.shards="$SHARDS" -o deviced.run-once=yes \
    -o net.start-jitter-ms=0 -o learn.delay-ms=1500
most=0
while kill -0 "$DPID" 2>/dev/null; do
	n=$(ss -Htn state established "( dport = :$port )" | wc -l)
	[ "$n" -gt "$most" ] && most=$n
	sleep 0.1
done
wait "$DPID" || die "deviced exit $?"
done_=$(grep -o "DONE: device=[^ ]*" "$T/dev.log" | sort -u | wc -l)
[ "$done_" -eq 40 ] || die "$done_ of 40 devices done"
# Every device got its own replies: 40 models installed, 40 patches.
n_model=$(grep -c "DOWNLOAD: device=.* installed" "$T/dev.log" || true)
[ "$n_model" -ge 40 ] || die "$n_model models installed for 40 devices"
n_patch=$(sql "SELECT COUNT(DISTINCT device_id) FROM patches")
[ "$n_patch" -eq 40 ] || die "$n_patch devices' patches in the cloud, want 40"
log "connections to the cloud at most: $most (40 devices)"
[ "$most" -ge 1 ] || die "never saw the deviced's connection"
[ "$most" -le 1 ] || die "$most connections for one deviced"
echo "PASS: uplink"
