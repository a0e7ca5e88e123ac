# Federated selection on real daemons (issue 17): devices report their
# setting grids' validation sums, the cloud aggregates and chooses, a
# device of the next round fetches the choice and trains the served method
# at it. Malformed (NaN, inf, a wrong grid) and oversized (17 methods, 65
# methods) reports get typed errors and lose nothing that was counted; a
# device counts once per round; a report on a version the cloud never
# served is stale. The pair weight (issue 17, fifth pass): probe reports
# of one method at the weights 0, 1, 3, 9 get the rule's exact choice,
# bad weights typed errors; the cloud puts each real device's report in
# the group (warm, cold) of its user by its own model, as the data's
# cold.csv says; a device with learn.pair-select = fed fetches its
# group's weight and trains the served method at it.
# timeout: 300
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
# 10 users, 4 of them cold (no pool samples): both groups reach
# fedsel.min-devices (3)
"$BIN/dccl-data" synth "$T/data" --users 10 --items 300 --min-per-user 50 \
    --max-per-user 50 --cold 0.4 --seed 7 >/dev/null || die "dccl-data synth failed"
SHARDS=$T/data/devices
ncold=$(grep -c '^[0-9]' "$T/data/cold.csv" || true)
[ "$ncold" -ge 3 ] || die "want at least 3 cold users, got $ncold"
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
# The cloud's groups: a sel-<user> device is cold iff cold.csv lists its user.
for u in $(ls "$SHARDS" | sed -n 's/^\([0-9]*\)\.local\.csv$/\1/p'); do
	want=warm; grep -qx "$u" "$T/data/cold.csv" && want=cold
	grep -q "FEDSEL: device=sel-$u base=v1 3 methods, $want users" "$T/cloudd.log" ||
	    die "sel-$u not counted with the $want users"
done
echo "groups: $ncold cold, $((n - ncold)) warm, as cold.csv"
# probe-a (user 0) gets its group's choice, from that group's devices
g0=$((n - ncold)); grep -qx 0 "$T/data/cold.csv" && g0=$ncold
serve=$(choice serve)
echo "serve: $serve"
echo "$serve" | grep -q "devices $g0 " || die "serve choice not from the $g0 devices of user 0's group: $serve"
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
# each device at its own group's choice (user 0's is $serve, above)
for d in dev-0 dev-1; do
	sel=$(grep "SELECTION: device=$d serve lr " "$T/use.log") ||
	    die "$d fetched no choice"
	dlr=$(echo "$sel" | sed 's/.* serve lr \([0-9.e-]*\) steps.*/\1/')
	dst=$(echo "$sel" | sed 's/.* serve lr [0-9.e-]* steps \([0-9]*\) .*/\1/')
	grep -q "SETTING: device=$d served method at lr $dlr steps $dst (the cloud's choice)" "$T/use.log" ||
	    die "$d did not train at the cloud's choice (lr $dlr steps $dst)"
done
kill -0 "$CPID" || die "cloudd died"

log "pair weights: three probes report probe-w at 0, 1, 3, 9; weight 3 leads on each"
for d in probe-e probe-f probe-g; do
	expect "register $d" "REPLY registered"
	expect "report $d pairw" "REPLY report_ack"
done
pw() {	# method: its PAIRW line from a GetSelection
	$P selection probe-a 2>&1 | sed -n "s/^PAIRW $1 //p"
}
w=$(pw probe-w)
echo "probe-w: $w"
grp0=0; grep -qx 0 "$T/data/cold.csv" && grp0=1
[ "$w" = "weight 3 evidence group $grp0 devices 3 net 0:3 1:6 3:18 9:9" ] ||
    die "probe-w pair weight: '$w'"
expect "report probe-h pairw-bad" "ERROR E_BAD_REQUEST"
expect "report probe-h pairw-nodef" "ERROR E_BAD_REQUEST"
[ "$(pw probe-w)" = "$w" ] || die "a refused report changed the pair weight: $(pw probe-w)"

# (fine-tuning: MetaPatch barely reorders a user's items, so its net
# pairs are 0 at every weight and the choice is the default)
log "pair weights on real devices: the served method at every weight, then at the group's"
start_deviced selw -o deviced.shards="$SHARDS" -o deviced.device-id=selw \
    -o deviced.data-dir="$T/dev-selw" -o deviced.run-once=yes \
    -o learn.fedsel-report=yes -o learn.fedsel-methods=serve \
    -o learn.pair-select=fed -o learn.adapt=finetune
wait "$DPID" || die "selection deviced (pair weights) failed"
[ "$(grep -c "FEDSEL: device=selw-.* 4 methods" "$T/cloudd.log")" -eq "$n" ] ||
    die "the cloud did not count $n reports of serve at 4 weights"
sw=$($P selection probe-a 2>&1 | sed -n "s/^PAIRW serve //p")
echo "serve pair weight (user 0's group): $sw"
echo "$sw" | grep -q "devices $g0 net 0:" || die "serve's pair weight not from $g0 devices: $sw"
start_deviced usew -o deviced.shards="$SHARDS" -o deviced.device-id=usew \
    -o deviced.data-dir="$T/dev-usew" -o deviced.run-once=yes \
    -o learn.pair-select=fed -o learn.adapt=finetune -o learn.bias-fallback=no
wait "$DPID" || die "deviced (pair weights) failed"
k=0
for u in $(ls "$SHARDS" | sed -n 's/^\([0-9]*\)\.local\.csv$/\1/p'); do
	want=warm; grep -qx "$u" "$T/data/cold.csv" && want=cold
	sel=$(grep "SELECTION: device=usew-$u serve pair weight" "$T/usew.log") ||
	    die "usew-$u fetched no pair weight"
	echo "$sel" | grep -q "; $want users;" || die "usew-$u: not its group's ($want): $sel"
	wu=$(echo "$sel" | sed 's/.* pair weight \([0-9.]*\) .*/\1/')
	grep -q "PAIRW: device=usew-$u served method at pair weight $wu (the cloud's choice)" "$T/usew.log" ||
	    die "usew-$u did not train at the cloud's pair weight $wu"
	k=$((k + 1))
done
echo "$k devices trained at their group's pair weight"
grep "SELECTION: device=usew-.* pair weight" "$T/usew.log" | sed 's/.*device=//' | head -2
kill -0 "$CPID" || die "cloudd died"
echo "fedsel OK"
