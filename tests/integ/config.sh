# Configuration errors stop start-up with file:line messages; --check and
# --print-config work; an unwritable database path exits non-zero with a
# DB-OPEN line.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
cat >"$T/bad.conf" <<'CONF'
[cloudd]
listen = tcp://127.0.0.1:1
lsiten = x
[limits]
max-k = many
max-inflight = 0
[train]
on-start = perhaps
CONF
rc=0; "$BIN/cloudd" -f "$T/bad.conf" -n >"$T/out" 2>&1 || rc=$?
[ $rc = 1 ] || die "bad config exit $rc"
grep -q "bad.conf:3: unknown option 'cloudd.lsiten'" "$T/out" || die "unknown key line"
grep -q "bad.conf:5: limits.max-k: expected an integer" "$T/out" || die "int line"
grep -q "bad.conf:6: limits.max-inflight: 0 out of range" "$T/out" || die "range line"
grep -q "bad.conf:8: train.on-start: expected yes or no" "$T/out" || die "bool line"
printf '[cloudd]\nno equals sign here\n' >"$T/syntax.conf"
rc=0; "$BIN/cloudd" -f "$T/syntax.conf" -n >"$T/out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "syntax.conf:2: syntax error" "$T/out" || die "syntax error"
rc=0; "$BIN/cloudd" -f "$T/missing.conf" -n >"$T/out" 2>&1 || rc=$?
[ $rc = 1 ] || die "missing config must fail"
rc=0; "$BIN/cloudd" -o limits.max-k=5 -o bogus=1 -n >"$T/out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "unknown option 'bogus'" "$T/out" || die "-o bogus"
for g in abc 0 1e-3, 1,1,1,1,1,1,1,1,1; do
	rc=0; "$BIN/cloudd" -o train.lr-grid="$g" -n >"$T/out" 2>&1 || rc=$?
	[ $rc = 1 ] && grep -q "^train.lr-grid: " "$T/out" || die "train.lr-grid=$g accepted"
done
"$BIN/cloudd" -o train.lr-grid= -n | grep -q "configuration OK" || die "empty train.lr-grid"
"$BIN/cloudd" -f "$ROOT/conf/cloudd.conf" -n | grep -q "configuration OK" || die "shipped cloudd.conf"
"$BIN/deviced" -f "$ROOT/conf/deviced.conf" -n | grep -q "configuration OK" || die "shipped deviced.conf"
"$BIN/cloudd" -f "$ROOT/conf/cloudd.conf" -o limits.max-k=7 -p >"$T/out"
grep -q "limits.max-k *= 7 *# flag" "$T/out" || die "print-config flag source"
grep -q "train.dim *= 16 *# " "$T/out" || die "print-config"
"$BIN/deviced" -p >"$T/out"
# The default serves ft-lcoffm-pair3-fb's settings (test_learn checks the
# served job against that row).
for kv in "learn.adapt *= finetune" "learn.lc *= offset" "learn.lc-target *= model" \
    "learn.pair-weight *= 3 " "learn.bias-fallback *= yes"; do
	grep -q "$kv *# default" "$T/out" || die "deviced print: no default $kv"
done
# deviced's SIGHUP reloads nothing, so no deviced option may claim it does.
"$BIN/deviced" -p | grep -q "reloadable" && die "deviced marks an option reloadable"
# The class configs leave the FLOPs budget to the class (a fixed number
# overrides it: low would assemble as many blocks as high).
for c in low mid high; do
	"$BIN/deviced" -f "$ROOT/conf/deviced-$c.conf" -p |
	    grep -q "device.flops-budget *= 0 " || die "deviced-$c.conf overrides the class FLOPs budget"
done
# The MetaPatch preset serves mp-fb's settings (the previous default).
"$BIN/deviced" -f "$ROOT/conf/deviced-metapatch.conf" -n | grep -q "configuration OK" ||
    die "shipped deviced-metapatch.conf"
"$BIN/deviced" -f "$ROOT/conf/deviced-metapatch.conf" -p >"$T/out"
for kv in "learn.adapt *= metapatch" "learn.lc *= none" "learn.pair-weight *= 0 " \
    "learn.window *= 64 "; do
	grep -q "$kv *# file" "$T/out" || die "deviced-metapatch.conf: no $kv"
done
rc=0; "$BIN/cloudd" -o cloudd.data-dir=/proc/dccl-nope >"$T/out" 2>&1 || rc=$?
[ $rc != 0 ] && grep -q "DATA-DIR\|DB-OPEN" "$T/out" || die "unwritable data dir"
mkdir -p "$T/ro"; chmod 500 "$T/ro"
# Root ignores mode bits: as root the directory is made read-only by a
# read-only bind mount in a private mount namespace, else cloudd runs as
# nobody. Neither possible is a failure, not a silent pass.
if [ "$(id -u)" != 0 ]; then
	RO=""
elif unshare -m true 2>/dev/null; then
	RO="unshare -m sh -c 'mount --bind \"\$0\" \"\$0\" && mount -o remount,bind,ro \"\$0\" \"\$0\" && exec \"\$@\"' $T/ro"
elif command -v setpriv >/dev/null 2>&1; then
	RO="setpriv --reuid=65534 --regid=65534 --clear-groups"
else
	die "as root, cannot make a read-only directory (no unshare -m, no setpriv)"
fi
rc=0; eval "$RO" '"$BIN/cloudd"' -o cloudd.data-dir='"$T/ro"' >"$T/out" 2>&1 || rc=$?
[ $rc != 0 ] && grep -q "DB-OPEN" "$T/out" || die "read-only dir: exit $rc, $(cat "$T/out")"
rc=0; "$BIN/cloudd" -o cloudd.db-path=/dev/null/x.db -o cloudd.data-dir="$T/d" >"$T/out" 2>&1 || rc=$?
[ $rc != 0 ] && grep -q "DB-OPEN" "$T/out" || die "unopenable db path"
# More devices than nanomsg has sockets for: refused up front, with advice.
# The devices share the uplink's lanes (deviced/uplink.h, 16 by default)
# and the SUB socket; each listening for its app takes one more.
make_data 520 2
rc=0; "$BIN/deviced" -o deviced.shards="$SHARDS" -o deviced.data-dir="$T/dv" \
    -o deviced.app-listen='ipc://{dir}/app.ipc' >"$T/out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "SHARDS: 520 devices need 537 nanomsg sockets.*at most 495 per process" "$T/out" ||
    die "520 devices in one process: exit $rc, $(tail -n 2 "$T/out")"
[ -e "$T/dv" ] && die "deviced started devices before refusing"
echo "config checks OK"
"$BIN/cloudd" --example-config | diff -u "$ROOT/conf/cloudd.conf" - ||
    die "conf/cloudd.conf is stale: regenerate with cloudd --example-config"
"$BIN/deviced" --example-config | diff -u "$ROOT/conf/deviced.conf" - ||
    die "conf/deviced.conf is stale: regenerate with deviced --example-config"
