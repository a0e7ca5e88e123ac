# Group commit of uploads (cloudd/upload.c): a burst of uploads read in
# one loop iteration is stored in one transaction, and each still gets its
# own Ack, after the commit, with its own patch id; a request sent twice
# within the burst is stored once and both copies are acknowledged with
# that id (one of them as a duplicate). Then one row of a burst is made
# to fail (an SQLite trigger): the batch is rolled back and every upload
# is stored alone, so only that one gets E_STORAGE and the others are
# stored once each. Unsigned uploads (auth.mode=off): the probe sends one
# device's burst over many sockets, whose counters could arrive out of
# order.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
unset DCCL_AUTH_TOKEN
make_data 10
import_pool
# One device sends bursts of 60: keep all its patches (the default keeps a
# device's newest 8, which would delete a burst's first rows before the
# repeat of the first request arrives; window.sh plays that limit).
start_cloudd -o train.epochs=1 -o auth.mode=off -o cloudd.log-level=debug \
    -o limits.patches-per-device=1000
wait_model 1
P="$BIN/dccl-probe $EP"
$P register dev-b | grep -q "REPLY registered" || die "register"

# check_burst OUT N FIRST: N distinct requests + the first once more.
check_burst() {
	out=$1; n=$2; first=$3
	[ "$(grep -c '^ACK ' "$out")" = $((n + 1)) ] || { cat "$out"; die "want $((n + 1)) acks"; }
	# Distinct requests have distinct ids; the repeated one has one id.
	[ "$(awk '{print $2}' "$out" | sort -u | wc -l)" = "$n" ] || die "requests"
	[ "$(awk '{print $3}' "$out" | sort -u | wc -l)" = "$n" ] || { cat "$out"; die "patch ids not distinct"; }
	[ "$(awk -v f="$first" '$2 == f {print $3}' "$out" | sort -u | wc -l)" = 1 ] ||
	    die "the repeated request got two ids"
	[ "$(awk -v f="$first" '$2 == f && $4 == "dup"' "$out" | wc -l)" = 1 ] ||
	    die "want exactly one duplicate of request $first"
	[ "$(grep -c ' dup$' "$out")" = 1 ] || die "want one duplicate in all"
	# Each Ack names the row stored for its request, stored once.
	awk '{print "dev-b|" $2 "|" $3}' "$out" | sort -u >"$T/want"
	sql "SELECT device_id || '|' || request_id || '|' || id FROM patches WHERE
	    request_id >= $first AND request_id < $first + $n" | sort >"$T/have"
	cmp -s "$T/want" "$T/have" || { diff "$T/want" "$T/have" | head; die "acks and rows differ"; }
}

log "a burst of 60 uploads and a repeat"
$P burst dev-b 60 1000 >"$T/burst1.out" || { cat "$T/burst1.out"; die "burst"; }
check_burst "$T/burst1.out" 60 1000
[ "$(sql 'SELECT count(*) FROM patches')" = 60 ] || die "patch count"
# At least one transaction held several uploads (and the Acks came after).
grep -q 'UPLOAD-BATCH: [0-9]* uploads in one transaction' "$T/cloudd.log" ||
    die "no group commit logged"
big=$(sed -n 's/.*UPLOAD-BATCH: \([0-9]*\) uploads in one transaction.*/\1/p' \
    "$T/cloudd.log" | sort -n | tail -n 1)
echo "largest group commit: $big uploads"
[ "$big" -ge 2 ] || die "uploads were not committed together"
dcctl status | grep -q "patches:       60" || die "dcctl status count"

log "one row fails: the others are stored alone"
# Each burst's 8th upload fails. The rollback path (the batch is retried
# one transaction per upload) runs only when that upload shares a batch;
# bursts are repeated until it did, and it must within 5 bursts.
sql "CREATE TRIGGER poison BEFORE INSERT ON patches WHEN NEW.request_id % 100 = 7
    BEGIN SELECT RAISE(ABORT, 'poisoned row'); END;"
tries=0 fell=0
while [ $tries -lt 5 ] && [ $fell = 0 ]; do
	first=$((2000 + tries * 100)); tries=$((tries + 1))
	n0=$(grep -c 'UPLOAD-BATCH: .* not committed together' "$T/cloudd.log" || true)
	$P burst dev-b 30 $first >"$T/burst2.out" || { cat "$T/burst2.out"; die "burst 2"; }
	[ "$(grep -c '^ERROR E_STORAGE' "$T/burst2.out")" = 1 ] || { cat "$T/burst2.out"; die "want one E_STORAGE"; }
	grep -q 'poisoned row' "$T/burst2.out" || die "the error does not say why"
	[ "$(grep -c '^ACK ' "$T/burst2.out")" = 30 ] || { cat "$T/burst2.out"; die "want 30 acks"; }
	[ "$(sql "SELECT count(*) FROM patches WHERE request_id BETWEEN $first AND $((first + 99))")" = 29 ] ||
	    die "want 29 rows of the burst from $first"
	[ "$(sql "SELECT count(*) FROM patches WHERE request_id = $((first + 7))")" = 0 ] ||
	    die "the poisoned row is stored"
	n1=$(grep -c 'UPLOAD-BATCH: .* not committed together' "$T/cloudd.log" || true)
	[ "$n1" -gt "$n0" ] && fell=1
done
[ $fell = 1 ] || die "in $tries bursts the poisoned upload never shared a batch: rollback path not exercised"
echo "the batch fell back to one transaction per upload (burst $tries)"
[ "$(sql 'SELECT count(*) FROM (SELECT DISTINCT device_id, request_id FROM patches)')" = \
    "$(sql 'SELECT count(*) FROM patches')" ] || die "a request stored twice"
sql "DROP TRIGGER poison"
$P upload dev-b 2007 | grep -q "REPLY ack" || die "upload after the trigger went"
want=$((60 + 29 * tries + 1))
dcctl status | grep -q "patches: *$want\$" || die "dcctl status count: want $want"
kill -TERM "$CPID"
wait "$CPID" || die "cloudd exit on TERM"
grep -q "EXIT: clean shutdown" "$T/cloudd.log" || die "unclean shutdown"
[ "$(sql 'PRAGMA integrity_check')" = ok ] || die "integrity"
echo "upload batch OK"
