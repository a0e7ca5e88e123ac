#!/bin/sh
# The embeddable device library (deviced/dccl_device.h), driven by its
# example program dccl-embed, against deviced's app socket driven by dcctl:
# one device each, same user, data, seed and cloud. Both learn, rank the
# same candidates, record the same events, learn again and rank again; the
# scores must agree (one code path: app.c's dispatch), and bad requests get
# the same typed errors from both.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 4 150
import_pool
start_cloudd
wait_model 1
U=$(ls "$SHARDS" | sed -n 's/\.local\.csv$//p' | sort -n | head -1)
LOCAL=$SHARDS/$U.local.csv
ITEMS=$(grep -v '^#' "$LOCAL" | grep -v '^user' | cut -d, -f2 | head -20 | tr '\n' ' ')
TS0=2000000000
COMMON="-o deviced.user-id=$U -o deviced.local-data=$LOCAL -o learn.seed=5
    -o deviced.app-max-candidates=500"

log "deviced with an app socket"
# shellcheck disable=SC2086
start_deviced dae -o deviced.device-id=dae -o learn.retrain-every=2 \
    -o deviced.app-listen='ipc://{dir}/app.ipc' $COMMON
app() { "$BIN/dcctl" device -s "ipc://$T/dev/dae/app.ipc" -t 60 "$@"; }
wait_for "grep -qs 'ACK: device=dae ' '$T/dae.log'" 600 0.1 || die "deviced: no upload"
# shellcheck disable=SC2086
app -T $((TS0 + 10)) rank $ITEMS >"$T/dae.rank1" 2>/dev/null || die "deviced: rank 1"
app -T "$TS0" event 5 1 3 >/dev/null || die "deviced: event 1"
app -T $((TS0 + 5)) event 7 0 >/dev/null || die "deviced: event 2"
wait_for "[ \$(grep -c ': TRAIN: device=dae ' '$T/dae.log') -ge 2 ]" 600 0.1 || die "deviced: no second job"
wait_for "[ \$(grep -c 'ACK: device=dae ' '$T/dae.log') -ge 2 ]" 600 0.1 || die "deviced: no second upload"
# shellcheck disable=SC2086
app -T $((TS0 + 10)) rank $ITEMS >"$T/dae.rank2" 2>/dev/null || die "deviced: rank 2"
app -T 1000 event 9 1 >"$T/dae.err1" 2>&1 && die "deviced: an event before the samples was accepted"
app rank 1 16777216 >"$T/dae.err2" 2>&1 && die "deviced: an item beyond the id space was accepted"
seq 1 501 | { app rank - >"$T/dae.err3" 2>&1 && die "deviced: 501 candidates accepted"; true; }
app status >"$T/dae.status" || die "deviced: status"

log "the library (dccl-embed) with the same requests"
cat >"$T/cmds" <<EOF
status
learn 120000
rank $((TS0 + 10)) 0 $ITEMS
event $TS0 5 1 3
event $((TS0 + 5)) 7 0
learn 120000
rank $((TS0 + 10)) 0 $ITEMS
event 1000 9 1
rank 0 0 1 16777216
rank 0 0 $(seq 1 501 | tr '\n' ' ')
rank 0 0
status
EOF
rc=0
# shellcheck disable=SC2086
"$BIN/dccl-embed" -o deviced.cloud="$EP" -o deviced.cloud-pub="$PUB" \
    -o deviced.data-dir="$T/emb" -o deviced.device-id=emb \
    -o net.request-timeout-ms=5000 -o learn.retrain-every=0 $COMMON \
    <"$T/cmds" >"$T/emb.out" 2>"$T/emb.log" || rc=$?
cut -c1-120 "$T/emb.out" | grep -v '^[0-9]* [0-9.e-]*$' || true
[ $rc = 1 ] || die "dccl-embed exit $rc, want 1 (the bad requests fail)"
# Blocks between "--" lines, one per command.
awk -v d="$T/emb" 'BEGIN { n = 1 } /^--$/ { n++; next } { print > (d ".b" n) }' "$T/emb.out"
for b in 1 2 3 4 5 6 7 12; do [ ! -s "$T/emb.b$b" ] || [ "$(grep -c '^error' "$T/emb.b$b")" = 0 ] || die "command $b failed: $(cat "$T/emb.b$b")"; done
grep -q "model version:  0" "$T/emb.b1" || grep -q "model version:  1" "$T/emb.b1" || die "status 1"
grep -q "learning jobs:  2" "$T/emb.b12" || die "library: not 2 learning jobs: $(cat "$T/emb.b12")"
grep -q "local samples:  .* (0 since" "$T/emb.b12" || die "library: events not trained on"
grep -q "learning jobs:  2" "$T/dae.status" || die "deviced: not 2 learning jobs"

log "scores agree"
same() {	# a b what
	[ "$(wc -l <"$1")" = "$(echo $ITEMS | wc -w)" ] || die "$3: count"
	awk 'NR == FNR { s[$1] = $2; next }
	    { if (!($1 in s)) { bad = 1; next }
	      d = s[$1] - $2; if (d < 0) d = -d; if (d > w) w = d; n++ }
	    END { printf "%d items, max difference %.3g\n", n, w
	      exit (bad || n == 0 || w > 1e-6) }' "$1" "$2" || die "$3: scores differ"
	cut -d' ' -f1 "$1" >"$T/o1"; cut -d' ' -f1 "$2" >"$T/o2"
	cmp -s "$T/o1" "$T/o2" || echo "note: $3: order differs on ties"
}
same "$T/dae.rank1" "$T/emb.b3" "after the first job"
same "$T/dae.rank2" "$T/emb.b7" "after the events and the second job"
cmp -s "$T/dae.rank1" "$T/dae.rank2" && die "the second job changed nothing"

log "typed errors agree"
grep -q E_BAD_REQUEST "$T/dae.err1" && grep -q '^error -1:' "$T/emb.b8" || die "event before the samples"
grep -q E_BAD_REQUEST "$T/dae.err2" && grep -q '^error -1:' "$T/emb.b9" || die "item beyond the id space"
grep -q E_TOO_LARGE "$T/dae.err3" && grep -q '^error -6:' "$T/emb.b10" || die "too many candidates"
grep -q '^error -1:.*no candidates' "$T/emb.b11" || die "no candidates: $(cat "$T/emb.b11")"
grep -q 'READY: dccl_device' "$T/emb.log" || die "library log"

log "configuration errors are reported by dccl_device_open"
rc=0; "$BIN/dccl-embed" -o learn.lr=fast </dev/null >/dev/null 2>"$T/bad1" || rc=$?
[ $rc = 2 ] && grep -q "learn.lr" "$T/bad1" || die "bad option: exit $rc: $(cat "$T/bad1")"
rc=0; "$BIN/dccl-embed" -o deviced.shards="$SHARDS" </dev/null >/dev/null 2>"$T/bad2" || rc=$?
[ $rc = 2 ] && grep -q "one device" "$T/bad2" || die "shards: exit $rc: $(cat "$T/bad2")"
rc=0; "$BIN/dccl-embed" -o deviced.data-dir=/proc/none </dev/null >/dev/null 2>"$T/bad3" || rc=$?
[ $rc = 2 ] && grep -q "cannot start device" "$T/bad3" || die "state dir: exit $rc: $(cat "$T/bad3")"
cat "$T/bad1" "$T/bad2" "$T/bad3" | grep dccl-embed
[ "$(sql "SELECT count(*) FROM patches WHERE device_id = 'emb'")" = 2 ] || die "library: not 2 patches uploaded"
echo "embed OK"
