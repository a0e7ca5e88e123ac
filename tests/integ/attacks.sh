# Attacks of issue 13 played against real daemons; each step failed on the
# code before the fix.
#  1. A token holder re-registers an enrolled device with its public key
#     (seen in clear on the wire), counter INT64_MAX and another user: the
#     device must not be locked out nor moved to that user.
#  2. An on-path token holder answers a device's re-registration with its
#     own cloud key (here: another cloudd with the same token takes over
#     the endpoint): the device must refuse it, until auth.repin=yes.
#  3. The key store is created 0600 whatever the umask, and cloudd refuses
#     to start on a store other users can read.
#     (3c) A device's key file is 0600 under umask 022, its dir 0750.
#  4. With auth.user-devices=1, a fresh id (token only) may not bind itself
#     to a user that already has a device: it would replace that user's
#     teacher patch in MoMoDistill.
#  5. Enrolments of fresh ids are rate-limited globally (limits.enroll-rate)
#     before any X25519 operation or commit.
#  6. A forged ModelAnnounce (unsigned, or signed by another key) of a
#     version the cloud does not have is dropped by the device: no
#     download, no re-registration (v3 announcements are signed with the
#     key the device learned under its session MAC); the cloud's own
#     signature is accepted.
#  A. The admin socket authenticates nobody: device requests sent there
#     (an upload, a RegisterReq, GetModel, RetrieveReq, GetOfa) are
#     refused (E_FORBIDDEN), not stored as user 0 nor served.
#  U. An on-path attacker without keys answers a device's upload with an
#     unsigned E_BAD_TENSOR: the device must keep the patch (retry later),
#     not drop it from its outbox. (Against the second cloud, in mac mode,
#     so the attacker can see which request is the upload.)
#  C. Protocol 5 download (auth.mode mac: chunks travel unMACed, checked
#     against the session-MACed manifest). An on-path attacker without
#     keys flips a bit in every chunk and rewrites the whole-model
#     checksum the last chunk carries to match (dccl-probe mitm-dl), and
#     replays the first manifest reply, relabelled, to the device's next
#     GetManifest: each chunk is refused (BAD-CHUNK MANIFEST_EHASH, or
#     MANIFEST_EHEADER when the checksum was rewritten), the replayed
#     manifest too (MACed for an earlier request: BAD-REPLY forged), no
#     model is adopted nor partly stored, and the device backs off more
#     with each refusal instead of re-fetching at the shortest backoff.
#  M. Memory before authentication: an unsigned 3 MiB upload of empty
#     tensors (protobuf-c would allocate a struct per 2 bytes) is refused
#     before it is unpacked; cloudd's peak memory barely moves.
#  D. DP accounting: a truncated dp.budget or a release past
#     dp.max-epsilon is refused, not silently reset to 0 / made anyway;
#     under DP an upload carries dp_epsilon/dp_rho and no other metric.
#  N. The patch-norm limit follows the accepted patches: once 32 were
#     accepted, a patch 10x the median norm is refused although it is far
#     below the static limits.max-patch-norm (100).
#  L. A device id with a newline must not forge a line in cloudd's log.
#  S. dcctl refuses an admin socket in a world-writable directory that
#     another user owns (it may have taken the path before cloudd).
#  B. At most limits.max-devices keys are enrolled: fresh ids beyond it
#     get E_BUSY and no key is stored.
#  P. cloudd -p prints neither auth.token nor a password in
#     cloudd.pg-conninfo (password=, or a URI's user:password@).
#  7. Encrypt mode: a captured sealed request resent past limits.burst
#     gets a sealed E_RATE_LIMITED; it must not share the first reply's
#     keystream (an eavesdropper would recover that reply's bytes). And an
#     exact resend gets the first reply's bytes, not a new execution.
#     (7c) An exact resend of a request whose reply is too large to keep
#     (a model chunk) is refused (E_UNAUTHENTICATED), not executed again.
# A failed attack check is recorded and the run goes on, so that a run on
# unfixed code shows every hole at once; the scenario fails at the end.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
HOLES=""
hole() { echo "HOLE: $*"; HOLES="$HOLES
  $*"; }
endpoints
make_data 4
umask 022
import_pool
ENROLL_OPTS=""
if "$BIN/cloudd" -p 2>/dev/null | grep -q "^limits.enroll-rate"; then
	ENROLL_OPTS="-o limits.enroll-rate=2 -o limits.enroll-burst=10"
else
	hole "5: no limits.enroll-rate"
fi
# shellcheck disable=SC2086
start_cloudd -o auth.mode=encrypt -o limits.rate=5 -o limits.burst=20 $ENROLL_OPTS
wait_model 1

log "3. key store permissions (umask 022)"
m=$(stat -c %a "$T/cloud/cloudd.db")
[ "$m" = 600 ] || hole "3: cloudd.db created with mode $m, want 600"
for f in "$T/cloud/cloudd.db-wal" "$T/cloud/cloudd.db-shm"; do
	[ -f "$f" ] || continue
	m=$(stat -c %a "$f")
	[ "$m" = 600 ] || hole "3: $f created with mode $m, want 600"
done
m=$(stat -c %a "$T/cloud")
case $m in 700|750) ;; *) hole "3: data dir mode $m" ;; esac

log "1. token holder re-registers an enrolled device"
"$BIN/dccl-probe" "$EP" status | grep -q "REPLY status" || die "victim status"
[ "$(sql "SELECT user_id FROM devices WHERE device_id='probe'")" = 0 ] ||
    die "victim not registered as user 0"
out=$("$BIN/dccl-probe" "$EP" hijack probe "$T/probe/probe.key" 0) || true
echo "same user, counter INT64_MAX: $out"
out=$("$BIN/dccl-probe" "$EP" status)
echo "victim afterwards: $out"
case $out in "REPLY status"*) ;; *) hole "1: victim locked out: $out" ;; esac
"$BIN/dccl-probe" "$EP" register vic2 | grep -q "REPLY registered" ||
    die "vic2 not registered"
out=$("$BIN/dccl-probe" "$EP" hijack vic2 "$T/probe/vic2.key" 3)
echo "another user: $out"
case $out in "ERROR E_FORBIDDEN"*) ;; *) hole "1/4: user change not refused: $out" ;; esac
[ "$(sql "SELECT user_id FROM devices WHERE device_id='vic2'")" = 0 ] ||
    hole "1/4: victim moved to another user"
"$BIN/dccl-probe" "$EP" status | grep -q "REPLY status" || hole "1: victim locked out"

log "7. nonce reuse in encrypt mode"
out=$("$BIN/dccl-probe" "$EP" nonce-reuse nr 100) || true
echo "$out"
case $out in NO-REUSE) ;; *) hole "7: $out" ;; esac

log "7b. an exact resend is answered with the first reply's bytes"
out=$("$BIN/dccl-probe" "$EP" resend rs) || true
echo "$out"
case $out in "RESEND identical") ;; *) hole "7b: exact resend executed again: $out" ;; esac

log "7c. an exact resend of a large reply (a model chunk) is not executed again"
out=$("$BIN/dccl-probe" "$EP" resend-chunk rc) || true
echo "$out"
n1=$(echo "$out" | awk '{ print $2 }')
r2=$(echo "$out" | awk '{ print $3 }')
[ "${n1:-0}" -gt 16384 ] 2>/dev/null || die "7c: first reply not a large chunk: $out"
case $r2 in E_UNAUTHENTICATED) ;; *) hole "7c: exact resend of a chunk request: ${r2:-none} (executed again)" ;; esac

log "A. device requests on the admin socket"
out=$(DCCL_AUTH_TOKEN= "$BIN/dccl-probe" "$ADM" upload admdev) || true
echo "upload on the admin socket: $out"
case $out in "ERROR E_FORBIDDEN"*) ;; *) hole "A: admin socket took an upload: $out" ;; esac
[ "$(sql "SELECT count(*) FROM patches WHERE device_id='admdev'")" = 0 ] ||
    hole "A: upload from the admin socket stored"
for req in "register admreg" "getmodel admdev 1 0" "retrieve admdev 10 1 4" \
    "ofa-alternate admdev 1"; do
	# shellcheck disable=SC2086
	out=$(DCCL_AUTH_TOKEN= "$BIN/dccl-probe" "$ADM" $req) || true
	echo "${req%% *} on the admin socket: $(echo "$out" | head -1)"
	case $out in "ERROR E_FORBIDDEN"*) ;; *) hole "A: admin socket served ${req%% *}: $out" ;; esac
done
[ "$(sql "SELECT count(*) FROM devices WHERE device_id='admreg'")" = 0 ] ||
    hole "A: a RegisterReq on the admin socket bound a device"

log "5. enrolment flood"
out=$("$BIN/dccl-probe" "$EP" enroll-flood 40)
echo "$out"
case $out in "ENROLL-FLOOD ok "*" rate-limited 0 "*) hole "5: no enrolment limit: $out" ;;
"ENROLL-FLOOD ok "*) ;; *) die "enroll-flood: $out" ;; esac
n=$(sql "SELECT count(*) FROM device_keys WHERE device_id LIKE 'ef-%'")
echo "$n of 40 fresh ids enrolled"
[ "$n" -le 20 ] || hole "5: $n of 40 enrolled at 2/s, burst 10"

log "6. forged announcement"
u2=$(ls "$SHARDS" | grep local | sort -n | sed -n 2p); u2=${u2%%.*}
ROGUE="tcp://127.0.0.1:$(free_port 3)"
start_deviced ann -o deviced.local-data="$SHARDS/$u2.local.csv" \
    -o deviced.user-id="$u2" -o deviced.device-id=ann -o deviced.cloud-pub="$ROGUE"
wait_for "grep -q 'ACK: device=ann' '$T/ann.log'" 300 0.1 || die "ann: no upload"
before=$(grep -c "REGISTERED: device=ann" "$T/ann.log")
"$BIN/dccl-probe" "$ROGUE" announce 18446744073709551615 unsigned
"$BIN/dccl-probe" "$ROGUE" announce 18446744073709551614 forged
sleep 3
grep -q "ANNOUNCED: model v1844674407370955161[45]" "$T/ann.log" &&
    hole "6: the device acted on a forged announcement"
grep -q "BAD-ANNOUNCE: model v18446744073709551615 unsigned" "$T/ann.log" ||
    hole "6: an unsigned announcement was not refused"
grep -q "BAD-ANNOUNCE: model v18446744073709551614 wrongly signed" "$T/ann.log" ||
    hole "6: an announcement signed by another key was not refused"
after=$(grep -c "REGISTERED: device=ann" "$T/ann.log")
echo "registrations after the forged announcements: $((after - before))"
[ $((after - before)) -le 0 ] || hole "6: forged announce made the device re-register ($((after - before)))"
# The cloud's own signature is accepted (its key, read from its store).
csk=$(sql "SELECT hex(sk) FROM cloud_key")
"$BIN/dccl-probe" "$ROGUE" announce 1 "$csk"
grep -q "ANNOUNCED: model v1$" "$T/ann.log" ||
    die "6: an announcement the cloud signed was refused"
kill "$DPID" 2>/dev/null || true; wait "$DPID" || true

log "D. DP budget: cap and corrupt file"
start_deviced dpcap -o deviced.local-data="$SHARDS/$u2.local.csv" \
    -o deviced.user-id="$u2" -o deviced.device-id=dpcap -o dp.clip=1 \
    -o dp.max-epsilon=0.01
wait_for "grep -q 'DP-BUDGET: device=dpcap' '$T/dpcap.log'" 300 0.1 ||
    hole "D: no refusal past dp.max-epsilon"
kill "$DPID" 2>/dev/null || true; wait "$DPID" || true
[ "$(sql "SELECT count(*) FROM patches WHERE device_id='dpcap'")" = 0 ] ||
    hole "D: a patch past dp.max-epsilon was released"
start_deviced dpbad -o deviced.local-data="$SHARDS/$u2.local.csv" \
    -o deviced.user-id="$u2" -o deviced.device-id=dpbad -o deviced.run-once=yes
wait "$DPID" || die "dpbad: deviced exit $?"
[ "$(sql "SELECT count(*) FROM patches WHERE device_id='dpbad'")" = 1 ] ||
    die "dpbad: first patch"
# 3c. The device's key, made under umask 022 too: 0600, in a 0750 dir.
m=$(stat -c %a "$T/dev/dpbad/auth.key")
echo "device auth.key: mode $m"
[ "$m" = 600 ] || hole "3c: device auth.key created with mode $m, want 600"
m=$(stat -c %a "$T/dev/dpbad")
case $m in 700|750) ;; *) hole "3c: device dir mode $m" ;; esac
: >"$T/dev/dpbad/dp.budget"	# truncated, as by a crash mid-write
start_deviced dpbad2 -o deviced.local-data="$SHARDS/$u2.local.csv" \
    -o deviced.user-id="$u2" -o deviced.device-id=dpbad -o dp.clip=1
wait_for "grep -q 'DP-BUDGET: device=dpbad' '$T/dpbad2.log'" 300 0.1 ||
    hole "D: truncated dp.budget not noticed"
kill "$DPID" 2>/dev/null || true; wait "$DPID" || true
[ "$(sql "SELECT count(*) FROM patches WHERE device_id='dpbad'")" = 1 ] ||
    hole "D: released with a truncated budget (spent budget reset to 0)"
# Under DP the upload carries only dp_epsilon and dp_rho: the sample
# count and the validation losses, which are not noised, stay on the
# device (conf/SECURITY.md). dpbad's first, plain upload is the control.
start_deviced dpok -o deviced.local-data="$SHARDS/$u2.local.csv" \
    -o deviced.user-id="$u2" -o deviced.device-id=dpok -o dp.clip=1 \
    -o deviced.run-once=yes
wait "$DPID" || die "dpok: deviced exit $?"
[ "$(sql "SELECT count(*) FROM patches WHERE device_id='dpok'")" = 1 ] ||
    die "dpok: no patch"
has() { sql "SELECT instr(blob, CAST('$2' AS BLOB)) > 0 FROM patches WHERE device_id='$1'"; }
[ "$(has dpbad local_samples)" = 1 ] ||
    die "D: the plain upload names no local_samples (the check cannot fail)"
for k in local_samples retrieved val_logloss_base val_logloss_patched; do
	[ "$(has dpok $k)" = 0 ] || hole "D: an upload under DP carries $k"
done
[ "$(has dpok dp_epsilon)" = 1 ] || hole "D: an upload under DP without dp_epsilon"

log "L. log forging"
"$BIN/dccl-probe" "$EP" forge-log
sleep 0.2
! grep -q "^1970-01-01T00:00:00.000Z info cloudd\[1\]: FORGED-LINE" "$T/cloudd.log" ||
    hole "L: a forged line in cloudd's log"
grep -q "FORGED-LINE" "$T/cloudd.log" || die "L: the forged id was not logged at all"

log "S. admin socket taken by another user"
if id nobody >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	mkdir "$T/shared"; chmod 1777 "$T/shared"
	python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
	    "$T/shared/admin.ipc" || die "cannot make a socket"
	chown nobody "$T/shared/admin.ipc"
	out=$("$BIN/dcctl" -s "ipc://$T/shared/admin.ipc" -t 2 status 2>&1) || true
	echo "$out"
	case $out in *"owned by uid"*) ;; *) hole "S: dcctl used a socket another user owns" ;; esac
else
	echo "(not root: skipped)"
fi

log "M. memory amplification before authentication"
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$CPID/status"; }
h0=$(hwm)
out=$("$BIN/dccl-probe" "$EP" amplify 3000000) || true
h1=$(hwm)
echo "3 MB of empty tensors: $out; peak RSS $h0 -> $h1 kB"
[ $((h1 - h0)) -lt 40000 ] || hole "M: 3 MB message cost $(( (h1 - h0) / 1024 )) MB before authentication"

log "N. patch-norm limit from the distribution"
for i in $(seq 1 18); do
	for dv in nrm1 nrm2; do
		"$BIN/dccl-probe" "$EP" upload $dv $((500 + i)) | grep -q "REPLY ack" ||
		    die "upload $dv $i"
	done
done
out=$("$BIN/dccl-probe" "$EP" norm-upload nrm3 900 0.25) || true
echo "patch of norm $(awk 'BEGIN { print 0.25 * sqrt(32) }') after 36 of norm 0.057: $out"
case $out in "ERROR E_BAD_TENSOR"*) ;; *) hole "N: outlier patch accepted: $out" ;; esac

log "2. on-path token holder answers with its own cloud key"
u=$(ls "$SHARDS" | grep local | sort -n | head -1); u=${u%%.*}
start_deviced pin -o deviced.local-data="$SHARDS/$u.local.csv" \
    -o deviced.user-id="$u" -o deviced.device-id=pin -o deviced.run-once=yes
wait "$DPID" || die "deviced exit $?"
grep -q "REGISTERED: device=pin" "$T/pin.log" || die "pin not registered"
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit"
# The rogue cloud: same token, its own key pair, on the same endpoint.
mv "$T/cloudd.log" "$T/cloudd-a.log"
"$BIN/cloudd" -o cloudd.data-dir="$T/rogue" --import "$T/data/pool.csv" \
    >"$T/import2.log" 2>&1 || die "rogue import failed"
"$BIN/cloudd" -o cloudd.listen="$EP" -o cloudd.pub-listen="$PUB" \
    -o cloudd.admin-listen="ipc://$T/rogue.ipc" -o cloudd.data-dir="$T/rogue" \
    -o train.epochs=3 -o auth.mode=mac >"$T/rogue.log" 2>&1 &
RPID=$!; PIDS="$PIDS $RPID"
wait_for "grep -q 'READY: cloudd' '$T/rogue.log'" 100 0.1 || die "rogue not ready"
start_deviced pin2 -o deviced.local-data="$SHARDS/$u.local.csv" \
    -o deviced.user-id="$u" -o deviced.device-id=pin
wait_for "grep -q 'AUTH-PIN: device=pin' '$T/pin2.log'" 100 0.1 ||
    hole "2: device accepted the rogue cloud key"
grep -q "REGISTERED: device=pin" "$T/pin2.log" && hole "2: registered with the rogue"
kill "$DPID" 2>/dev/null || true; wait "$DPID" || true
log "2b. the operator re-pins explicitly"
start_deviced pin3 -o deviced.local-data="$SHARDS/$u.local.csv" \
    -o deviced.user-id="$u" -o deviced.device-id=pin -o auth.repin=yes
wait_for "grep -q 'REGISTERED: device=pin' '$T/pin3.log'" 100 0.1 ||
    hole "2: auth.repin=yes did not re-pin"
kill "$DPID" 2>/dev/null || true; wait "$DPID" || true
log "U. unsigned error on an upload"
wait_for "grep -q 'ANNOUNCE: model v1' '$T/rogue.log'" 600 0.1 || die "rogue: no model"
MITM="tcp://127.0.0.1:$(free_port 4)"
"$BIN/dccl-probe" "$MITM" mitm "$EP" 30 >"$T/mitm.out" 2>&1 &
MPID=$!; PIDS="$PIDS $MPID"
start_deviced vic6 -o deviced.local-data="$SHARDS/$u2.local.csv" \
    -o deviced.user-id="$u2" -o deviced.device-id=vic6 -o deviced.cloud="$MITM"
wait_for "[ \$(grep -c 'CLOUD-ERROR: device=vic6 upload: E_BAD_TENSOR' '$T/vic6.log') -ge 2 ] ||
    grep -q 'CLOUD-ERROR: device=vic6 idle' '$T/vic6.log'" 300 0.1 || true
sleep 1
kill "$DPID" 2>/dev/null || true; wait "$DPID" || true
kill "$MPID" 2>/dev/null || true; wait "$MPID" || true
grep -q "CLOUD-ERROR: device=vic6 upload: E_BAD_TENSOR" "$T/vic6.log" ||
    die "U: the attacker's error never reached the device"
dropped=$(sqlite3 "$T/dev/vic6/device.db" "SELECT count(*) FROM outbox WHERE acked = 1 AND patch_id = 0")
pending=$(sqlite3 "$T/dev/vic6/device.db" "SELECT count(*) FROM outbox WHERE acked = 0")
echo "outbox after the unsigned errors: $pending pending, $dropped dropped"
[ "$dropped" = 0 ] && [ "$pending" -ge 1 ] || hole "U: an unsigned error dropped the patch"
log "C. tampered chunks and a replayed manifest on a download"
MITM="tcp://127.0.0.1:$(free_port 5)"
"$BIN/dccl-probe" "$MITM" mitm-dl "$EP" 40 >"$T/mitm-dl.out" 2>&1 &
MPID=$!; PIDS="$PIDS $MPID"
start_deviced vic7 -o deviced.local-data="$SHARDS/$u2.local.csv" \
    -o deviced.user-id="$u2" -o deviced.device-id=vic7 -o deviced.cloud="$MITM"
wait_for "[ \$(grep -c 'BAD-CHUNK: device=vic7' '$T/vic7.log') -ge 4 ] &&
    grep -q 'BAD-REPLY: device=vic7: forged' '$T/vic7.log' ||
    grep -q 'installed' '$T/vic7.log'" 300 0.1 || true
kill "$DPID" 2>/dev/null || true; wait "$DPID" || true
kill "$MPID" 2>/dev/null || true; wait "$MPID" || true
sort "$T/mitm-dl.out" | uniq -c
grep -m 3 "BAD-CHUNK\|BAD-REPLY\|BAD-MANIFEST" "$T/vic7.log" || true
grep -q "MITM-DL tampered" "$T/mitm-dl.out" ||
    die "C: the attacker saw no chunk"
grep -q "BAD-CHUNK: device=vic7 v[0-9]* chunk [0-9]*: MANIFEST_EHASH" "$T/vic7.log" ||
    hole "C: a tampered chunk was not refused (MANIFEST_EHASH)"
grep -q "BAD-CHUNK: device=vic7 v[0-9]* chunk [0-9]*: MANIFEST_EHEADER" "$T/vic7.log" ||
    hole "C: a chunk with a rewritten checksum was not refused (MANIFEST_EHEADER)"
grep -q "RETRY: device=vic7 download attempt 3 .*does not match the manifest" "$T/vic7.log" ||
    hole "C: no growing backoff after refused chunks"
grep -q "MITM-DL replayed a manifest" "$T/mitm-dl.out" ||
    die "C: the attacker replayed no manifest"
grep -q "BAD-REPLY: device=vic7: forged" "$T/vic7.log" ||
    hole "C: a replayed manifest was not refused"
grep -q "DOWNLOAD: device=vic7 model v[0-9]* installed" "$T/vic7.log" &&
    hole "C: the tampered model was installed"
[ "$(sqlite3 "$T/dev/vic7/device.db" "SELECT (SELECT count(*) FROM model) + (SELECT count(*) FROM download)")" = 0 ] ||
    hole "C: tampered model bytes were stored"
kill -TERM "$RPID"; wait "$RPID" || die "rogue exit"

log "3b. a store other users can read is refused"
chmod 644 "$T/cloud/cloudd.db"
rc=0
timeout 20 "$BIN/cloudd" -o cloudd.listen="$EP" -o cloudd.pub-listen="$PUB" \
    -o cloudd.admin-listen="$ADM" -o cloudd.data-dir="$T/cloud" \
    -o train.on-start=no >"$T/perm.log" 2>&1 || rc=$?
cat "$T/perm.log"
[ $rc = 1 ] || hole "3: world-readable store: exit $rc, want 1"
grep -q "DB-PERMS: .*cloudd.db is accessible to other users" "$T/perm.log" ||
    hole "3: no DB-PERMS line"

log "4. a fresh id claims a user that already has its device (auth.user-devices=1)"
chmod 600 "$T/cloud/cloudd.db"
start_cloudd -o auth.mode=encrypt -o train.on-start=no -o auth.user-devices=1
[ "$(sql "SELECT count(*) FROM devices WHERE user_id=$u")" -ge 1 ] ||
    die "4: user $u has no device"
out=$("$BIN/dccl-probe" "$EP" hijack squat "$T/probe/squat.key" "$u") || true
echo "fresh id naming user $u: $out"
case $out in "ERROR E_FORBIDDEN"*) ;; *) hole "4: a fresh id claimed user $u: $out" ;; esac
[ "$(sql "SELECT count(*) FROM devices WHERE device_id='squat'")" = 0 ] ||
    hole "4: the squatting id was bound"
[ "$(sql "SELECT count(*) FROM device_keys WHERE device_id='squat'")" = 0 ] ||
    hole "4: the squatting id's key was enrolled"
free=""
for f in $(ls "$SHARDS" | grep local | sed 's/\..*//' | sort -n); do
	[ "$(sql "SELECT count(*) FROM devices WHERE user_id=$f")" = 0 ] &&
	    { free=$f; break; }
done
if [ -n "$free" ]; then
	out=$("$BIN/dccl-probe" "$EP" hijack fresh "$T/probe/fresh.key" "$free") || true
	echo "fresh id naming unbound user $free: $out"
	case $out in "REPLY registered"*) ;; *) die "4: a fresh id for a free user: $out" ;; esac
else
	echo "(no unbound user in the shards: positive case skipped)"
fi
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit"

log "B. enrolled keys are bounded (limits.max-devices)"
k0=$(sql "SELECT count(*) FROM device_keys")
start_cloudd -o auth.mode=mac -o train.on-start=no \
    -o limits.max-devices=$((k0 + 3)) -o limits.enroll-burst=100
busy=0
for i in 1 2 3 4 5 6; do
	out=$("$BIN/dccl-probe" "$EP" register "cap$i") || true
	case $out in "ERROR E_BUSY"*) busy=$((busy + 1)) ;;
	"REPLY registered"*) ;; *) die "B: register cap$i: $out" ;; esac
done
k1=$(sql "SELECT count(*) FROM device_keys")
echo "6 fresh ids at limits.max-devices=$((k0 + 3)) ($k0 enrolled): $busy E_BUSY, $k1 keys stored"
[ "$busy" = 3 ] && [ "$k1" = $((k0 + 3)) ] ||
    hole "B: limits.max-devices=$((k0 + 3)): $busy of 6 refused, $k1 keys"
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit"

log "P. secrets in cloudd -p"
for ci in "host=db password=SEKRIT-P" "postgresql://dccl:SEKRIT-P@db/dccl"; do
	out=$("$BIN/cloudd" -o auth.token=SEKRIT-P -o "cloudd.pg-conninfo=$ci" -p)
	echo "$out" | grep "^auth.token \|^cloudd.pg-conninfo "
	case $out in *SEKRIT-P*) hole "P: cloudd -p prints a secret ($ci)" ;; esac
done

[ -z "$HOLES" ] || die "attacks that worked:$HOLES"
echo "attacks OK"
