# Federated selection on real daemons (issue 17): devices report their
# setting grids' validation sums, the cloud aggregates and chooses, a
# device of the next round fetches the choice and trains the served method
# at it. Malformed (NaN, inf, a wrong grid) and oversized (17 methods, 65
# methods) reports get typed errors and lose nothing that was counted; a
# device counts once per round; a report on a version the cloud never
# served is stale.
# timeout: 300
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 8 50
import_pool
start_cloudd -o fedsel.min-devices=3 -o fedsel.min-samples=30
wait_model 1
P="$BIN/dccl-probe $EP"
expect() {	# "probe args" expected-prefix
	out=$($P $1 2>&1) || die "probe $1 failed: $out"
	case $out in "$2"*) echo "ok: $1 -> $(echo "$out" | head -1)" ;;
	*) die "probe $1: got '$out', want '$2'" ;; esac
}
choice() {	# method: its CHOICE line from a GetSelection
	$P selection probe-a 2>&1 | sed -n "s/^CHOICE $1 //p"
}

log "no reports yet: an empty choice"
expect "register probe-a" "REPLY registered"
out=$($P selection probe-a 2>&1)
[ "$out" = "REPLY selection" ] || die "selection before any report: $out"

log "three probe devices report probe-m (point 0 far ahead): the cloud takes it"
for d in probe-a probe-b probe-c; do
	expect "register $d" "REPLY registered"
	expect "report $d good" "REPLY report_ack"
done
c=$(choice probe-m)
echo "probe-m: $c"
case $c in "lr 0.00333333 steps 5 point 0 evidence devices 3 n 300 round 1") ;;
*) die "probe-m choice: '$c'" ;; esac
log "a device counts once per round"
out=$($P report probe-a good 2>&1)
echo "$out" | grep -q "COUNTED 0 duplicate" || die "second report counted: $out"

log "malformed and oversized reports: typed errors, nothing lost"
expect "report probe-d nan" "ERROR E_BAD_REQUEST"
expect "report probe-d inf" "ERROR E_BAD_REQUEST"
expect "report probe-d grid" "ERROR E_BAD_REQUEST"
expect "report probe-d many" "ERROR E_TOO_LARGE"
expect "report probe-d huge" "ERROR E_TOO_LARGE"
expect "report probe-d good 99" "ERROR E_STALE"
[ "$(choice probe-m)" = "$c" ] || die "a refused report changed the table: $(choice probe-m)"
kill -0 "$CPID" || die "cloudd died"

log "selection round: every device reports its grids"
start_deviced sel -o deviced.shards="$SHARDS" -o deviced.device-id=sel \
    -o deviced.data-dir="$T/dev-sel" -o deviced.run-once=yes \
    -o learn.fedsel-report=yes -o learn.fedsel-methods=serve,ft-cv,bias
wait "$DPID" || die "selection deviced failed"
n=$(ls "$SHARDS" | grep -c '\.local\.csv$')
r=$(grep -c "REPORTED: device=sel-" "$T/sel.log" || true)
[ "$r" -eq "$n" ] || die "$r of $n devices reported"
[ "$(grep -c "FEDSEL: device=sel-.* 3 methods" "$T/cloudd.log")" -eq "$n" ] ||
    die "the cloud did not count $n reports of 3 methods"
serve=$(choice serve)
echo "serve: $serve"
echo "$serve" | grep -q "devices $n " || die "serve choice not from $n devices: $serve"
[ "$(choice probe-m)" = "$c" ] || die "the probe reports were lost"

log "malformed reports after the round: still refused, the round intact"
expect "report probe-d nan" "ERROR E_BAD_REQUEST"
[ "$(choice serve)" = "$serve" ] || die "serve choice changed: $(choice serve)"

log "next round: a device fetches the choice and trains at it"
lr=$(echo "$serve" | awk '{print $2}')
st=$(echo "$serve" | awk '{print $4}')
start_deviced use -o deviced.shards="$SHARDS" -o deviced.devices=2 \
    -o deviced.run-once=yes -o learn.select=fed -o learn.bias-fallback=no
wait "$DPID" || die "deviced failed"
grep "SELECTION: device=dev-" "$T/use.log" | head -3
grep -q "SELECTION: device=dev-[0-9]* serve lr $lr steps $st " "$T/use.log" ||
    die "the device did not get the cloud's choice (lr $lr steps $st)"
grep "SETTING: " "$T/use.log" | head -2
[ "$(grep -c "SETTING: device=dev-[0-9]* served method at lr $lr steps $st (the cloud's choice)" "$T/use.log")" -eq 2 ] ||
    die "a device did not train at the cloud's choice"
kill -0 "$CPID" || die "cloudd died"
echo "fedsel OK"
