# The per-user slice (protocol 7, issue 14; shared/ml/ctr_slice.h), in
# auth.mode mac, on real daemons:
#  1. attack: a device registered as user 0 asks for the manifest naming
#     another user (B) in every unknown field it can add (refused:
#     E_BAD_REQUEST, the request schema has no such field), then plainly;
#     it gets user 0's rows exactly as they are in the stored model, and
#     none of the bytes it received (both replies, every chunk) hold B's
#     emb_user row, nor the chunks user 0's; the chunks are the shared
#     part, smaller than the model;
#  2. the rows are MACed: one bit flipped in them fails the check;
#  3. a real device through a proxy that flips a bit in the manifest's rows
#     refuses every such reply and installs nothing;
#  4. a device of a cold user (no pool samples: its row is at its initial
#     values) and one of an ordinary user both install their slice and
#     upload. (A user id the model has no row for cannot register while
#     that model is current; tests/unit/test_slice.c covers it.)
#  5. a device whose store holds a full model (protocol 6) drops it at
#     start and installs its slice in its place;
#  6. a deviced hosting every user's device holds the version's shared
#     part once (deviced/dev_model.c), after the download and after a
#     restart that loads every slice from its store; it is on disk once
#     (deviced/dshared.h: <data-dir>/shared), the device stores hold a
#     reference and their rows;
#  7. a shared part file gone or damaged: the devices download again.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
# users 3 and 4 are cold: no pool samples, rows at their initial values
"$BIN/dccl-data" synth "$T/data" --users 8 --items 300 --min-per-user 40 \
    --max-per-user 60 --seed 7 --cold 0.3 >/dev/null || die "synth failed"
SHARDS=$T/data/devices
grep -q "^3," "$T/data/pool.csv" && die "user 3 is not cold"
import_pool
start_cloudd -o auth.mode=mac
wait_model 1
sqlite3 "$T/cloud/cloudd.db" "SELECT writefile('$T/model.bin', blob) FROM models WHERE version = 1" >/dev/null
[ -s "$T/model.bin" ] || die "no stored model"
B=5

log "1. a device of user 0 asks for user $B's rows"
mkdir -p "$T/got"
"$BIN/dccl-probe" "$EP" slice probe $B "$T/got" >"$T/slice.out" 2>&1 || {
	cat "$T/slice.out"; die "slice probe failed"; }
cat "$T/slice.out" | cut -c1-100
[ "$(sql "SELECT user_id FROM devices WHERE device_id='probe'")" = 0 ] ||
    die "probe not registered as user 0"
grep -q "^REPLY manifest" "$T/slice.out" || die "no authenticated manifest"
grep -q "FORGED-REPLY" "$T/slice.out" && die "the genuine manifest failed its MAC"
grep -q "^ROWS user 0 n " "$T/slice.out" || die "rows not for user 0"
"$BIN/dccl-probe" "$EP" model-rows "$T/model.bin" 0 >"$T/want0.out"
"$BIN/dccl-probe" "$EP" model-rows "$T/model.bin" $B >"$T/wantB.out"
[ -s "$T/want0.out" ] || die "no rows in the stored model"
grep "^ROW " "$T/slice.out" | sort >"$T/got.rows"
sort "$T/want0.out" >"$T/want0.rows"
cmp -s "$T/got.rows" "$T/want0.rows" || {
	diff "$T/got.rows" "$T/want0.rows" | cut -c1-120; die "rows differ from user 0's"; }
hexof() { od -An -v -tx1 "$1" | tr -d ' \n'; }
emb0=$(awk '$2 == "emb_user" {print $5}' "$T/want0.out")
embB=$(awk '$2 == "emb_user" {print $5}' "$T/wantB.out")
[ -n "$embB" ] && [ "$emb0" != "$embB" ] || die "user rows not distinct"
grep -q "^CRAFTED ERROR E_BAD_REQUEST" "$T/slice.out" ||
    die "a request naming another user was not refused"
man=$(hexof "$T/got/manifest.raw"); sh=$(hexof "$T/got/shared.bin")
case $(hexof "$T/got/crafted.raw") in *"$embB"*) die "user $B's row in the crafted reply" ;; esac
case $man in *"$embB"*) die "user $B's row is in the manifest reply" ;; esac
case $sh in *"$embB"*) die "user $B's row is in the shared part" ;; esac
case $sh in *"$emb0"*) die "user 0's row is in the shared part" ;; esac
case $man in *"$emb0"*) ;; *) die "user 0's row is not in the manifest reply" ;; esac
full=$(stat -c %s "$T/model.bin"); shared=$(stat -c %s "$T/got/shared.bin")
echo "model $full bytes, shared part $shared bytes"
[ "$shared" -lt "$full" ] || die "the shared part is not smaller"

log "2. rows with one bit flipped fail the MAC"
grep -q "^TAMPERED-ROWS rejected" "$T/slice.out" || die "tampered rows accepted"

log "3. a proxy flips a bit in the rows a real device gets"
MITM="tcp://127.0.0.1:$(free_port 5)"
"$BIN/dccl-probe" "$MITM" mitm-rows "$EP" 30 >"$T/mitm-rows.out" 2>&1 &
MPID=$!; PIDS="$PIDS $MPID"
u1=$(ls "$SHARDS" | grep local | sort -n | head -1); u1=${u1%%.*}
touch "$T/vic.log"
start_deviced vic -o deviced.local-data="$SHARDS/$u1.local.csv" \
    -o deviced.user-id="$u1" -o deviced.device-id=vic -o deviced.cloud="$MITM"
wait_for "[ \$(grep -c 'BAD-REPLY: device=vic: forged' '$T/vic.log') -ge 2 ] ||
    grep -q 'installed' '$T/vic.log'" 300 0.1 || true
kill "$DPID" 2>/dev/null || true; wait "$DPID" || true
kill "$MPID" 2>/dev/null || true; wait "$MPID" || true
cat "$T/mitm-rows.out"
grep -q "MITM-ROWS flipped" "$T/mitm-rows.out" || die "the proxy saw no manifest"
grep -q "BAD-REPLY: device=vic: forged" "$T/vic.log" || die "tampered rows not refused"
grep -q "DOWNLOAD: device=vic model v[0-9]* installed" "$T/vic.log" &&
    die "a model with tampered rows was installed"

log "4. an ordinary and a cold user install their slices"
cold=3
start_deviced ok -o deviced.local-data="$SHARDS/$u1.local.csv" \
    -o deviced.user-id="$u1" -o deviced.device-id=okdev -o deviced.run-once=yes
P1=$DPID
start_deviced cold -o deviced.local-data="$SHARDS/$cold.local.csv" \
    -o deviced.user-id="$cold" -o deviced.device-id=colddev -o deviced.run-once=yes
P2=$DPID
wait "$P1" || die "ordinary device exit $?"
wait "$P2" || die "cold device exit $?"
grep -q "DOWNLOAD: device=okdev model v1 installed" "$T/ok.log" || die "ok: no install"
grep -q "DOWNLOAD: device=colddev model v1 installed" "$T/cold.log" || die "cold: no install"
[ "$(sql "SELECT count(*) FROM patches WHERE device_id IN ('okdev','colddev')")" = 2 ] ||
    die "expected a patch from each"
grep "installed" "$T/ok.log" "$T/cold.log" | sed 's/.*DOWNLOAD: //'

log "5. a store of protocol 6 (the full model) is dropped and the slice downloaded"
db="$T/dev/okdev/device.db"
sqlite3 "$db" "UPDATE model SET blob = readfile('$T/model.bin')" || die "store edit"
[ "$(sqlite3 "$db" "SELECT length(blob) FROM model")" = "$(stat -c %s "$T/model.bin")" ] ||
    die "the full model is not in the store"
start_deviced ok2 -o deviced.local-data="$SHARDS/$u1.local.csv" \
    -o deviced.user-id="$u1" -o deviced.device-id=okdev -o deviced.run-once=yes
wait "$DPID" || die "restarted device exit $?"
grep -q "MODEL: device=okdev stored model v1 is not this user's slice" "$T/ok2.log" ||
    die "the full model was used"
grep -q "DOWNLOAD: device=okdev model v1 installed" "$T/ok2.log" || die "no slice installed"
[ "$(sqlite3 "$db" "SELECT length(blob) FROM model")" -lt "$(stat -c %s "$T/model.bin")" ] ||
    die "the store still holds the full model"
log "6. one deviced hosting every device holds the shared part once"
start_deviced fleet -o deviced.shards="$SHARDS" -o deviced.run-once=yes
wait "$DPID" || die "fleet exit $?"
n=$(ls "$SHARDS" | grep -c local)
[ "$(grep -c 'DOWNLOAD: device=.* model v1 installed' "$T/fleet.log")" = "$n" ] ||
    die "not every hosted device installed its slice"
[ "$(grep -c 'MODEL: v1 shared part held once' "$T/fleet.log")" = 1 ] ||
    die "the shared part was not held once"
start_deviced fleet2 -o deviced.shards="$SHARDS" -o deviced.run-once=yes
wait "$DPID" || die "fleet restart exit $?"
grep -q "DOWNLOAD: " "$T/fleet2.log" && die "a stored slice was downloaded again"
[ "$(grep -c 'MODEL: v1 shared part held once' "$T/fleet2.log")" = 1 ] ||
    die "the stored slices do not share the shared part"
grep "EXIT: " "$T/fleet2.log" | sed 's/.*EXIT: //'
ls "$T/dev/shared"
[ "$(ls "$T/dev/shared" | grep -c '^v1-.*\.part$')" = 1 ] &&
    [ "$(ls "$T/dev/shared" | wc -l)" = 1 ] || die "not one shared part file"
[ "$(stat -c %s "$T/dev/shared/"v1-*.part)" = "$shared" ] ||
    die "the shared part file is not the shared part"
for db in "$T"/dev/*/device.db; do
	b=$(sqlite3 "$db" "SELECT length(blob) FROM model")
	[ -z "$b" ] || [ "$b" -lt 4096 ] || die "$db holds a $b-byte model, not a reference"
done

log "7. the shared part file gone, then damaged: the devices download again"
rm "$T/dev/shared/"v1-*.part
# All loaded before any starts (start-jitter 0): a device started as it
# loads would download and write the part again before the later ones
# load, and those would rightly find it.
start_deviced fleet3 -o deviced.shards="$SHARDS" -o deviced.run-once=yes \
    -o net.start-jitter-ms=0
wait "$DPID" || die "fleet exit $?"
grep -q "stored model refused: its shared part is gone" "$T/fleet3.log" ||
    die "a missing shared part was not noticed"
[ "$(grep -c 'DOWNLOAD: device=.* model v1 installed' "$T/fleet3.log")" = "$n" ] ||
    die "not every device downloaded again"
f=$(ls "$T/dev/shared/"v1-*.part)
printf '\001' | dd of="$f" bs=1 seek=$((shared / 2)) conv=notrunc 2>/dev/null
start_deviced fleet4 -o deviced.shards="$SHARDS" -o deviced.run-once=yes \
    -o net.start-jitter-ms=0
wait "$DPID" || die "fleet exit $?"
grep -q "stored model refused: .*altered" "$T/fleet4.log" ||
    die "a damaged shared part was not refused"
[ "$(grep -c 'DOWNLOAD: device=.* model v1 installed' "$T/fleet4.log")" = "$n" ] ||
    die "not every device downloaded again"
echo "slice OK"
