# The item prior (model format 3) through the daemons: with
# train.item-prior=yes and the weight grid "1" cloudd ships a format-3
# model (with its auxiliary encoder) that 10 devices download, install,
# learn on and patch; with the default grid it chooses a weight on the
# validation slice and says so; values it does not take are config errors
# naming the option.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
for bad in "-o train.item-prior=maybe" "-o train.item-prior-weights=1,x" \
    "-o train.item-prior-weights=-1" "-o train.item-prior-weights="; do
	rc=0; "$BIN/cloudd" $bad -n >"$T/out" 2>&1 || rc=$?
	[ $rc = 1 ] && grep -q "train.item-prior" "$T/out" ||
	    die "accepted: $bad"
done
make_data 10 60
import_pool
start_cloudd -o train.item-prior=yes -o train.item-prior-weights=1
wait_model 1
grep -q 'TRAIN: item prior weight 1 (validation GAUC' "$T/cloudd.log" ||
    die "the weight grid 1 did not give weight 1"
start_deviced devs -o deviced.shards="$SHARDS" -o deviced.run-once=yes
rc=0; wait "$DPID" || rc=$?
[ $rc = 0 ] || die "deviced exit $rc"
n=$(sql 'SELECT count(DISTINCT device_id) FROM patches WHERE base_version = 1')
[ "$n" = 10 ] || die "patches on the format-3 model: $n of 10"
grep -q "unsupported model format\|EFORMAT" "$T/devs.log" && die "a device refused it"
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit"
rm -rf "$T/cloud"
import_pool
start_cloudd -o train.item-prior=yes
wait_model 1
grep -Eq 'TRAIN: item prior weight (0|0.5|1|2) \(validation GAUC [0-9.]+, at 0 [0-9.]+\)' \
    "$T/cloudd.log" || die "the default grid chose no weight"
echo "item_prior OK"
