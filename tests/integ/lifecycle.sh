# Model lifecycle from dcctl: two trained versions; model show reads the
# metrics out of the stored blob; rollback to v1 stores v1's weights as a
# new version v3 (parent v2, same checksum) and announces it; a device
# started afterwards downloads v3 and retrieves against the rebuilt index;
# prune with keep=1 keeps only the current version (and the patches); a
# restart serves v3.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 12
import_pool
start_cloudd
wait_model 1
dcctl train 2 | grep -q "training started (base v1)" || die "dcctl train"
wait_model 2
wait_for "dcctl status | grep -q 'model version: 2\$'" 100 0.1 || die "v2 not current"

log "model show"
dcctl model show 1 >"$T/show1.txt" || die "model show 1"
grep -q "^version:  1\$" "$T/show1.txt" || die "show 1 version"
grep -q "^parent:   0\$" "$T/show1.txt" || die "show 1 parent"
grep -q "^metric:   val_auc " "$T/show1.txt" || die "show 1 metrics"
grep -q "^r_g:      0\.[0-9]" "$T/show1.txt" || die "show 1 r_g"
dcctl model show >"$T/show2.txt" || die "model show (current)"
grep -q "^version:  2 (current)\$" "$T/show2.txt" || die "current is not v2"
rc=0; dcctl model show 9 2>"$T/err.txt" || rc=$?
[ $rc = 1 ] && grep -q "E_NOT_FOUND" "$T/err.txt" || die "show of a missing version"

log "rollback"
ofa1="SELECT count(*) FROM ofa_models WHERE base_version = 1"
wait_for "[ \"\$(sql '$ofa1')\" = 1 ]" 300 0.1 || die "no OFA model for v1"
dcctl rollback 1 >"$T/rb.txt" || die "rollback"
grep -q "model v3 has v1's weights (parent v2)" "$T/rb.txt" || die "rollback reply: $(cat "$T/rb.txt")"
wait_model 3
grep -q "ROLLBACK: model v3 = v1's weights" "$T/cloudd.log" || die "no ROLLBACK line"
dcctl model show 3 >"$T/show3.txt" || die "model show 3"
grep -q "^version:  3 (current)\$" "$T/show3.txt" || die "v3 not current"
grep -q "^parent:   2\$" "$T/show3.txt" || die "v3 parent"
grep -q "^copy of:  1 (rollback)\$" "$T/show3.txt" || die "v3 copy of"
[ "$(grep '^checksum' "$T/show3.txt")" = "$(grep '^checksum' "$T/show1.txt")" ] ||
    die "v3 is not v1's blob"
[ "$(sql 'SELECT parent FROM models WHERE version = 3')" = 2 ] || die "db parent"
[ "$(sql 'SELECT count(*) FROM models WHERE blob = (SELECT blob FROM models WHERE version = 1)')" = 2 ] ||
    die "db blob copy"
[ "$(sql 'SELECT count(*) FROM ofa_models WHERE blob = (SELECT blob FROM ofa_models WHERE base_version = 1)')" = 2 ] ||
    die "v3 did not get v1's OFA model"
rc=0; dcctl rollback 3 2>"$T/err.txt" || rc=$?
[ $rc = 1 ] && grep -q "already current" "$T/err.txt" || die "rollback to current"
rc=0; dcctl rollback 42 2>"$T/err.txt" || rc=$?
[ $rc = 1 ] && grep -q "E_NOT_FOUND" "$T/err.txt" || die "rollback to a missing version"
"$BIN/dccl-probe" "$EP" admin | grep -q "ERROR E_FORBIDDEN" || die "admin on device socket"

log "a device after the rollback"
first=$(ls "$SHARDS" | grep local | sort -n | head -1)
start_deviced dev -o deviced.local-data="$SHARDS/$first" \
    -o deviced.user-id="${first%%.*}" -o deviced.device-id=late \
    -o deviced.run-once=yes -o learn.coda=yes
rc=0; wait "$DPID" || rc=$?
[ $rc = 0 ] || die "deviced exit $rc"
grep -q "DOWNLOAD: device=late model v3 installed" "$T/dev.log" || die "device did not get v3"
grep -q "RETRIEVE: device=late got [1-9]" "$T/dev.log" || die "no retrieval on v3"
grep -q "E_STALE" "$T/cloudd.log" && die "retrieval saw a stale index"
[ "$(sql 'SELECT base_version FROM patches WHERE device_id = "late"')" = 3 ] ||
    die "patch not on v3"

log "prune"
ofa2="SELECT count(*) FROM ofa_models WHERE base_version = 2"
wait_for "[ \"\$(sql '$ofa2')\" = 1 ]" 300 0.1 || die "no OFA model for v2"
dcctl prune 1 >"$T/prune.txt" || die "prune"
grep -q "pruned 2 version(s): v1 v2;.* 1 version(s) left" "$T/prune.txt" ||
    die "prune reply: $(cat "$T/prune.txt")"
grep -q "PRUNE: deleted 2 versions (v1 v2)" "$T/cloudd.log" || die "no PRUNE line"
dcctl models >"$T/models.txt" || die "models"
[ "$(grep -c '^[0-9]' "$T/models.txt")" = 1 ] || die "models after prune: $(cat "$T/models.txt")"
grep -q '^3 .* \*$' "$T/models.txt" || die "v3 not listed as current"
[ "$(sql 'SELECT count(*) FROM patches')" = 1 ] || die "prune touched patches"
[ "$(sql 'SELECT group_concat(base_version) FROM ofa_models')" = 3 ] ||
    die "OFA models after prune: $(sql 'SELECT group_concat(base_version) FROM ofa_models')"
dcctl prune >"$T/prune2.txt" || die "prune (config keep)"
grep -q "pruned 0 version(s): none" "$T/prune2.txt" || die "second prune deleted something"

log "restart"
kill -TERM "$CPID"
wait_for "! kill -0 $CPID 2>/dev/null" 100 0.1 || die "cloudd did not stop"
rc=0; wait "$CPID" || rc=$?
[ $rc = 0 ] || die "cloudd exit $rc"
mv "$T/cloudd.log" "$T/cloudd-first.log"	# start_cloudd waits for READY
start_cloudd
grep -q "READY: .*model v3" "$T/cloudd.log" || die "restart does not serve v3"
dcctl train 1 >/dev/null || die "train after restart"
wait_model 4
[ "$(sql 'SELECT parent FROM models WHERE version = 4')" = 3 ] || die "v4 parent"
echo "lifecycle OK"
