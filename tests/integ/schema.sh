# Bring your own data (issue 16): the generic click-log fixture and its
# feature schema (tests/fixtures/ctr-log) go through dccl-data split, a
# schema import into the cloud pool (side values and the schema stored),
# cloud training and one round of devices, with no code change. Bad
# imports get typed errors with file:line and change nothing.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
FIX=$ROOT/tests/fixtures/ctr-log
endpoints
"$BIN/dccl-data" split "$FIX/data.csv" "$T/data" --schema "$FIX/schema.txt" \
    >"$T/split.log" 2>&1 || die "split failed: $(cat "$T/split.log")"
SHARDS=$T/data/devices
head -1 "$T/data/pool.csv" | grep -q '^# dccl-samples v2 .* n_side=4 side_card=8|5|3|32$' ||
    die "pool.csv is not v2 with 4 side fields: $(head -1 "$T/data/pool.csv")"
cmp -s "$T/data/schema.txt" - <<'S' || die "schema.txt is not the canonical schema"
dccl-schema 1
field click label
field user user vocab=60
field item item vocab=80
field time ts
field banner_pos cat side=context vocab=8
field site_category cat side=item values=news|sports|games|shop|video
field device_type cat side=user values=phone|tablet|desktop
field device_model hash side=user buckets=32
S

# Typed errors, nothing imported.
bad() {	# what-to-expect cloudd-args...
	want=$1; shift
	if "$BIN/cloudd" -o cloudd.data-dir="$T/bad" "$@" >"$T/bad.out" 2>&1; then
		die "import of $* succeeded"
	fi
	grep -q -- "$want" "$T/bad.out" || die "want '$want', got: $(tail -2 "$T/bad.out")"
}
bad "a CSV of other columns needs a schema" --import "$FIX/data.csv"
sed 's/^click,/clicks,/' "$FIX/data.csv" >"$T/badcol.csv"
bad "badcol.csv:1: unknown column 'clicks' (not in the schema)" \
    --import "$T/badcol.csv" --schema "$FIX/schema.txt"
awk -F, -v OFS=, 'NR == 5 { $2 = 60 } { print }' "$FIX/data.csv" >"$T/badid.csv"
bad "badid.csv:5: column 'user': id 60 out of range (vocab 60)" \
    --import "$T/badid.csv" --schema "$FIX/schema.txt"
awk -F, -v OFS=, 'NR == 7 { $7 = "watch" } { print }' "$FIX/data.csv" >"$T/badval.csv"
bad "badval.csv:7: column 'device_type': bad value" \
    --import "$T/badval.csv" --schema "$FIX/schema.txt"
printf 'dccl-schema 1\nfield click label\nfield user user\nfield item item\nfield pos cat side=screen vocab=3\n' >"$T/bad.schema"
bad "bad.schema:5: side must be user, item or context" \
    --import "$FIX/data.csv" --schema "$T/bad.schema"
printf 'dccl-schema 1\nfield click label\nfield user user\nfield item item\nfield pos cat side=user vocab=3\n' >"$T/one.schema"
bad "pool.csv: its side fields (n_side 4) are not those of" \
    --import "$T/data/pool.csv" --schema "$T/one.schema"
[ "$(sqlite3 "$T/bad/cloudd.db" 'SELECT count(*) FROM pool')" = 0 ] || die "a bad import stored rows"

# A v2 samples CSV without its schema: side values stored, no schema
# text, and a schema cannot be added to that pool later.
"$BIN/cloudd" -o cloudd.data-dir="$T/noschema" --import "$T/data/pool.csv" \
    >"$T/noschema.log" 2>&1 || die "v2 import without a schema: $(tail -1 "$T/noschema.log")"
[ "$(sqlite3 "$T/noschema/cloudd.db" 'SELECT count(*) FROM pool WHERE length(side) = 16')" = \
    "$(sed 1,2d "$T/data/pool.csv" | wc -l)" ] || die "v2 without schema: side values"
bad "without a feature schema" -o cloudd.data-dir="$T/noschema" \
    --import "$T/data/pool.csv" --schema "$T/data/schema.txt"

# The raw CSV imports directly through its schema, too.
"$BIN/cloudd" -o cloudd.data-dir="$T/raw" --import "$FIX/data.csv" \
    --schema "$FIX/schema.txt" >"$T/raw.log" 2>&1 || die "raw import: $(tail -1 "$T/raw.log")"
[ "$(sqlite3 "$T/raw/cloudd.db" 'SELECT count(*) FROM pool WHERE length(side) = 16')" = \
    "$(($(wc -l <"$FIX/data.csv") - 1))" ] || die "raw import: side values"

# The split's pool with its schema: side values and the schema stored.
import_pool --schema "$T/data/schema.txt"
n=$(sed 1,2d "$T/data/pool.csv" | wc -l)
[ "$(sql 'SELECT count(*) FROM pool WHERE length(side) = 16')" = "$n" ] || die "side values not stored"
[ "$(sql 'SELECT value FROM meta WHERE key = "n_side"')" = 4 ] || die "n_side"
[ "$(sql 'SELECT text FROM pool_schema')" = "$(cat "$T/data/schema.txt")" ] || die "stored schema differs"
# A second import with another schema is refused (one schema per pool).
sed 's/buckets=32/buckets=64/' "$T/data/schema.txt" >"$T/other.schema"
if "$BIN/cloudd" -o cloudd.data-dir="$T/cloud" --import "$FIX/data.csv" \
    --schema "$T/other.schema" >"$T/other.log" 2>&1; then
	die "a second schema was accepted"
fi
grep -q "feature schema differs" "$T/other.log" || die "other schema: $(tail -1 "$T/other.log")"
[ "$(sql 'SELECT count(*) FROM pool')" = "$n" ] || die "the refused import stored rows"

# Training and one device round on it.
start_cloudd
wait_model 1
# The admin path takes the schema too (same schema: appends).
dcctl import "$FIX/data.csv" "$FIX/schema.txt" >"$T/dcctl.log" 2>&1 || die "dcctl import: $(cat "$T/dcctl.log")"
grep -q "imported $(($(wc -l <"$FIX/data.csv") - 1)) rows" "$T/dcctl.log" || die "dcctl import rows"
mkdir -p "$T/eval"
start_deviced devs -o deviced.shards="$SHARDS" -o deviced.run-once=yes \
    -o deviced.devices=10 -o deviced.eval-dir="$T/eval" -o learn.coda=yes
rc=0; wait "$DPID" || rc=$?
[ $rc = 0 ] || die "deviced exit $rc"
[ "$(sql 'SELECT count(DISTINCT device_id) FROM patches')" -ge 8 ] || die "patches: $(sql 'SELECT count(*) FROM patches')"
[ "$(ls "$T/eval"/*.csv | wc -l)" = 10 ] || die "eval files"
# Retrieval ships the pool's side values (protocol 4) and they fit.
grep -q "RETRIEVE: device=.* got [1-9][0-9]* pool samples .* with side values" "$T/devs.log" ||
    die "no retrieved samples with side values"
! grep -q "side values do not fit" "$T/devs.log" || die "side values dropped"

# The app interface takes side values (app protocol 2): one more device of
# this data, with its app socket.
U=10; DEV=dev-$U; AEP="ipc://$T/dev/$DEV/app.ipc"; DB=$T/dev/$DEV/device.db
mkdir -p "$T/one"
cp "$SHARDS/$U.local.csv" "$SHARDS/$U.test.csv" "$T/one/"
start_deviced app -o deviced.shards="$T/one" \
    -o deviced.app-listen='ipc://{dir}/app.ipc'
app() { "$BIN/dcctl" device -s "$AEP" -t 10 "$@"; }
wait_for "grep -q 'TRAIN: device=$DEV' '$T/app.log'" 600 0.1 || die "no learning job"
[ "$(sqlite3 "$DB" 'SELECT count(*) FROM samples WHERE length(side) = 16')" = \
    "$(sed 1,2d "$SHARDS/$U.local.csv" | wc -l)" ] || die "device store: side values"
app --side 0,2,1,7 event 5 1 >"$T/ev.out" 2>&1 || die "event with side values: $(cat "$T/ev.out")"
[ "$(sqlite3 "$DB" 'SELECT hex(side) FROM samples ORDER BY id DESC LIMIT 1')" = \
    00000000020000000100000007000000 ] || die "event side values not stored"
app event 6 0 >/dev/null 2>&1 || die "event without side values"
[ "$(sqlite3 "$DB" 'SELECT hex(side) FROM samples ORDER BY id DESC LIMIT 1')" = \
    08000000050000000300000020000000 ] || die "no side values: not unknown"
out=$(app --side 0,2,1 event 7 1 2>&1) && die "3 side values accepted"
case $out in *"E_BAD_REQUEST"*"3 side values; the local data have 4"*) ;; *) die "3 values: $out" ;; esac
out=$(app --side 0,6,1,7 event 7 1 2>&1) && die "side value beyond its card accepted"
case $out in *"E_BAD_REQUEST"*"side value 1 is 6; field 1 has 5 values"*) ;; *) die "card: $out" ;; esac
app --side 1,2,1,7 rank 3 4 5 >"$T/rank.out" 2>&1 || die "rank with side values: $(cat "$T/rank.out")"
[ "$(grep -c '^[0-9]* [0-9.]*$' "$T/rank.out")" = 3 ] || die "rank output: $(cat "$T/rank.out")"
out=$(app --side 9,2,1,7 rank 3 4 2>&1) && die "bad candidate side accepted"
case $out in *"E_BAD_REQUEST"*"candidate 0: side value 0 is 9"*) ;; *) die "rank card: $out" ;; esac
# A device refuses a model whose feature schema is not its data's, with a
# SCHEMA line, no learning on it and no second download of it; run-once
# deviced exits 1. Local data without side fields (a v1 CSV):
v1() {	# v2-csv: the same samples without their side values
	awk -F, -v OFS=, 'NR == 1 { print "# dccl-samples v1 n_users=60 n_items=80 n_genres=0"; next }
	    { NF = 7; print }' "$1"
}
mkdir -p "$T/mis-none" "$T/mis-card" "$T/mis-empty"
v1 "$SHARDS/11.local.csv" >"$T/mis-none/11.local.csv"
v1 "$SHARDS/11.test.csv" >"$T/mis-none/11.test.csv"
head -2 "$T/mis-none/11.local.csv" | grep -q '^user,item,ts,rating,label,genres,hist$' || die "v1 csv"
start_deviced mis-none -o deviced.shards="$T/mis-none" -o deviced.run-once=yes \
    -o deviced.data-dir="$T/mis-none/dev"
rc=0; wait "$DPID" || rc=$?
[ $rc = 1 ] || die "deviced with a mismatched model: exit $rc"
grep -q "SCHEMA: device=dev-11 model v[0-9]* refused: the model has 4 side fields, the local data 0" \
    "$T/mis-none.log" || die "no SCHEMA refusal for local data without side fields"
grep -q "1 device(s) refused the cloud model" "$T/mis-none.log" || die "no EXIT refusal line"
! grep -q "TRAIN: device=dev-11" "$T/mis-none.log" || die "learned on a refused model"
[ "$(sqlite3 "$T/mis-none/dev/dev-11/device.db" 'SELECT count(*) FROM model')" = 0 ] ||
    die "the refused model was stored"
# Other cardinalities (field 0 with 9 values, not 8); a long-running
# deviced stays up, idle, and does not fetch that version again.
sed '1s/side_card=8|/side_card=9|/' "$SHARDS/12.local.csv" >"$T/mis-card/12.local.csv"
sed '1s/side_card=8|/side_card=9|/' "$SHARDS/12.test.csv" >"$T/mis-card/12.test.csv"
start_deviced mis-card -o deviced.shards="$T/mis-card" -o deviced.data-dir="$T/mis-card/dev"
wait_for "grep -q 'SCHEMA: device=dev-12 model v[0-9]* refused: side field 0 has 8 values in the model, 9 in the local data' '$T/mis-card.log'" 300 0.1 ||
    die "no SCHEMA refusal for other cardinalities"
sleep 3
kill -0 "$DPID" || die "deviced died after a refusal"
[ "$(grep -c 'SCHEMA: device=dev-12 .* refused' "$T/mis-card.log")" = 1 ] || die "refused model fetched again"
! grep -q "TRAIN: device=dev-12" "$T/mis-card.log" || die "learned on a refused model"
[ "$(sql "SELECT count(*) FROM patches WHERE device_id IN ('dev-11', 'dev-12')")" = 0 ] ||
    die "a patch from a device that refused the model"
kill "$DPID"; wait "$DPID" 2>/dev/null || true
# A device with no local data at all takes the model's side fields: its
# app events then carry them.
U=13; AEP="ipc://$T/mis-empty/dev/dev-$U/app.ipc"
v1 "$SHARDS/$U.local.csv" | head -2 >"$T/mis-empty/$U.local.csv"
start_deviced mis-empty -o deviced.shards="$T/mis-empty" -o deviced.data-dir="$T/mis-empty/dev" \
    -o deviced.app-listen='ipc://{dir}/app.ipc'
wait_for "grep -q 'SCHEMA: device=dev-$U has no local data; takes the model.s 4 side fields' '$T/mis-empty.log'" 300 0.1 ||
    die "an empty device did not take the model's side fields"
wait_for "grep -q 'DOWNLOAD: device=dev-$U model v[0-9]* installed' '$T/mis-empty.log'" 100 0.1 || die "not installed"
app --side 0,2,1,7 event 5 1 >"$T/ev2.out" 2>&1 || die "event on an adopted schema: $(cat "$T/ev2.out")"
[ "$(sqlite3 "$T/mis-empty/dev/dev-$U/device.db" 'SELECT hex(side) FROM samples ORDER BY id DESC LIMIT 1')" = \
    00000000020000000100000007000000 ] || die "adopted side values not stored"
kill "$DPID"; wait "$DPID" 2>/dev/null || true
echo "schema OK"
