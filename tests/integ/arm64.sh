#!/bin/sh
# deviced built for arm64 (make cross ARCH=arm64) runs under qemu-user against
# a native cloudd over tcp on loopback, next to a native deviced for the same
# user: both register, download model v1, retrieve, learn, upload and serve
# rank requests on their app sockets. The arm64 device's uploaded patch, its
# evaluation scores and its app-socket scores must match the native device's
# within floating-point tolerance (OpenBLAS's kernels and FMA use differ
# between the two architectures, so bit-equality is not expected).
#
# Skips (exit 77) when the arm64 build or qemu-user is absent: make
# cross-check installs the cross packages, builds and runs this test.
# DCCL_CROSS_BIN selects the arm64 binaries (default build/arm64/bin).
. "$(dirname "$0")/../../scripts/itest-lib.sh"
XBIN=${DCCL_CROSS_BIN:-build/arm64/bin}
case $XBIN in /*) ;; *) XBIN=$ROOT/$XBIN ;; esac
XLIB=${DCCL_CROSS_ROOT:-/opt/dccl-cross}/arm64/usr/lib/aarch64-linux-gnu
[ -x "$XBIN/deviced" ] || skip "no arm64 deviced in $XBIN (make cross-check installs the cross packages, builds it and runs this test)"
command -v qemu-aarch64 >/dev/null || skip "qemu-aarch64 missing (make cross-deps)"
[ -e /lib/ld-linux-aarch64.so.1 ] || skip "arm64 glibc missing (make cross-deps)"
[ -e "$XLIB/libnanomsg.so.5" ] || skip "arm64 libnanomsg missing in $XLIB (make cross-deps)"
command -v python3 >/dev/null || skip "python3 missing"
# Relative tolerance of the comparisons (scale: max(1, |native value|)).
TOL=${DCCL_ARM64_TOL:-1e-3}
# qemu-user passes -E to the emulated program only: the unpacked arm64
# libnanomsg (scripts/install-deps.sh --cross) is found there.
xrun() { qemu-aarch64 -E LD_LIBRARY_PATH="$XLIB" "$@"; }
xrun "$XBIN/deviced" -V | grep -q 'deviced' || die "the arm64 deviced does not run under qemu"
file "$XBIN/deviced" 2>/dev/null | grep -q aarch64 || [ "$(od -An -j18 -N2 -tu2 "$XBIN/deviced" | tr -d ' ')" = 183 ] ||
    die "$XBIN/deviced is not an arm64 ELF"

endpoints
make_data 4 150
import_pool
start_cloudd
wait_model 1
U=$(ls "$SHARDS" | sed -n 's/\.local\.csv$//p' | sort -n | head -1)
mkdir -p "$T/eval-nat" "$T/eval-arm"
# The same options for both; only the id prefix, eval dir and binary differ.
OPTS="-o deviced.shards=$SHARDS -o deviced.devices=1 -o learn.seed=3
    -o deviced.eval-methods=cloud,metapatch -o learn.retrain-every=0
    -o deviced.app-listen=ipc://{dir}/app.ipc -o net.request-timeout-ms=30000"
# shellcheck disable=SC2086
start_deviced nat -o deviced.device-id=nat -o deviced.eval-dir="$T/eval-nat" $OPTS
NPID=$DPID
log "arm64 deviced under qemu-aarch64"
# The arm64 build speaks sd_notify without libsystemd (shared/notify.c):
# a datagram listener stands in for systemd.
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2], "w").close()
while True:
    m = s.recv(4096)
    with open(sys.argv[2], "a") as f:
        f.write(m.decode() + "\n")
' "$T/notify.sock" "$T/notify.out" &
PIDS="$PIDS $!"
wait_for "[ -e '$T/notify.out' ]" 100 0.1 || die "no notify listener"
# Not through xrun: $! must be qemu's pid (the emulated deviced's), not a
# subshell's, for the signals below.
# shellcheck disable=SC2086
qemu-aarch64 -E LD_LIBRARY_PATH="$XLIB" -E NOTIFY_SOCKET="$T/notify.sock" \
    "$XBIN/deviced" -o deviced.cloud="$EP" -o deviced.cloud-pub="$PUB" \
    -o deviced.data-dir="$T/dev" -o net.resend-ms=10000 \
    -o net.backoff-max-ms=1000 -o deviced.device-id=arm \
    -o deviced.eval-dir="$T/eval-arm" $OPTS >>"$T/arm.log" 2>&1 &
APID=$!
PIDS="$PIDS $APID"
for n in nat arm; do
	wait_for "grep -q 'ACK: device=$n-$U' '$T/$n.log'" 1200 0.1 ||
	    die "$n: no upload acknowledged"
	kill -0 "$([ $n = nat ] && echo "$NPID" || echo "$APID")" || die "$n died"
done
grep "REGISTERED\|DOWNLOAD\|RETRIEVE\|TRAIN\|ACK" "$T/arm.log"
for step in REGISTERED: 'DOWNLOAD: .* installed' 'RETRIEVE: .*got' 'TRAIN: ' 'ACK: '; do
	grep -q "$step" "$T/arm.log" || die "arm64: no '$step' line"
done
# The same work was done: samples, retrieved samples, adoption.
for n in nat arm; do
	sed -n "s/.*TRAIN: device=$n-$U \([0-9]* local + [0-9/]* retrieved\).*\(patch adopted\|kept the cloud model\).*/\1 \2/p" \
	    "$T/$n.log" >"$T/$n.train"
	[ -s "$T/$n.train" ] || die "$n: no TRAIN line"
done
cmp -s "$T/nat.train" "$T/arm.train" || die "the jobs differ: native '$(cat "$T/nat.train")', arm64 '$(cat "$T/arm.train")'"
echo "both: $(cat "$T/arm.train")"

log "the uploaded patches match"
for n in nat arm; do
	[ "$(sql "SELECT count(*) FROM patches WHERE device_id = '$n-$U'")" = 1 ] || die "$n: not one patch"
	sql "SELECT hex(blob) FROM patches WHERE device_id = '$n-$U'" >"$T/$n.patch.hex"
done
# Parses the protobuf UploadPatch (proto/dccl.proto: tensors = 2; Tensor in
# proto/model.proto: name = 1, shape = 2, data = 3 packed float32).
cat >"$T/cmp.py" <<'EOF'
import struct, sys
def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1; v |= (c & 0x7f) << s; s += 7
        if c < 0x80: return v, i
def fields(b):
    i = 0
    while i < len(b):
        k, i = varint(b, i); f, t = k >> 3, k & 7
        if t == 0: v, i = varint(b, i)
        elif t == 2: n, i = varint(b, i); v = b[i:i + n]; i += n
        elif t == 5: v = b[i:i + 4]; i += 4
        elif t == 1: v = b[i:i + 8]; i += 8
        else: raise SystemExit("bad wire type %d" % t)
        yield f, t, v
def tensors(path):
    out = {}
    for f, t, v in fields(bytes.fromhex(open(path).read().strip())):
        if f != 2: continue
        name, data = "", []
        for g, u, w in fields(v):
            if g == 1: name = w.decode()
            elif g == 3 and u == 2: data += struct.unpack("<%df" % (len(w) // 4), w)
            elif g == 3 and u == 5: data += struct.unpack("<f", w)
        out[name] = data
    return out
a, b, tol = tensors(sys.argv[1]), tensors(sys.argv[2]), float(sys.argv[3])
if sorted(a) != sorted(b) or not a: raise SystemExit("tensors differ: %s vs %s" % (sorted(a), sorted(b)))
worst, n = 0.0, 0
for k in a:
    if len(a[k]) != len(b[k]): raise SystemExit("%s: %d vs %d values" % (k, len(a[k]), len(b[k])))
    for x, y in zip(a[k], b[k]):
        worst = max(worst, abs(x - y) / max(1.0, abs(x))); n += 1
print("patch: %d tensors, %d values, max relative difference %.3g" % (len(a), n, worst))
if n == 0 or worst > tol: raise SystemExit("patch differs by %.3g > %g" % (worst, tol))
EOF
python3 "$T/cmp.py" "$T/nat.patch.hex" "$T/arm.patch.hex" "$TOL" || die "patches differ"

log "the evaluation scores match"
# eval CSV: method,user,item,label,score, one row per test sample and
# method in the same order on both.
for n in nat arm; do
	wait_for "[ -s '$T/eval-$n/$n-$U.csv' ]" 300 0.1 || die "$n: no eval file"
	grep -v '^#' "$T/eval-$n/$n-$U.csv" | grep -v '^method' >"$T/$n.eval"
done
[ -s "$T/nat.eval" ] || die "no evaluation rows"
[ "$(wc -l <"$T/nat.eval")" = "$(wc -l <"$T/arm.eval")" ] || die "eval row counts differ"
paste -d, "$T/nat.eval" "$T/arm.eval" | awk -F, -v tol="$TOL" '
    { if ($1 != $6 || $2 != $7 || $3 != $8 || $4 != $9) { print "row " NR " differs: " $0; bad = 1 }
      d = $5 - $10; if (d < 0) d = -d; a = $5 < 0 ? -$5 : $5; if (a < 1) a = 1
      if (d / a > worst) worst = d / a; n++ }
    END { printf "eval: %d scores, max relative difference %.3g\n", n, worst
      exit (bad || n == 0 || worst > tol) }' || die "evaluation scores differ"

log "rank requests over the app socket match"
ITEMS=$(grep -v '^#' "$SHARDS/$U.local.csv" | grep -v '^user' | cut -d, -f2 | head -20 | tr '\n' ' ')
for n in nat arm; do
	wait_for "grep -q 'APP: device=$n-$U listening' '$T/$n.log'" 100 0.1 || die "$n: no app socket"
	# shellcheck disable=SC2086
	"$BIN/dcctl" device -s "ipc://$T/dev/$n-$U/app.ipc" -t 60 -T 1600000000 \
	    rank $ITEMS >"$T/$n.rank" 2>"$T/$n.rank.err" || die "$n: rank failed: $(cat "$T/$n.rank.err")"
	# The arm64 dcctl too, for the arm64 device.
	[ $n = arm ] && [ -x "$XBIN/dcctl" ] && {
		# shellcheck disable=SC2086
		xrun "$XBIN/dcctl" device -s "ipc://$T/dev/$n-$U/app.ipc" -t 60 \
		    -T 1600000000 rank $ITEMS >"$T/arm.xrank" 2>/dev/null ||
		    die "arm64 dcctl: rank failed"
		cmp -s "$T/arm.rank" "$T/arm.xrank" || die "arm64 dcctl ranks differently"
	}
done
[ "$(wc -l <"$T/nat.rank")" = "$(echo $ITEMS | wc -w)" ] || die "rank: count"
awk -v tol="$TOL" 'NR == FNR { s[$1] = $2; next }
    { if (!($1 in s)) { bad = 1; next }
      d = s[$1] - $2; if (d < 0) d = -d; if (d > worst) worst = d; n++ }
    END { printf "rank: %d items, max difference %.3g\n", n, worst
      exit (bad || n == 0 || worst > tol) }' "$T/nat.rank" "$T/arm.rank" ||
    die "app scores differ"

log "the device library (dccl-embed) on arm64 and natively"
if [ -x "$XBIN/dccl-embed" ] && [ -x "$BIN/dccl-embed" ]; then
	printf 'learn 300000\nrank 1600000000 0 %s\nstatus\n' "$ITEMS" >"$T/emb.cmds"
	for n in nat arm; do
		run=""
		[ $n = arm ] && run="qemu-aarch64 -E LD_LIBRARY_PATH=$XLIB"
		b=$BIN; [ $n = arm ] && b=$XBIN
		# shellcheck disable=SC2086
		$run "$b/dccl-embed" -o deviced.cloud="$EP" -o deviced.cloud-pub="$PUB" \
		    -o deviced.data-dir="$T/emb-$n" -o deviced.device-id="emb-$n" \
		    -o deviced.user-id="$U" -o deviced.local-data="$SHARDS/$U.local.csv" \
		    -o learn.seed=3 -o learn.retrain-every=0 <"$T/emb.cmds" \
		    >"$T/emb-$n.out" 2>"$T/emb-$n.log" || die "$n dccl-embed failed: $(cat "$T/emb-$n.out")"
		grep -q "learning jobs:  1" "$T/emb-$n.out" || die "$n dccl-embed: no job"
		grep '^[0-9]* [0-9.e-]*$' "$T/emb-$n.out" >"$T/emb-$n.rank"
	done
	[ "$(wc -l <"$T/emb-nat.rank")" = "$(echo $ITEMS | wc -w)" ] || die "library rank: count"
	awk -v tol="$TOL" 'NR == FNR { s[$1] = $2; next }
	    { if (!($1 in s)) { bad = 1; next }
	      d = s[$1] - $2; if (d < 0) d = -d; if (d > worst) worst = d; n++ }
	    END { printf "library rank: %d items, max difference %.3g\n", n, worst
	      exit (bad || n == 0 || worst > tol) }' "$T/emb-nat.rank" "$T/emb-arm.rank" ||
	    die "library scores differ between arm64 and native"
else
	echo "no dccl-embed for both architectures: skipped this part"
fi

log "shutdown"
for p in "$APID" "$NPID"; do
	kill -TERM "$p"
	rc=0; wait "$p" || rc=$?
	[ $rc = 0 ] || die "deviced exit $rc"
done
grep -qx 'READY=1' "$T/notify.out" && grep -qx 'STOPPING=1' "$T/notify.out" ||
    die "sd_notify: got '$(tr '\n' ' ' <"$T/notify.out")'"
echo "sd_notify: $(tr '\n' ' ' <"$T/notify.out")"
echo "arm64 OK"
