# String ids (issue 16): a click log whose user and item ids are strings
# (tests/fixtures/ctr-log-strid: hex user hashes, SKUs) with a schema that
# marks them ids=hash goes, with no code change, through dccl-data split
# (which reports how many strings share a bucket), a schema import,
# cloud training, and a device that learns on its shard and then takes an
# event and ranks candidates given by their string ids (dcctl device
# --schema hashes them exactly as the import did). Bad string-id input
# gets typed errors with file:line.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
FIX=$ROOT/tests/fixtures/ctr-log-strid
endpoints
"$BIN/dccl-data" split "$FIX/data.csv" "$T/data" --schema "$FIX/schema.txt" \
    >"$T/split.log" 2>&1 || die "split failed: $(cat "$T/split.log")"
# 60 users and 80 items in 4096 buckets each: one pair of users collides.
grep -q "ids: 60 user strings in 59 of 4096 buckets (1 share one)" "$T/split.log" ||
    die "user collisions: $(cat "$T/split.log")"
grep -q "ids: 80 item strings in 80 of 4096 buckets (0 share one)" "$T/split.log" ||
    die "item collisions: $(cat "$T/split.log")"
grep -q "^field user user vocab=4096 ids=hash$" "$T/data/schema.txt" || die "canonical schema"
# Only the 59 occupied user buckets get a device.
[ "$(ls "$T/data/devices"/*.local.csv | wc -l)" = 59 ] || die "shards: $(ls "$T/data/devices" | wc -l)"

# Typed errors with file:line.
bad() {	# what-to-expect cloudd-args...
	want=$1; shift
	if "$BIN/cloudd" -o cloudd.data-dir="$T/bad" "$@" >"$T/bad.out" 2>&1; then
		die "import of $* succeeded"
	fi
	grep -q -- "$want" "$T/bad.out" || die "want '$want', got: $(tail -2 "$T/bad.out")"
}
awk -F, -v OFS=, 'NR == 6 { $2 = "" } { print }' "$FIX/data.csv" >"$T/empty.csv"
bad "empty.csv:6: column 'user': empty id" --import "$T/empty.csv" --schema "$FIX/schema.txt"
sed 's/^field item item vocab=4096 ids=hash$/field item item ids=hash/' "$FIX/schema.txt" >"$T/novocab.schema"
bad "novocab.schema:6: ids=hash needs vocab= (the number of buckets)" \
    --import "$FIX/data.csv" --schema "$T/novocab.schema"
sed 's/ids=hash$/ids=text/' "$FIX/schema.txt" >"$T/badids.schema"
bad "badids.schema:5: ids must be int or hash" --import "$FIX/data.csv" --schema "$T/badids.schema"
# The integer schema refuses string ids.
bad "data.csv:2: column 'user': bad id" --import "$FIX/data.csv" \
    --schema "$ROOT/tests/fixtures/ctr-log/schema.txt"

# The raw string-id CSV imports directly too, to the same ids as the split.
"$BIN/cloudd" -o cloudd.data-dir="$T/raw" --import "$FIX/data.csv" \
    --schema "$FIX/schema.txt" >"$T/raw.log" 2>&1 || die "raw import: $(tail -1 "$T/raw.log")"
"$BIN/cloudd" -o cloudd.data-dir="$T/cloud" --import "$T/data/pool.csv" \
    --schema "$T/data/schema.txt" >"$T/import.log" 2>&1 || die "import: $(tail -1 "$T/import.log")"
[ "$(sql 'SELECT text FROM pool_schema')" = "$(cat "$T/data/schema.txt")" ] || die "stored schema"
[ "$(sql 'SELECT count(*) FROM pool')" = "$(sed 1,2d "$T/data/pool.csv" | wc -l)" ] || die "pool rows"
# Every pool row is also in the raw import, with the same hashed ids.
for db in cloud raw; do
	sqlite3 "$T/$db/cloudd.db" 'SELECT user, item, ts FROM pool' | LC_ALL=C sort >"$T/$db.rows"
done
[ -z "$(LC_ALL=C comm -23 "$T/cloud.rows" "$T/raw.rows")" ] || die "pool rows missing from the raw import"
[ "$(wc -l <"$T/raw.rows")" = "$(($(wc -l <"$FIX/data.csv") - 1))" ] || die "raw rows"

# The user of the fixture's first row, u00003039: its bucket from its
# first timestamp, which is unique in the fixture.
ts=$(sed -n 2p "$FIX/data.csv" | cut -d, -f4)
U=$(awk -F, -v ts="$ts" '$3 == ts { print $1 }' "$T/data/devices"/*.local.csv "$T/data/pool.csv" "$T/data/devices"/*.test.csv | head -1)
[ -n "$U" ] && [ -f "$T/data/devices/$U.local.csv" ] || die "no shard for u00003039 ($U)"
start_cloudd
wait_model 1
# The admin path hashes the same way (same schema: appends).
dcctl import "$FIX/data.csv" "$FIX/schema.txt" >"$T/dcctl.log" 2>&1 || die "dcctl import: $(cat "$T/dcctl.log")"
grep -q "imported $(($(wc -l <"$FIX/data.csv") - 1)) rows" "$T/dcctl.log" || die "dcctl import rows"
sqlite3 "$T/cloud/cloudd.db" 'SELECT DISTINCT user, item, ts FROM pool' | LC_ALL=C sort >"$T/all.rows"
cmp -s "$T/all.rows" "$T/raw.rows" || die "dcctl import: other ids than the raw import"
DEV=dev-$U; AEP="ipc://$T/dev/$DEV/app.ipc"; DB=$T/dev/$DEV/device.db
mkdir -p "$T/one"
cp "$T/data/devices/$U.local.csv" "$T/data/devices/$U.test.csv" "$T/one/"
start_deviced dev -o deviced.shards="$T/one" -o deviced.app-listen='ipc://{dir}/app.ipc'
wait_for "grep -q 'TRAIN: device=$DEV' '$T/dev.log'" 600 0.1 || die "no learning job"
wait_for "grep -q 'ACK: device=$DEV req=[0-9]* patch=' '$T/dev.log'" 600 0.1 || die "no patch acknowledged"
app() { "$BIN/dcctl" device -s "$AEP" -t 10 "$@"; }
# An event on a SKU by its string: stored under the import's bucket.
sku=$(sed -n 3p "$FIX/data.csv" | cut -d, -f3)
ts3=$(sed -n 3p "$FIX/data.csv" | cut -d, -f4)
want=$(awk -F, -v ts="$ts3" '$3 == ts { print $2 }' "$T/data/pool.csv" "$T/data/devices"/*.csv | head -1)
[ -n "$want" ] || die "no bucket for $sku"
app --schema "$FIX/schema.txt" --side 0,2,1,7 event "$sku" 1 >"$T/ev.out" 2>&1 || die "event: $(cat "$T/ev.out")"
[ "$(sqlite3 "$DB" 'SELECT item FROM samples ORDER BY id DESC LIMIT 1')" = "$want" ] ||
    die "event stored item $(sqlite3 "$DB" 'SELECT item FROM samples ORDER BY id DESC LIMIT 1'), want $want ($sku)"
# Ranking by strings gives the scores of ranking by the buckets.
set -- $(sed -n '2,4p' "$FIX/data.csv" | cut -d, -f3)
app --schema "$FIX/schema.txt" --side 1,2,1,7 rank "$@" >"$T/rank.out" 2>"$T/rank.err" ||
    die "rank: $(cat "$T/rank.err")"
[ "$(grep -c '^SKU-[0-9]*-[A-Z] [0-9.]*$' "$T/rank.out")" = 3 ] || die "rank output: $(cat "$T/rank.out")"
grep -q "ranked 3 by model v1" "$T/rank.err" || die "rank: $(cat "$T/rank.err")"
ids=""
for s in "$@"; do
	t=$(awk -F, -v s="$s" '$3 == s { print $4; exit }' "$FIX/data.csv")
	ids="$ids $(awk -F, -v ts="$t" '$3 == ts { print $2 }' "$T/data/pool.csv" "$T/data/devices"/*.csv | head -1)"
done
app --side 1,2,1,7 rank $ids >"$T/rank2.out" 2>"$T/rank2.err" || die "rank by ids: $(cat "$T/rank2.err")"
[ "$(cut -d' ' -f2 "$T/rank.out")" = "$(cut -d' ' -f2 "$T/rank2.out")" ] ||
    die "scores differ: $(cat "$T/rank.out") vs $(cat "$T/rank2.out")"
out=$(app --schema "$FIX/schema.txt" rank "" 2>&1) && die "an empty id was ranked"
case $out in *"item '' is not an id of field 'item'"*) ;; *) die "empty id: $out" ;; esac
kill "$DPID"; wait "$DPID" 2>/dev/null || true
echo "schema_strid OK"
