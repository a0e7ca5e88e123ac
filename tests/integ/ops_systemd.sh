# The systemd units: installed with "make install" into a DESTDIR, they must
# pass "systemd-analyze verify" with no diagnostics at all (verify exits 0
# even on "Unknown key", so its output is what counts) and stay within a
# hardening budget ("systemd-analyze security --offline"). Then cloudd and
# deviced, started with NOTIFY_SOCKET pointing at a datagram socket we
# listen on, must send READY=1 (cloudd also STOPPING=1 on SIGTERM): the
# Type=notify contract the units rely on.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
command -v systemd-analyze >/dev/null 2>&1 ||
    skip "systemd-analyze not installed (package systemd)"
command -v python3 >/dev/null 2>&1 || skip "python3 not installed"

# make install into $T/root, of the binaries under test ($BIN, built
# before the tests run: "-o all" keeps make from rebuilding them).
MKF=""
log "make install DESTDIR=$T/root PREFIX=/usr"
# shellcheck disable=SC2086
make -C "$ROOT" --no-print-directory $MKF -o all install BIN="$BIN" \
    DESTDIR="$T/root" PREFIX=/usr >"$T/install.log" 2>&1 ||
    die "make install failed"
U=$T/root/lib/systemd/system
for u in dccl-cloudd.service dccl-deviced@.service; do
	[ -f "$U/$u" ] || die "$u not installed"
done
grep -q '^ExecStart=/usr/sbin/cloudd ' "$U/dccl-cloudd.service" ||
    die "installed cloudd unit does not run /usr/sbin/cloudd"
grep -q '^ExecStart=/usr/sbin/deviced ' "$U/dccl-deviced@.service" ||
    die "installed deviced unit does not run /usr/sbin/deviced"

# verify checks that ExecStart= binaries exist and are executable, and runs
# man(1) on Documentation=. Point both at the DESTDIR: the units are
# rewritten for that root (the only change), MANPATH finds the pages.
log "systemd-analyze verify"
mkdir -p "$T/units"
for u in dccl-cloudd.service dccl-deviced@.service; do
	sed "s|=/usr/sbin/|=$T/root/usr/sbin/|" "$U/$u" >"$T/units/$u"
done
# The template is verified as written and as an instance.
cp "$T/units/dccl-deviced@.service" "$T/units/dccl-deviced@example.service"
for u in dccl-cloudd.service dccl-deviced@.service \
    dccl-deviced@example.service; do
	rc=0
	MANPATH=$T/root/usr/share/man systemd-analyze verify "$T/units/$u" \
	    >"$T/verify.out" 2>&1 || rc=$?
	cat "$T/verify.out"
	[ $rc = 0 ] || die "verify $u: exit $rc"
	[ -s "$T/verify.out" ] && die "verify $u: diagnostics (see above)"
	rc=0
	systemd-analyze security --offline=yes --threshold=20 "$T/units/$u" \
	    >"$T/security.out" 2>&1 || rc=$?
	grep 'Overall exposure' "$T/security.out" || true
	[ $rc = 0 ] || { cat "$T/security.out"; die "security $u: exposure above 2.0"; }
done
# The settings the brief and the comments promise, so a later edit cannot
# quietly drop one.
for k in Type=notify Restart=on-failure User=dccl NoNewPrivileges=yes \
    ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
    'CapabilityBoundingSet=$' 'SystemCallFilter=@system-service' \
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
    'ExecReload=/bin/kill -HUP \$MAINPID'; do
	for u in dccl-cloudd.service dccl-deviced@.service; do
		grep -q "^$k" "$U/$u" || die "$u lacks $k"
	done
done
grep -q '^StateDirectory=dccl/cloudd$' "$U/dccl-cloudd.service" || die "cloudd state dir"
grep -q '^StateDirectory=dccl/deviced/%i$' "$U/dccl-deviced@.service" || die "deviced state dir"
grep -q 'cloudd.data-dir=${STATE_DIRECTORY}' "$U/dccl-cloudd.service" || die "cloudd data-dir"
grep -q 'deviced.data-dir=${STATE_DIRECTORY}' "$U/dccl-deviced@.service" || die "deviced data-dir"
# The admin socket must be somewhere dcctl outside the unit can reach:
# the runtime directory, not the private /tmp.
grep -q '^RuntimeDirectory=dccl$' "$U/dccl-cloudd.service" || die "runtime dir"
grep -q 'cloudd.admin-listen=ipc://${RUNTIME_DIRECTORY}/' "$U/dccl-cloudd.service" ||
    die "admin socket not in RuntimeDirectory"
grep -q '^-f /etc/dccl/deviced/%i.conf\|deviced -f /etc/dccl/deviced/%i.conf ' \
    "$U/dccl-deviced@.service" || die "deviced instance config path"
# The sysusers entry creates the user the units run as.
grep -q '^u dccl ' "$T/root/usr/lib/sysusers.d/dccl.conf" || die "sysusers"
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers --dry-run --root="$T/root" \
	    "$T/root/usr/lib/sysusers.d/dccl.conf" >"$T/sysusers.out" 2>&1 ||
	    { cat "$T/sysusers.out"; die "systemd-sysusers rejects dccl.conf"; }
fi

# The documented systemd steps (conf/README.md): the dccl user is created
# before the units start, and the device config edited as documented
# names the token file the cloudd unit writes (its StateDirectory=).
log "documented systemd steps: sysusers, token"
awk '/^### systemd/ { r = 1 } r && /^```sh/ { b = 1; next } b && /^```/ { exit }
    b' "$ROOT/conf/README.md" >"$T/steps"
su=$(grep -n '^systemd-sysusers' "$T/steps" | cut -d: -f1)
en=$(grep -n '^systemctl enable' "$T/steps" | head -n 1 | cut -d: -f1)
[ -n "$su" ] && [ -n "$en" ] && [ "$su" -lt "$en" ] ||
    die "the systemd steps do not run systemd-sysusers before systemctl enable"
sd=$(sed -n 's/^StateDirectory=//p' "$U/dccl-cloudd.service")
tf=$("$BIN/cloudd" -p 2>/dev/null | sed -n 's/^auth.token-file *= *\([^ ]*\).*/\1/p')
[ "$tf" = enroll.token ] || die "cloudd's token-file default is '$tf'"
cp "$T/root/etc/dccl/deviced/example.conf" "$T/phone1.conf"
# The documented edit (a sed line continued on the next), on our copy.
edit=$(grep -A1 "^sed -i 's|^token-file" "$T/steps" | tr -d '\\\n' |
    sed 's/#.*//; s|/etc/dccl/deviced/phone1.conf|$T/phone1.conf|')
[ -n "$edit" ] || die "the systemd steps do not set the device's token-file"
eval "$edit" || die "documented token edit: $edit"
"$BIN/deviced" -f "$T/phone1.conf" -p >"$T/phone1.p" 2>&1 || die "deviced -p"
grep -q "^auth.token-file *= */var/lib/$sd/enroll.token " "$T/phone1.p" ||
    die "the device's token-file is not the cloud unit's /var/lib/$sd/enroll.token: $(grep token-file "$T/phone1.p")"

# sd_notify: a datagram listener that appends each message to a file.
log "sd_notify READY=1 / STOPPING=1"
listen_notify() {	# socket-path out-file
	python3 - "$1" "$2" <<'PY' &
import os, socket, sys, time
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.5)
end = time.time() + 120	# bounded: never outlives a hung test
with open(out, "a") as f:
	while time.time() < end:
		try:
			m = s.recv(4096)
		except socket.timeout:
			continue
		f.write(m.decode(errors="replace") + "\n--\n")
		f.flush()
PY
	NPID=$!
	PIDS="$PIDS $NPID"
	wait_for "[ -S '$1' ]" 50 0.1 || die "notify listener did not start"
}
endpoints
listen_notify "$T/notify.sock" "$T/notify.out"
NOTIFY_SOCKET=$T/notify.sock
export NOTIFY_SOCKET
start_cloudd -o train.on-start=no
wait_for "grep -q '^READY=1' '$T/notify.out'" 50 0.1 ||
    die "cloudd logged READY: but sent no READY=1 to NOTIFY_SOCKET"
kill -TERM "$CPID"
wait_for "! kill -0 $CPID 2>/dev/null" 100 0.1 || die "cloudd did not stop"
rc=0; wait "$CPID" || rc=$?
[ $rc = 0 ] || die "cloudd exit $rc"
grep -q '^STOPPING=1' "$T/notify.out" || die "cloudd sent no STOPPING=1"

listen_notify "$T/notify-dev.sock" "$T/notify-dev.out"
NOTIFY_SOCKET=$T/notify-dev.sock
make_data 2
start_deviced dev -o deviced.local-data="$SHARDS/0.local.csv"
wait_for "grep -q 'READY: deviced' '$T/dev.log'" 100 0.1 || die "deviced not ready"
wait_for "grep -q '^READY=1' '$T/notify-dev.out'" 50 0.1 ||
    die "deviced logged READY: but sent no READY=1 to NOTIFY_SOCKET"
kill -TERM "$DPID"
rc=0; wait "$DPID" || rc=$?
[ $rc = 0 ] || die "deviced exit $rc"
unset NOTIFY_SOCKET
echo "systemd units and sd_notify OK"
