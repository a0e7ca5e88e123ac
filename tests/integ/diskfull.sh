# Disk full and read-only database. cloudd's data dir is a 8 MiB tmpfs;
# once it is filled, an upload gets E_STORAGE (nothing stored, the error
# logged) while reads (GetStatus, dcctl) keep being answered; when space
# is back, uploads are stored again. With the file system read-only,
# cloudd refuses to start with a DB-OPEN error and exit 1 (documented in
# README "Storage and durability"). Needs mount(2) (root); else skipped.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
mkdir -p "$T/cloud"
mount -t tmpfs -o size=8m tmpfs "$T/cloud" 2>/dev/null || skip "cannot mount a tmpfs (not root?)"
umount_it() { umount -l "$T/cloud" 2>/dev/null || true; }
trap 'umount_it; cleanup' EXIT INT TERM
make_data 10
import_pool
start_cloudd -o train.epochs=1 -o limits.rate=0	# uploads below, in a burst
wait_model 1
P="$BIN/dccl-probe $EP"
$P register dev-u | grep -q "REPLY registered" || die "register"
$P upload dev-u 1 | grep -q "REPLY ack" || die "first upload"
$P status | grep -q "REPLY status" || die "status"	# enrolls "probe" (a write)
log "fill the file system"
dd if=/dev/zero of="$T/cloud/filler" bs=64k 2>/dev/null || true
# SQLite may still write patches into space its own files hold (free
# pages, a WAL grown before a checkpoint reset it, up to its 4 MB): such
# an upload is stored, acknowledged and no error (once in CI). Once that
# space is used up, an upload needs new space and must get E_STORAGE.
req=2 stored=1
while :; do
	out=$($P upload dev-u $req)
	echo "upload $req on a full disk: $out"
	case $out in
	"ERROR E_STORAGE"*) break ;;
	"REPLY ack"*) stored=$((stored + 1)) req=$((req + 1)) ;;
	*) die "want E_STORAGE, got '$out'" ;;
	esac
	[ $req -le 400 ] || die "400 uploads stored on a full disk, no E_STORAGE"
done
grep -q "RPC-ERROR: E_STORAGE device=dev-u" "$T/cloudd.log" || die "no log line"
$P status | grep -q "REPLY status" || die "reads not answered on a full disk"
dcctl status | grep -q "patches: *$stored\$" || die "dcctl status on a full disk"
kill -0 "$CPID" || die "cloudd died"
log "space back"
rm -f "$T/cloud/filler"
$P upload dev-u $req | grep -q "REPLY ack" || die "upload after space came back"
[ "$(sql 'SELECT count(*) FROM patches')" = $((stored + 1)) ] || die "patch count"
log "read-only file system"
kill -TERM "$CPID"
wait "$CPID" || die "cloudd exit on TERM"
mount -o remount,ro "$T/cloud" || skip "cannot remount read-only"
rc=0; "$BIN/cloudd" -o cloudd.listen="$EP" -o cloudd.pub-listen="$PUB" \
    -o cloudd.admin-listen="$ADM" -o cloudd.data-dir="$T/cloud" >"$T/ro.log" 2>&1 || rc=$?
cat "$T/ro.log"
[ $rc = 1 ] || die "read-only: exit $rc, want 1"
grep -q "DB-OPEN\|AUTH: " "$T/ro.log" || die "no DB-OPEN line"
mount -o remount,rw "$T/cloud"
[ "$(sql 'PRAGMA integrity_check')" = ok ] || die "integrity"
echo "disk full / read-only OK"
