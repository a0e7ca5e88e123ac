# The device's local app interface (deviced.app-listen, proto/app.proto),
# driven with `dcctl device`: a ranking scored by the personalized model
# matches the evaluation's own scores for the same items (one scoring
# path), rankings come back sorted, recorded events land in the device's
# store and re-run the learning job after learn.retrain-every of them, and
# bad requests get typed errors while deviced keeps serving.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 6 60
import_pool
start_cloudd
wait_model 1
U=$(ls "$SHARDS" | sed -n 's/\.local\.csv$//p' | sort -n | head -1)
DEV=dev-$U
DB=$T/dev/$DEV/device.db
AEP="ipc://$T/dev/$DEV/app.ipc"
mkdir -p "$T/eval"
start_deviced dev -o deviced.shards="$SHARDS" -o deviced.devices=1 \
    -o deviced.eval-dir="$T/eval" -o deviced.eval-methods=cloud,mp-fb \
    -o deviced.app-listen='ipc://{dir}/app.ipc' -o learn.retrain-every=3 \
    -o deviced.app-max-candidates=500
app() { "$BIN/dcctl" device -s "$AEP" -t 10 "$@"; }
wait_for "grep -q 'APP: device=$DEV listening on $AEP' '$T/dev.log'" 100 0.1 || die "no app socket"
wait_for "grep -q 'TRAIN: device=$DEV' '$T/dev.log'" 600 0.1 || die "no learning job"
wait_for "[ -s '$T/eval/$DEV.csv' ]" 100 0.1 || die "no eval file"
app status >"$T/status.out" || die "status failed"
cat "$T/status.out"
grep -q "model version:  1" "$T/status.out" || die "status: model"

log "the app path scores as the evaluation does"
# Test rows up to the first positive have the device's local history only,
# which is what a rank request at their time gets.
grep -v '^#' "$SHARDS/$U.test.csv" | grep -v '^user' |
while IFS=, read -r _u item ts _r label genres _h; do
	out=$(app -T "$ts" -k 1 rank "$item:$genres" 2>/dev/null) || die "rank $item"
	want=$(grep "^mp-fb,$U,$item," "$T/eval/$DEV.csv" | head -1 | cut -d, -f5)
	# Equal up to float rounding: OpenBLAS sums a batch of one row (the
	# rank request) in another order than the evaluation's batch, which
	# moves the last bit or two; a different model, history or feature
	# moves a score by far more than 2e-7.
	awk -v a="${out#* }" -v b="$want" 'BEGIN { d = a - b; if (b == "" ||
	    d > 2e-7 || d < -2e-7) exit 1 }' ||
	    die "item $item: app '$out', eval '$want'"
	echo "ok: item $item at $ts: $out = eval $want"
	case $label in 0|0.0) ;; *) break ;; esac
done || exit 1

log "ranking order"
ITEMS=$(grep -v '^#' "$SHARDS/$U.local.csv" | grep -v '^user' | cut -d, -f2 | head -15 | tr '\n' ' ')
app -T 1600000000 rank $ITEMS >"$T/rank.out" 2>"$T/rank.err" || die "rank failed"
cat "$T/rank.out" "$T/rank.err"
[ "$(wc -l <"$T/rank.out")" = "$(echo $ITEMS | wc -w)" ] || die "rank: count"
awk 'NR > 1 && $2 > prev { exit 1 } { prev = $2 }' "$T/rank.out" || die "not sorted"
[ "$(cut -d' ' -f1 "$T/rank.out" | sort -n | tr '\n' ' ')" = "$(echo $ITEMS | tr ' ' '\n' | sort -n | tr '\n' ' ')" ] || die "rank: items changed"
app -T 1600000000 -k 3 rank $ITEMS >"$T/top3.out" 2>/dev/null || die "top-k"
head -3 "$T/rank.out" | cmp -s - "$T/top3.out" || die "top 3 is not the head of the ranking"
echo "$ITEMS" | tr ' ' '\n' | app -T 1600000000 rank - >"$T/stdin.out" 2>/dev/null || die "stdin"
cmp -s "$T/rank.out" "$T/stdin.out" || die "stdin ranking differs"

log "bad requests get typed errors"
expect_err() {	# code args...
	code=$1; shift
	if out=$(app "$@" 2>&1 </dev/null); then die "$*: accepted: $out"; fi
	case $out in *"$code"*) echo "ok: $* -> $out" ;; *) die "$*: got '$out', want $code" ;; esac
}
expect_err E_BAD_REQUEST -r nan event 3 1
expect_err E_BAD_REQUEST -r 11 event 3 1
expect_err E_BAD_REQUEST event 20000000 1
expect_err E_BAD_REQUEST -T 1000 event 3 1	# before the local samples
expect_err E_BAD_REQUEST rank 1 16777216
expect_err E_BAD_REQUEST rank -	# no candidates (stdin is empty)
expect_err E_NOT_FOUND -i dev-other status
seq 1 501 | { app rank - >/dev/null 2>"$T/big.err" && die "501 candidates accepted"; true; }
grep -q E_TOO_LARGE "$T/big.err" || die "too many: $(cat "$T/big.err")"
out=$(nanocat --req --connect "$AEP" --data 'garbage!' --raw --recv-timeout 5 2>&1 | tr -c '[:print:]' '.')
case $out in *malformed*) echo "ok: garbage -> $out" ;; *) die "garbage: '$out'" ;; esac
out=$(nanocat --req --connect "$AEP" --data "$(printf '\010\002')" --raw --recv-timeout 5 2>&1 | tr -c '[:print:]' '.')
case $out in *"no body"*) echo "ok: no body -> $out" ;; *) die "no body: '$out'" ;; esac
# An app of protocol 1 (before side values) gets a typed E_VERSION.
out=$(nanocat --req --connect "$AEP" --data "$(printf '\010\001')" --raw --recv-timeout 5 2>&1 | tr -c '[:print:]' '.')
case $out in *"app protocol version 1"*) echo "ok: version 1 -> $out" ;; *) die "version 1: '$out'" ;; esac
[ "$(grep -c 'APP-BADREQ' "$T/dev.log")" -ge 10 ] || die "APP-BADREQ lines"
kill -0 "$DPID" || die "deviced died"
[ "$(sqlite3 "$DB" 'SELECT count(*) FROM samples')" = "$(grep -v '^#' "$SHARDS/$U.local.csv" | grep -vc '^user')" ] || die "a bad event was stored"

log "events become local samples and re-run the learning job"
n0=$(sqlite3 "$DB" 'SELECT count(*) FROM samples')
app event 5000000 1 3 | tee "$T/ev1.out" || die "event 1"
grep -q "new item" "$T/ev1.out" || die "an unseen item is not flagged"
app -r 4.5 event 7 1 5 || die "event 2"
[ "$(sqlite3 "$DB" 'SELECT count(*) FROM samples')" = $((n0 + 2)) ] || die "events not committed"
[ "$(sqlite3 "$DB" 'SELECT item, label, genres, rating, length(hist) > 0 FROM samples ORDER BY id DESC LIMIT 1')" = "7|1.0|5|4.5|1" ] ||
    die "stored sample: $(sqlite3 "$DB" 'SELECT * FROM samples ORDER BY id DESC LIMIT 1')"
app rank 7 5000000 2>"$T/oov.err" >/dev/null || die "rank with a new item"
grep -q "1 new item" "$T/oov.err" || die "n_oov: $(cat "$T/oov.err")"
app event 9 0 | tee "$T/ev3.out" || die "event 3"
grep -q retraining "$T/ev3.out" || die "third event did not trigger a retrain"
# Its history ends with the last positive before it, item 7.
[ "$(sqlite3 "$DB" 'SELECT hex(substr(hist, -4)) FROM samples ORDER BY id DESC LIMIT 1')" = 07000000 ] ||
    die "history of the recorded event"
wait_for "grep -q 'APP-RETRAIN: device=$DEV 3 new' '$T/dev.log'" 100 0.1 || die "no retrain"
# ": TRAIN:" and not "APP-RETRAIN:".
wait_for "[ \$(grep -c ': TRAIN: device=$DEV' '$T/dev.log') -ge 2 ]" 600 0.1 || die "no second job"
grep ": TRAIN: device=$DEV" "$T/dev.log" | tail -1 | grep -q "$((n0 + 3)) local" || die "the job did not train on the events"
wait_for "[ \$(sql \"SELECT count(*) FROM patches WHERE device_id = '$DEV'\") -ge 2 ]" 300 0.1 || die "no second patch"
app status | tee "$T/status2.out"
grep -q "local samples:  $((n0 + 3)) (0 since" "$T/status2.out" || die "status after retrain"

log "shutdown"
kill -TERM "$DPID"
rc=0; wait "$DPID" || rc=$?
[ $rc = 0 ] || die "deviced exit $rc"
[ "$(sqlite3 "$DB" 'SELECT count(*) FROM samples')" = $((n0 + 3)) ] || die "samples after exit"
echo "app OK"
