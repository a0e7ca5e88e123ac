# dcctl enroll: a device pre-enrolled by the admin needs no enrollment
# token. dcctl makes the key pair, registers the public key over the admin
# socket and writes the key file (cloud key pinned) that deviced reads as
# <data-dir>/<id>/auth.key. Here the cloud has a token but the devices do
# not:
#   1. an enrolled device does a full round (register, download, upload
#      acknowledged) with its key file and no token; with
#      auth.user-devices=1 a second pre-enrolled id binds the same user
#      (the admin vouched for it);
#   2. a device with a key the cloud does not know and no token is refused
#      (E_UNAUTHENTICATED), and so is an enrolled key file used under
#      another device id; nothing of theirs is stored;
#   3. enrolling an enrolled id again is refused (E_FORBIDDEN) unless
#      --replace, which makes the old key file useless and the new one work;
#      an existing key file is never overwritten;
#   (after a restart, the running device accepts the cloud's signed
#   announcement of v2 and downloads it;)
#   4. keys of a legacy auth.db move into the store, which then holds them.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 3
import_pool
start_cloudd -o auth.mode=mac -o auth.user-devices=1
wait_model 1
TOKEN_SAVED=$DCCL_AUTH_TOKEN
unset DCCL_AUTH_TOKEN	# the devices below have no token
u0=$(ls "$SHARDS" | grep local | sort -n | head -1)
u0=${u0%%.*}

log "enroll dev-a"
out=$(dcctl enroll dev-a -o "$T/dev-a.key") || die "dcctl enroll: $out"
echo "$out"
case $out in "enrolled dev-a: key file $T/dev-a.key"*) ;; *) die "enroll output: $out" ;; esac
[ "$(stat -c %a "$T/dev-a.key")" = 600 ] || die "key file mode $(stat -c %a "$T/dev-a.key")"
[ "$(stat -c %s "$T/dev-a.key")" = 120 ] || die "key file size"
[ "$(sql "SELECT count(*) FROM device_keys WHERE device_id='dev-a'")" = 1 ] || die "key not in the store"
[ "$(sql "SELECT counter FROM device_keys WHERE device_id='dev-a'")" = 0 ] || die "counter not 0"
grep -q "AUTH-ENROLL: device=dev-a .* by dcctl" "$T/cloudd.log" || die "no enrol log line"

log "full round with the key file and no token"
mkdir -p "$T/dev/dev-a"
cp "$T/dev-a.key" "$T/dev/dev-a/auth.key"
start_deviced a -o deviced.local-data="$SHARDS/$u0.local.csv" -o deviced.user-id="$u0" \
    -o deviced.device-id=dev-a -o deviced.run-once=yes -o auth.mode=mac
rc=0; wait "$DPID" || rc=$?
[ $rc = 0 ] || die "deviced dev-a exit $rc"
grep -q "REGISTERED: device=dev-a" "$T/a.log" || die "dev-a did not register"
grep -q "DOWNLOAD: device=dev-a" "$T/a.log" || die "dev-a did not download"
grep -q "ACK: device=dev-a " "$T/a.log" || die "dev-a upload not acknowledged"
grep -q "CLOUD-ERROR" "$T/a.log" && die "dev-a got an error"
[ "$(sql "SELECT count(*) FROM patches WHERE device_id='dev-a'")" -ge 1 ] || die "no patch stored"
[ "$(sql "SELECT count(*) FROM devices WHERE device_id='dev-a'")" = 1 ] || die "not registered"
grep -q "RPC-ERROR" "$T/cloudd.log" && die "cloudd refused a request"

log "a second pre-enrolled id for the same user (auth.user-devices=1)"
dcctl enroll dev-p2 -o "$T/dev-p2.key" >/dev/null || die "dcctl enroll dev-p2"
mkdir -p "$T/dev/dev-p2"
cp "$T/dev-p2.key" "$T/dev/dev-p2/auth.key"
start_deviced p2 -o deviced.local-data="$SHARDS/$u0.local.csv" -o deviced.user-id="$u0" \
    -o deviced.device-id=dev-p2 -o deviced.run-once=yes -o auth.mode=mac
rc=0; wait "$DPID" || rc=$?
[ $rc = 0 ] || die "deviced dev-p2 exit $rc"
grep -q "REGISTERED: device=dev-p2" "$T/p2.log" ||
    die "a pre-enrolled id was refused a user that has a device"
[ "$(sql "SELECT count(*) FROM devices WHERE user_id=$u0")" = 2 ] || die "dev-p2 not bound"

log "unknown key, no token: refused"
start_deviced b -o deviced.local-data="$SHARDS/$u0.local.csv" -o deviced.user-id="$u0" \
    -o deviced.device-id=dev-b -o auth.mode=mac
wait_for "grep -q 'CLOUD-ERROR: device=dev-b register: E_UNAUTHENTICATED' '$T/b.log'" 100 0.1 ||
    die "unknown key not refused"
kill "$DPID"; wait "$DPID" || true
grep -q "RPC-ERROR: E_UNAUTHENTICATED device=dev-b" "$T/cloudd.log" || die "no refusal log line"
log "an enrolled key file under another id: refused"
mkdir -p "$T/dev/dev-c"
cp "$T/dev-a.key" "$T/dev/dev-c/auth.key"
start_deviced c -o deviced.local-data="$SHARDS/$u0.local.csv" -o deviced.user-id="$u0" \
    -o deviced.device-id=dev-c -o auth.mode=mac
wait_for "grep -q 'CLOUD-ERROR: device=dev-c register: E_UNAUTHENTICATED' '$T/c.log'" 100 0.1 ||
    die "borrowed key not refused"
kill "$DPID"; wait "$DPID" || true
[ "$(sql "SELECT count(*) FROM device_keys WHERE device_id IN ('dev-b', 'dev-c')")" = 0 ] ||
    die "an unknown device was enrolled"
[ "$(sql "SELECT count(*) FROM devices WHERE device_id IN ('dev-b', 'dev-c')")" = 0 ] ||
    die "an unknown device was registered"

log "re-enrolling dev-a: refused, then explicit with --replace"
if out=$(dcctl enroll dev-a -o "$T/dev-a2.key" 2>&1); then die "re-enrol accepted: $out"; fi
echo "$out"
case $out in *E_FORBIDDEN*"already enrolled"*) ;; *) die "re-enrol: $out" ;; esac
[ -e "$T/dev-a2.key" ] && die "a key file was written for a refused enrolment"
if out=$(dcctl enroll dev-a -o "$T/dev-a.key" 2>&1); then die "overwrote a key file"; fi
case $out in *"exists"*) ;; *) die "existing file: $out" ;; esac
if out=$(dcctl enroll 'bad id!' -o "$T/x.key" 2>&1); then die "bad id accepted"; fi
out=$(dcctl enroll --replace dev-a -o "$T/dev-a2.key") || die "enroll --replace: $out"
echo "$out"
case $out in *"old key is replaced"*) ;; *) die "replace output: $out" ;; esac
# The old key file no longer authenticates ...
start_deviced a-old -o deviced.local-data="$SHARDS/$u0.local.csv" -o deviced.user-id="$u0" \
    -o deviced.device-id=dev-a -o auth.mode=mac
wait_for "grep -q 'CLOUD-ERROR: device=dev-a register: E_UNAUTHENTICATED' '$T/a-old.log'" 100 0.1 ||
    die "the replaced key still works"
kill "$DPID"; wait "$DPID" || true
# ... the new one does.
cp "$T/dev-a2.key" "$T/dev/dev-a/auth.key"
start_deviced a-new -o deviced.local-data="$SHARDS/$u0.local.csv" -o deviced.user-id="$u0" \
    -o deviced.device-id=dev-a -o auth.mode=mac
wait_for "grep -q 'REGISTERED: device=dev-a' '$T/a-new.log'" 100 0.1 || die "the new key does not work"
kill "$DPID"; wait "$DPID" || true

log "keys survive a restart"
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit"
DCCL_AUTH_TOKEN=$TOKEN_SAVED start_cloudd -o auth.mode=mac
wait_for "[ \$(grep -c 'READY: cloudd' '$T/cloudd.log') -ge 2 ]" 100 0.1 || die "no restart"
start_deviced a-again -o deviced.local-data="$SHARDS/$u0.local.csv" -o deviced.user-id="$u0" \
    -o deviced.device-id=dev-a -o auth.mode=mac
wait_for "grep -q 'REGISTERED: device=dev-a' '$T/a-again.log'" 100 0.1 || die "not after a restart"
log "a signed announcement from the real cloud is acted on (protocol v3)"
dcctl train 1 >/dev/null || die "dcctl train"
wait_for "grep -q 'ANNOUNCED: model v2\$' '$T/a-again.log'" 300 0.1 ||
    die "the cloud's announcement of v2 was not accepted: $(grep ANNOUNCE "$T/a-again.log")"
wait_for "grep -q 'DOWNLOAD: device=dev-a model v2 installed' '$T/a-again.log'" 300 0.1 ||
    die "v2 not downloaded after its announcement"
grep -q "BAD-ANNOUNCE\|AUTH-ANNOUNCE" "$T/a-again.log" && die "an announcement was refused"
kill "$DPID"; wait "$DPID" || true

log "a legacy auth.db moves into the store once"
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit"
mkdir -p "$T/leg"
sqlite3 "$T/leg/auth.db" "CREATE TABLE cloud_key(id INTEGER PRIMARY KEY, pk BLOB NOT NULL,
    sk BLOB NOT NULL); CREATE TABLE device_keys(device_id TEXT PRIMARY KEY, pk BLOB NOT NULL,
    counter INTEGER NOT NULL, enrolled INTEGER NOT NULL);
    INSERT INTO cloud_key VALUES(1, randomblob(32), randomblob(32));
    INSERT INTO device_keys VALUES('old-1', randomblob(32), 77, 5);"
pk=$(sqlite3 "$T/leg/auth.db" "SELECT hex(pk) FROM cloud_key")
DCCL_AUTH_TOKEN=$TOKEN_SAVED start_cloudd -o auth.mode=mac -o cloudd.data-dir="$T/leg"
wait_for "grep -q 'AUTH: moved the cloud key and 1 device key(s) from $T/leg/auth.db' '$T/cloudd.log'" \
    100 0.1 || die "legacy keys not moved"
wait_for "[ \$(grep -c 'READY: cloudd' '$T/cloudd.log') -ge 3 ]" 100 0.1 || die "not ready"
[ -e "$T/leg/auth.db" ] && die "auth.db not renamed"
[ -e "$T/leg/auth.db.imported" ] || die "no auth.db.imported"
[ "$(sqlite3 "$T/leg/cloudd.db" "SELECT hex(pk) FROM cloud_key")" = "$pk" ] || die "cloud key not kept"
[ "$(sqlite3 "$T/leg/cloudd.db" "SELECT counter FROM device_keys WHERE device_id='old-1'")" = 77 ] ||
    die "device key not moved"
echo "enroll OK"
