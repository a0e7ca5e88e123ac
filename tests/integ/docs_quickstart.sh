# The commands of conf/README.md's "Running" block, as written, on a fresh
# directory laid out like the repository (bin/, conf/, ../shared/data):
# split ml-latest-small, import the pool, serve, run the documented device
# with no token in its environment, and see it finish a round (the ACK of its patch,
# its patch in the cloud's database); "dcctl status" on the default admin
# socket answers. A second device whose token file is missing must say
# what to do and be refused. The default endpoints are fixed ports and
# /tmp paths, so everything runs in private network and mount namespaces
# (a private /tmp), never clashing with other tests.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
# The documented device must find the token the documented way, not here.
unset DCCL_AUTH_TOKEN
DATA=$ROOT/../shared/data/ml-latest-small
[ -f "$DATA/ratings.csv" ] || skip "no $DATA (the documented data set)"
unshare -nm true 2>/dev/null || unshare -rnm true 2>/dev/null ||
    skip "cannot make network and mount namespaces (unshare)"

# The Running block's command lines, trailing comments removed.
awk '/^## Running/ { r = 1 } r && /^```sh/ { b = 1; next } b && /^```/ { exit }
    b' "$ROOT/conf/README.md" | sed 's/[[:space:]]*#.*$//' >"$T/doc.cmds"
doc_cmd() {	# the first documented line matching the regex $1
	c=$(grep -m1 -E -- "$1" "$T/doc.cmds") ||
	    die "conf/README.md's Running block has no command like '$1'"
	echo "$c"
}
SPLIT=$(doc_cmd "^bin/dccl-data split ")
IMPORT=$(doc_cmd "^bin/cloudd .*--import")
SERVE=$(grep -v -e "--import" "$T/doc.cmds" | grep -m1 "^bin/cloudd ") ||
    die "no documented serve command"
DEVICE=$(doc_cmd "^bin/deviced .*deviced.user-id=")
STATUS=$(doc_cmd "^bin/dcctl status" | sed 's/ |.*//')
printf '%s\n' "$SPLIT" "$IMPORT" "$SERVE" "$DEVICE" "$STATUS"
case $SERVE in *--import*) die "no serve command" ;; esac

# The fresh "clone": programs and configs, the data set beside it. It is
# outside /tmp, which is replaced by a private one (SQLite opens the
# database by its absolute path).
W=$(mktemp -d /var/tmp/dccl-docs.XXXXXX)
trap 'rm -rf "$W"; cleanup' EXIT
trap 'exit 1' INT TERM
mkdir -p "$W/repo" "$W/shared/data" "$W/privtmp"
# Copies, not links: the checkout may itself live under /tmp, which the
# namespaces replace.
mkdir -p "$W/repo/bin"
for p in cloudd deviced dcctl dccl-data; do
	cp "$BIN/$p" "$W/repo/bin/" || die "no $BIN/$p"
done
cp -R "$ROOT/conf" "$W/repo/conf"
cp -R "$DATA" "$W/shared/data/ml-latest-small"

# Runs in the namespaces from $W/repo, logging to ../ ($W). Each wait is
# bounded.
cat >"$T/inner.sh" <<EOF
set -u
PIDS=""
trap 'for p in \$PIDS; do kill -9 \$p 2>/dev/null; done' EXIT
fail() { echo "INNER-FAIL: \$*"; exit 1; }
upto() {	# seconds condition
	i=0
	while [ \$i -lt \$((\$1 * 10)) ]; do
		eval "\$2" && return 0
		sleep 0.1; i=\$((i + 1))
	done
	return 1
}
ip link set lo up || fail "loopback"
mount --make-rprivate / 2>/dev/null
mount --bind ../privtmp /tmp || fail "private /tmp"
export OPENBLAS_NUM_THREADS=1
$SPLIT >../split.log 2>&1 || fail "split"
$IMPORT >../import.log 2>&1 || fail "import"
$SERVE >../cloudd.log 2>&1 &
CPID=\$!; PIDS="\$PIDS \$CPID"
upto 60 "grep -q 'ANNOUNCE: model v1' ../cloudd.log" || fail "no model v1"
[ -f enroll.token ] || fail "cloudd wrote no enroll.token in its data dir"
[ "\$(stat -c %a enroll.token)" = 600 ] || fail "enroll.token mode"
# No token: the device must say what to do, and be refused.
$DEVICE -o deviced.device-id=notoken -o auth.token-file=missing.token \
    -o deviced.data-dir=notoken-data -o net.backoff-max-ms=500 \
    >../notoken.log 2>&1 &
NPID=\$!; PIDS="\$PIDS \$NPID"
upto 30 "grep -q 'E_UNAUTHENTICATED' ../notoken.log" ||
    fail "a device without a token was not refused"
kill \$NPID
# As documented: finds ./enroll.token by itself.
$DEVICE >../device.log 2>&1 &
DPID=\$!; PIDS="\$PIDS \$DPID"
upto 120 "grep -q 'ACK: device=dev req=[0-9]* patch=' ../device.log" ||
    fail "the device finished no round (no ACK of its patch)"
n=\$(sqlite3 cloudd.db "SELECT count(*) FROM patches WHERE device_id = 'dev'")
[ "\$n" -ge 1 ] || fail "no patch of device dev in cloudd.db"
$STATUS >../status.log 2>&1 || fail "$STATUS"
kill -TERM \$DPID \$CPID
wait \$CPID || fail "cloudd exit \$?"
echo "INNER-OK"
EOF
log "the documented commands, in private namespaces"
cd "$W/repo"
if unshare -nm true 2>/dev/null; then NS="unshare -nm"; else NS="unshare -rnm"; fi
timeout 400 $NS sh -s <"$T/inner.sh" >"$T/inner.log" 2>&1 || true
cd "$ROOT"
cp "$W"/*.log "$T/"
cat "$T/inner.log"
grep -q "^INNER-OK" "$T/inner.log" || die "documented commands"
grep -q "AUTH: device=notoken has no enrollment token" "$T/notoken.log" ||
    die "a device without a token does not say so"
grep -q "missing.token (auth.token-file)" "$T/notoken.log" &&
    grep -q "dcctl enroll notoken -o KEYFILE" "$T/notoken.log" ||
    die "the no-token message does not say what to do"
grep -q "E_UNAUTHENTICATED" "$T/device.log" && die "the documented device was refused"
grep -q "model v1" "$T/status.log" || grep -qi "version" "$T/status.log" ||
    die "dcctl status: $(cat "$T/status.log")"
echo "documented commands OK"
