# The command lines of conf/README.md's "Bring your own data" block, as
# written and in order, on a fresh directory laid out like the repository
# (bin/, conf/, tests/fixtures/ctr-log): split the fixture with its schema,
# import, serve, host ten devices with app sockets, dcctl status, an event
# with side values and a ranking on one device. The block has at most 10
# command lines. The test waits where a user would (for model v1, for the
# device's model) and checks what each line should give: the schema's side
# fields in the pool, a model with them, patches from the devices, the
# event stored with its side values, three ranked items. The default
# endpoints are fixed ports and /tmp paths, so everything runs in private
# network and mount namespaces, as docs_quickstart.sh does.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
unshare -nm true 2>/dev/null || unshare -rnm true 2>/dev/null ||
    skip "cannot make network and mount namespaces (unshare)"

awk '/^### Bring your own data/ { r = 1 } r && /^```sh/ { b = 1; next } b && /^```/ { exit }
    b' "$ROOT/conf/README.md" | sed 's/[[:space:]]*#.*$//' | grep -v '^[[:space:]]*$' >"$T/doc.cmds"
n=$(wc -l <"$T/doc.cmds")
[ "$n" -ge 5 ] && [ "$n" -le 10 ] || die "the block has $n command lines (want 5..10)"
cat "$T/doc.cmds"
grep -q "^bin/dccl-data split .*--schema" "$T/doc.cmds" || die "no split with a schema"
grep -q "^bin/deviced " "$T/doc.cmds" || die "no deviced line"
grep -q "^bin/dcctl device .* rank " "$T/doc.cmds" || die "no rank line"

W=$(mktemp -d /var/tmp/dccl-byod.XXXXXX)
trap 'rm -rf "$W"; cleanup' EXIT
trap 'exit 1' INT TERM
mkdir -p "$W/repo/bin" "$W/repo/tests/fixtures" "$W/privtmp"
for p in cloudd deviced dcctl dccl-data; do
	cp "$BIN/$p" "$W/repo/bin/" || die "no $BIN/$p"
done
cp -R "$ROOT/conf" "$W/repo/conf"
cp -R "$ROOT/tests/fixtures/ctr-log" "$W/repo/tests/fixtures/ctr-log"

# Each documented line runs through sh -c as written (a trailing & in the
# background), its output in ../cmdN.log. Waits are the test's, bounded.
{
cat <<'EOF'
set -u
PIDS=""
trap 'for p in $PIDS; do kill -9 $p 2>/dev/null; done' EXIT
fail() { echo "INNER-FAIL: $*"; exit 1; }
upto() {	# seconds condition
	i=0
	while [ $i -lt $(($1 * 10)) ]; do
		eval "$2" && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}
ip link set lo up || fail "loopback"
mount --make-rprivate / 2>/dev/null
mount --bind ../privtmp /tmp || fail "private /tmp"
export OPENBLAS_NUM_THREADS=1
VARS=""
EOF
i=0
while IFS= read -r line; do
	i=$((i + 1))
	case $line in
	*"dcctl status"*)
		echo 'upto 120 "grep -q \"DOWNLOAD: device=dev-3 model v1 installed\" ../cmd*.log" || fail "dev-3 has no model"'
		# app requests during the first learning job get E_BUSY (retry)
		echo 'upto 120 "grep -q \"TRAIN: device=dev-3 \" ../cmd*.log" || fail "dev-3 has no first job"' ;;
	esac
	if echo "$line" | grep -qE '^[A-Za-z_][A-Za-z0-9_]*=[^ ]*$'; then
		echo "VARS=\"\${VARS}$line; \""	# for the later lines
		continue
	fi
	case $line in
	*"&")
		cmd=${line%&}
		printf '(eval "$VARS"; exec %s) >../cmd%d.log 2>&1 &\n' "$cmd" "$i"
		echo 'PIDS="$PIDS $!"' ;;
	*)
		printf '(eval "$VARS"; %s) >../cmd%d.log 2>&1 || fail "line %d: $(tail -2 ../cmd%d.log)"\n' \
		    "$line" "$i" "$i" "$i" ;;
	esac
done <"$T/doc.cmds"
cat <<'EOF'
upto 120 "grep -q 'ACK: device=dev-[0-9]* req=[0-9]* patch=' ../cmd*.log" || fail "no device finished a round"
sqlite3 byod/cloudd.db "SELECT count(*) FROM patches" >../patches.out
sqlite3 byod/cloudd.db "SELECT value FROM meta WHERE key = 'n_side'" >../nside.out
sqlite3 deviced-data/dev-3/device.db "SELECT hex(side) FROM samples ORDER BY id DESC LIMIT 1" >../side.out
for p in $PIDS; do kill -TERM $p 2>/dev/null; done
echo "INNER-OK"
EOF
} >"$T/inner.sh"
log "the documented lines, in private namespaces"
cd "$W/repo"
if unshare -nm true 2>/dev/null; then NS="unshare -nm"; else NS="unshare -rnm"; fi
timeout 400 $NS sh -s <"$T/inner.sh" >"$T/inner.log" 2>&1 || true
cd "$ROOT"
cp "$W"/*.log "$W"/*.out "$T/" 2>/dev/null || true
cat "$T/inner.log"
grep -q "^INNER-OK" "$T/inner.log" || die "documented lines"
[ "$(cat "$T/nside.out")" = 4 ] || die "pool n_side: $(cat "$T/nside.out")"
[ "$(cat "$T/patches.out")" -ge 1 ] || die "no patches"
[ "$(cat "$T/side.out")" = 00000000020000000100000007000000 ] ||
    die "the event's side values: $(cat "$T/side.out")"
rank=$(grep -n " rank " "$T/doc.cmds" | head -1 | cut -d: -f1)
[ "$(grep -c '^[0-9]* [0-9.]*$' "$T/cmd$rank.log")" = 3 ] ||
    die "rank output: $(cat "$T/cmd$rank.log")"
grep -q "model v1" "$T"/cmd*.log || die "dcctl status"
echo "bring-your-own-data commands OK"
