# The Prometheus endpoint: cloudd serves metrics.listen (port 0 = any free
# port, read back from the METRICS: line), counts requests by type and
# result, keeps every histogram consistent (buckets cumulative, +Inf bucket
# = _count), keeps serving while a training job runs, matches what dcctl
# metrics fetches over the admin socket, and stops cleanly on SIGTERM. A bad
# or taken address makes cloudd exit non-zero with a METRICS line.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 100 100

# curl if present, else python3: GET $1, body to stdout, fail on non-200.
scrape() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsS --max-time 5 "$1"
	else
		python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"
	fi
}
# metric NAME_WITH_LABELS: its value in $T/m.txt (empty if absent).
metric() { awk -v k="$1" '$1 == k { print $2 }' "$T/m.txt"; }

import_pool
start_cloudd -o metrics.listen=127.0.0.1:0 -o metrics.interval-ms=50 \
    -o train.patience=0
port=$(sed -n 's/.*METRICS: serving .*(port \([0-9]*\),.*/\1/p' "$T/cloudd.log")
[ -n "$port" ] && [ "$port" != 0 ] || die "no METRICS: serving line with a port"
URL=http://127.0.0.1:$port/metrics
wait_model 1

log "requests"
for i in 1 2 3; do
	"$BIN/dccl-probe" "$EP" status | grep -q "REPLY status" || die "probe status"
done
"$BIN/dccl-probe" "$EP" unregistered | grep -q "ERROR E_NOT_REGISTERED" ||
    die "probe unregistered"
dcctl status >"$T/status.txt" || die "dcctl status"
grep -q "by type: .*get_status [0-9]" "$T/status.txt" || die "status by type"
# Rendered every 50 ms: poll until the last request shows.
wait_for "scrape $URL >'$T/m.txt' 2>/dev/null && [ \"\$(metric 'dccl_requests_total{type=\"get_status\",result=\"ok\"}')\" = 4 ]" 50 0.1 ||
    die "get_status ok != 4: $(grep requests_total "$T/m.txt")"

log "format"
for m in dccl_requests_total:counter dccl_request_duration_seconds:histogram \
    dccl_retrieve_seconds:histogram dccl_pool_samples:gauge \
    dccl_devices:gauge dccl_patches:gauge dccl_model_version:gauge \
    dccl_inflight:gauge dccl_train_seconds:gauge \
    dccl_index_build_seconds:gauge dccl_uptime_seconds:gauge \
    dccl_retrieve_lobby:gauge dccl_dropped_messages_total:counter; do
	grep -q "^# HELP ${m%%:*} " "$T/m.txt" || die "no HELP for ${m%%:*}"
	grep -q "^# TYPE ${m%%:*} ${m#*:}\$" "$T/m.txt" || die "no TYPE ${m}"
done
[ "$(metric 'dccl_model_version')" = 1 ] || die "model version"
[ "$(metric 'dccl_pool_samples')" = "$(sql 'SELECT count(*) FROM pool')" ] ||
    die "pool samples"
[ "$(metric 'dccl_requests_total{type="get_model",result="E_NOT_REGISTERED"}')" = 1 ] ||
    die "error result label"
[ "$(metric 'dccl_dropped_messages_total')" = 0 ] || die "dropped"
awk '$1 == "dccl_train_seconds" && $2 > 0 { ok = 1 } END { exit !ok }' \
    "$T/m.txt" || die "train seconds"
# Every sample line is NAME[{labels}] VALUE, nothing else.
grep -v '^#' "$T/m.txt" | grep -Ev '^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [-+0-9.eE]+$' &&
    die "malformed sample lines"
# Histograms: buckets never decrease, +Inf = _count, and the request
# histogram's count per type = the sum of its requests_total lines.
awk '
function key(s) { sub(/,?le="[^"]*"/, "", s); sub(/\{\}$/, "", s); return s }
/^#/ { next }
/_bucket\{/ {
	split($1, a, "_bucket"); k = a[1] key(a[2])
	if (k in last && $2 < last[k]) { print "decreasing " $1; bad = 1 }
	last[k] = $2; if ($1 ~ /le="\+Inf"/) inf[k] = $2; next
}
/_count/ { split($1, a, "_count"); cnt[a[1] a[2]] = $2; next }
/^dccl_requests_total\{/ {
	t = $1; sub(/,result="[^"]*"/, "", t); sub(/dccl_requests_total/, "", t)
	req["dccl_request_duration_seconds" t] += $2
}
END {
	for (k in cnt) {
		if (!(k in inf) || inf[k] != cnt[k]) { print "count " k; bad = 1 }
		if (k ~ /^dccl_request_duration/ && req[k] != cnt[k]) {
			print "requests_total vs count " k; bad = 1
		}
		n++
	}
	if (n < 3) { print "too few histograms: " n; bad = 1 }
	exit bad
}' "$T/m.txt" || die "histograms inconsistent"

log "admin socket"
dcctl metrics >"$T/adm.txt" || die "dcctl metrics"
grep -q '^dccl_model_version 1$' "$T/adm.txt" || die "dcctl metrics model version"
grep -q '^# TYPE dccl_request_duration_seconds histogram$' "$T/adm.txt" ||
    die "dcctl metrics histogram"
"$BIN/dccl-probe" "$EP" admin | grep -q "ERROR E_FORBIDDEN" || die "admin on device socket"

log "while training"
dcctl train 400 | grep -q "training started" || die "dcctl train"
wait_for "scrape $URL >'$T/m.txt' 2>/dev/null && [ \"\$(metric dccl_training)\" = 1 ]" 100 0.1 ||
    die "dccl_training never 1"
i=0
while [ $i -lt 5 ]; do
	scrape "$URL" >"$T/m.txt" || die "scrape failed during training"
	[ "$(metric dccl_training)" = 1 ] || die "training ended too soon to test"
	sleep 0.1; i=$((i + 1))
done
scrape "http://127.0.0.1:$port/nope" >/dev/null 2>&1 && die "unknown path served"

log "bad addresses"
rc=0
"$BIN/cloudd" -o cloudd.listen="ipc://$T/x.ipc" -o cloudd.pub-listen="ipc://$T/xp.ipc" \
    -o cloudd.admin-listen="ipc://$T/xa.ipc" -o cloudd.data-dir="$T/x" \
    -o metrics.listen=127.0.0.1:$port >"$T/taken.log" 2>&1 || rc=$?
[ $rc != 0 ] || die "a taken metrics port was accepted"
grep -q "METRICS: cannot serve" "$T/taken.log" || die "no METRICS line for a taken port"
rc=0
"$BIN/cloudd" -o cloudd.listen="ipc://$T/y.ipc" -o cloudd.pub-listen="ipc://$T/yp.ipc" \
    -o cloudd.admin-listen="ipc://$T/ya.ipc" -o cloudd.data-dir="$T/y" \
    -o metrics.listen=localhost >"$T/bad.log" 2>&1 || rc=$?
[ $rc != 0 ] || die "a bad metrics.listen was accepted"
grep -q "METRICS: bad metrics.listen" "$T/bad.log" || die "no METRICS line for a bad address"

log "SIGTERM during training"
kill -TERM "$CPID"
wait_for "! kill -0 $CPID 2>/dev/null" 100 0.1 || die "cloudd did not stop"
rc=0; wait "$CPID" || rc=$?
[ $rc = 0 ] || die "cloudd exit $rc"
grep -q "METRICS: stopped" "$T/cloudd.log" || die "MHD not stopped"
grep -q "EXIT: clean shutdown" "$T/cloudd.log" || die "no clean exit"
scrape "$URL" >/dev/null 2>&1 && die "still serving after exit"
echo "metrics OK"
