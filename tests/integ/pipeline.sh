# The whole device pipeline over the real protocol: one cloudd and 20
# devices on synthetic drift data with label correction, CoDA retrieval and
# filtering, MetaPatch and guarded adoption; every patch lands in the
# cloud's database and the devices' eval files hold every method.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 20 60
import_pool
start_cloudd
wait_model 1
# the default train.lr-grid: one model per rate, one of them kept
[ "$(grep -c 'TRAIN: lr 0.00[13]: ' "$T/cloudd.log")" = 2 ] &&
    [ "$(grep -c 'TRAIN: lr .*(kept)$' "$T/cloudd.log")" = 1 ] ||
    die "cloudd did not train and choose over train.lr-grid"
mkdir -p "$T/eval"
start_deviced devs -o deviced.shards="$SHARDS" -o deviced.run-once=yes \
    -o learn.lc=soft -o learn.coda=yes -o deviced.eval-dir="$T/eval"
rc=0; wait "$DPID" || rc=$?
[ $rc = 0 ] || die "deviced exit $rc"
[ "$(sql 'SELECT count(DISTINCT device_id) FROM patches')" = 20 ] || die "patches"
grep -q "TRAIN: device=.* + [1-9][0-9]*/100 retrieved" "$T/devs.log" || die "the filter kept nothing"
grep -q "RETRIEVE: device=.*similar users" "$T/devs.log" || die "no retrieval by similar users"
n=$(ls "$T/eval"/*.csv | wc -l)
[ "$n" = 20 ] || die "eval files: $n"
for m in cloud naive-ft ft-cv ft-lc ft-lcm ft-coda-u metapatch mp-lc-coda bias mp-fb; do
	grep -q "^$m," "$T/eval/dev-0.csv" || die "method $m missing"
done
grep -q "^metapatch,bytes_up," "$T/eval/dev-0.extra" || die "extra columns"
echo "pipeline OK"
