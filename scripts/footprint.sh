#!/bin/sh
# Footprint of one device, native and arm64 under qemu-user: stripped binary
# sizes, resident memory at rest and during a learning job, and the time of
# one learning job. Prints a Markdown table (deviced/README.md keeps it).
#
#   sh scripts/footprint.sh [DATASET_DIR]     (default ../shared/data/ml-latest-small)
#
# Needs make all and make cross ARCH=arm64 (the arm64 rows are left out
# without the cross build). The device is the user with the most local
# samples of the MovieLens split; the cloud model is trained on the pool
# (2 epochs: the model's size, not its quality, sets the footprint).
# Memory: VmRSS once the first round is done and the device idles ("at
# rest"), then the peak (VmHWM, reset through /proc/PID/clear_refs) while a
# second learning job runs, triggered by app events (learn.retrain-every).
# Under qemu-user the process holds the emulator too (its translated code
# and its own heap): the table also gives qemu's resident size for deviced
# --check, which does nothing, so the device's share can be judged.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${DCCL_BIN:-$ROOT/bin}
XDIR=${DCCL_CROSS_DIR:-$ROOT/build/arm64}
XLIB=${DCCL_CROSS_ROOT:-/opt/dccl-cross}/arm64/usr/lib/aarch64-linux-gnu
DATA=${1:-$ROOT/../shared/data/ml-latest-small}
export OPENBLAS_NUM_THREADS=1
DCCL_AUTH_TOKEN=fp-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
export DCCL_AUTH_TOKEN
W=$(mktemp -d /tmp/dccl-footprint.XXXXXX)
PIDS=""
trap 'for p in $PIDS; do kill -9 $p 2>/dev/null || true; done; [ "${KEEP:-0}" = 1 ] && echo "kept $W" >&2 || rm -rf "$W"' EXIT INT TERM
die() { echo "footprint: $*" >&2; for f in "$W"/*.log; do echo "== $f" >&2; tail -5 "$f" >&2; done; exit 1; }
wait_grep() {	# file pattern tries
	i=0
	until grep -qs "$2" "$1"; do
		i=$((i + 1)); [ $i -lt "$3" ] || return 1; sleep 0.1
	done
}
kib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
size_of() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }

[ -x "$BIN/deviced" ] || die "no $BIN/deviced (make)"
"$BIN/dccl-data" split "$DATA" "$W/data" >/dev/null || die "split failed"
U=$(wc -l "$W"/data/devices/*.local.csv | grep -v total | sort -n | tail -1 |
    sed 's|.*/\([0-9]*\)\.local\.csv|\1|')
mkdir -p "$W/one"
cp "$W/data/devices/$U.local.csv" "$W/one/"
NLOC=$(grep -v '^#' "$W/one/$U.local.csv" | grep -vc '^user')
P=$((30000 + $$ % 20000))
EP=tcp://127.0.0.1:$P PUB=tcp://127.0.0.1:$((P + 1))
"$BIN/cloudd" -o cloudd.data-dir="$W/cloud" --import "$W/data/pool.csv" >"$W/import.log" 2>&1 ||
    die "import failed"
"$BIN/cloudd" -o cloudd.listen="$EP" -o cloudd.pub-listen="$PUB" \
    -o cloudd.admin-listen="ipc://$W/admin.ipc" -o cloudd.data-dir="$W/cloud" \
    -o train.epochs=2 >"$W/cloudd.log" 2>&1 &
PIDS="$PIDS $!"
wait_grep "$W/cloudd.log" "ANNOUNCE: model v1" 6000 || die "no model"
MODEL=$(sed -n 's/.*ANNOUNCE: model v1 (\([0-9]*\) bytes).*/\1/p' "$W/cloudd.log")

# run NAME LAUNCHER...: one device round, then a second job from app events.
# Sets REST, PEAK (KiB), T1, T2 (ms of the two jobs).
run() {
	name=$1; shift
	"$@" -o deviced.cloud="$EP" -o deviced.cloud-pub="$PUB" \
	    -o deviced.data-dir="$W/$name" -o deviced.shards="$W/one" \
	    -o deviced.device-id="$name" -o learn.retrain-every=2 \
	    -o deviced.app-listen='ipc://{dir}/app.ipc' \
	    -o net.request-timeout-ms=60000 >"$W/$name.log" 2>&1 &
	pid=$!
	PIDS="$PIDS $pid"
	wait_grep "$W/$name.log" "ACK: device=$name-$U" 6000 || die "$name: no upload"
	sleep 2
	REST=$(awk '/^VmRSS/ { print $2 }' /proc/$pid/status)
	ANON=$(awk '/^RssAnon/ { print $2 }' /proc/$pid/status)
	cp /proc/$pid/smaps "$W/$name.smaps" 2>/dev/null || true
	GREST=$(guest_rss "$pid")
	echo 5 >/proc/$pid/clear_refs
	guest_rss "$pid" poll "$W/$name.done" >"$W/$name.gpeak" &
	gp=$!
	app="$BIN/dcctl device -s ipc://$W/$name/$name-$U/app.ipc -t 120"
	$app event 1 1 >/dev/null && $app event 2 0 >/dev/null || die "$name: events"
	i=0
	until [ "$(grep -c ": TRAIN: device=$name-$U" "$W/$name.log")" -ge 2 ]; do
		i=$((i + 1)); [ $i -lt 6000 ] || die "$name: no second job"; sleep 0.1
	done
	PEAK=$(awk '/^VmHWM/ { print $2 }' /proc/$pid/status)
	: >"$W/$name.done"
	wait "$gp"
	GPEAK=$(cat "$W/$name.gpeak")
	T1=$(grep ": TRAIN: device=$name-$U" "$W/$name.log" | sed -n '1s/.*, \([0-9.]*\) ms$/\1/p')
	T2=$(grep ": TRAIN: device=$name-$U" "$W/$name.log" | sed -n '2s/.*, \([0-9.]*\) ms$/\1/p')
	kill -TERM "$pid"; wait "$pid" || true
}
# Resident KiB of PID's mappings below 0x5600000000, where qemu-user puts
# the arm64 program and everything it maps (it loads the guest at
# 0x5500000000); qemu's own binary, heap and translated code lie above.
# With "poll FILE" it samples every 50 ms until FILE exists and prints the
# largest.
guest_rss() {
	python3 - "$@" <<'PY'
import os, re, sys, time
def rss(pid):
    tot, keep = 0, False
    try:
        for line in open("/proc/%s/smaps" % pid):
            m = re.match(r"^([0-9a-f]+)-[0-9a-f]+ ", line)
            if m: keep = int(m.group(1), 16) < 0x5600000000
            elif keep and line.startswith("Rss:"): tot += int(line.split()[1])
    except OSError:
        pass
    return tot
pid = sys.argv[1]
if len(sys.argv) > 3:
    best = 0
    while not os.path.exists(sys.argv[3]):
        best = max(best, rss(pid)); time.sleep(0.05)
    print(max(best, rss(pid)))
else:
    print(rss(pid))
PY
}
# Peak resident KiB of a command that only checks its configuration.
idle_rss() { /usr/bin/time -f %M "$@" -n 2>&1 >/dev/null | tail -1; }

strip -o "$W/deviced.native" "$BIN/deviced"
NSIZE=$(size_of "$W/deviced.native")
NNEED=$(readelf -d "$BIN/deviced" | grep -c NEEDED)
run nat "$BIN/deviced"
NREST=$REST NANON=$ANON NPEAK=$PEAK NT1=$T1 NT2=$T2
NIDLE=$(idle_rss "$BIN/deviced")

echo "Device: user $U of $(basename "$DATA") ($NLOC local samples), cloud model v1 of $MODEL bytes."
echo
echo "| | native $(uname -m) | arm64 (qemu-user) |"
echo "|---|---|---|"
have_x=0
if [ -x "$XDIR/bin/deviced" ] && command -v qemu-aarch64 >/dev/null; then
	have_x=1
	run arm qemu-aarch64 -E LD_LIBRARY_PATH="$XLIB" "$XDIR/bin/deviced"
	XREST=$REST XANON=$ANON XPEAK=$PEAK XT1=$T1 XT2=$T2 XGREST=$GREST XGPEAK=$GPEAK
	XIDLE=$(idle_rss qemu-aarch64 -E LD_LIBRARY_PATH="$XLIB" "$XDIR/bin/deviced")
fi
xs() {	# dir: "size (n shared libraries)"
	f=$XDIR/$1/deviced.stripped
	[ -f "$f" ] || { echo "not built"; return; }
	echo "$(mib "$(size_of "$f")") ($(aarch64-linux-gnu-readelf -d "$f" | grep -c NEEDED) shared libraries)"
}
if [ $have_x = 1 ]; then
	echo "| deviced stripped, default link | $(mib "$NSIZE") (all $NNEED libraries shared) | $(xs bin) |"
	echo "| deviced stripped, CROSS_LINK=static-blas | | $(xs bin-static-blas) |"
	echo "| deviced stripped, CROSS_LINK=dynamic | | $(xs bin-dynamic) |"
	echo "| resident, deviced --check (does nothing) | $(kib "$NIDLE") | $(kib "$XIDLE") (mostly qemu) |"
	echo "| resident at rest after a round | $(kib "$NREST") | $(kib "$XREST") (with qemu) |"
	echo "| of which anonymous (heap, stacks) at rest | $(kib "$NANON") | $(kib "$XANON") (with qemu) |"
	echo "| resident peak during a learning job | $(kib "$NPEAK") | $(kib "$XPEAK") (with qemu) |"
	echo "| arm64 program's own mappings at rest (qemu excluded) | | $(kib "$XGREST") |"
	echo "| arm64 program's own mappings, peak of 50 ms samples during a job | | $(kib "$XGPEAK") |"
	echo "| first learning job | $NT1 ms | $XT1 ms (emulated, not device speed) |"
	echo "| second learning job (after 2 app events) | $NT2 ms | $XT2 ms (emulated) |"
else
	echo "| deviced stripped | $(mib "$NSIZE") (all $NNEED libraries shared) | no arm64 build |"
	echo "| resident at rest after a round | $(kib "$NREST") | |"
	echo "| of which anonymous (heap, stacks) at rest | $(kib "$NANON") | |"
	echo "| resident peak during a learning job | $(kib "$NPEAK") | |"
	echo "| first learning job | $NT1 ms | |"
	echo "| second learning job | $NT2 ms | |"
fi
