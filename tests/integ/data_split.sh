# The evaluation's data (issue 17): cold users never reach the pool and
# are listed in cold.csv; histories hold only strictly earlier positives;
# the synthetic oracle file matches the test rows; each ranking positive
# comes after 99 negatives of its own sharing its timestamp and history;
# dccl-eval's warm/cold filter keeps exactly the listed users.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
ML=$ROOT/../shared/data/ml-latest-small

log "synthetic data with 20 % cold users and its oracle"
"$BIN/dccl-data" synth "$T/s" --users 300 --cold 0.2 --seed 7 \
    --count-tail 1.2 --min-per-user 10 --max-per-user 200 >"$T/synth.log" \
    2>&1 || die "synth failed"
n_cold=$(grep -vc '^user$' "$T/s/cold.csv")
[ "$n_cold" = 60 ] || die "synth: $n_cold cold users, want 60"
# users.csv: user,raw,n_pool,n_local,n_test
awk -F, 'NR == FNR { if (FNR > 1) cold[$1] = 1; next }
FNR == 1 { next }
($1 in cold) && $3 != 0 { print "cold user " $1 " has pool rows"; bad = 1 }
!($1 in cold) && $3 == 0 { print "warm user " $1 " has no pool rows"; bad = 1 }
END { exit bad }' "$T/s/cold.csv" "$T/s/users.csv" || die "cold users in the pool"
awk -F, 'NR == FNR { if (FNR > 1) cold[$1] = 1; next }
/^#|^user,/ { next } ($1 in cold) { bad = 1 } END { exit bad }' \
    "$T/s/cold.csv" "$T/s/pool.csv" || die "pool.csv has cold users' rows"
n_test=$(cat "$T"/s/devices/*.test.csv | grep -vc '^#\|^user,')
n_or=$(grep -c '^oracle,' "$T/s/oracle.pred")
[ "$n_test" = "$n_or" ] || die "oracle.pred: $n_or rows for $n_test test rows"
awk -F, '!($5 > 0 && $5 < 1) { exit 1 }' "$T/s/oracle.pred" ||
    die "oracle.pred: a probability outside (0, 1)"

log "dccl-eval keeps the cold or the warm users"
mkdir -p "$T/run"
sed 's/^oracle,/cloud,/' "$T/s/oracle.pred" >"$T/run/d.csv"
cat "$T/s/oracle.pred" >>"$T/run/d.csv"
# device cost lines: 1 on cold users' devices, 3 on warm users'
awk -F, 'NR == FNR { if (FNR > 1) cold[$1] = 1; next } FNR > 1 {
	print "cloud,device_ms," (($1 in cold) ? 1 : 3) >(dir "/dev-" $1 ".extra") }' \
    dir="$T/run" "$T/s/cold.csv" "$T/s/users.csv"
for g in cold warm; do
	"$BIN/dccl-eval" --seeds-dirs "$T/run" --users $g --boot 20 \
	    --cold-users "$T/s/cold.csv" --reference oracle >"$T/$g.md" \
	    2>"$T/$g.log" || die "dccl-eval --users $g failed"
done
grep -q "^- 1 run (one seed): no spread. 60 users" "$T/cold.md" ||
    die "cold table: not 60 users ($(grep '^- 1 run' "$T/cold.md"))"
grep -q "^- 1 run (one seed): no spread. 240 users" "$T/warm.md" ||
    die "warm table: not 240 users"
grep -q "oracle row left out\|the reference row left out" "$T/cold.md" ||
    die "no reference note in the table"
grep '^| cloud model only' "$T/cold.md" | grep -q '| 1 |$' ||
    die "cold table: cost column not from the cold users' devices"
grep '^| cloud model only' "$T/warm.md" | grep -q '| 3 |$' ||
    die "warm table: cost column not from the warm users' devices"

[ -f "$ML/ratings.csv" ] || skip "no ml-latest-small at $ML (synthetic part passed)"

log "MovieLens: histories strictly earlier than the sample"
"$BIN/dccl-data" split "$ML" "$T/m" --cold 0.2 >"$T/split.log" 2>&1 ||
    die "split failed"
# every history item is a positive of the same user from an earlier second
cat "$T/m/pool.csv" "$T"/m/devices/*.local.csv | grep -v '^#\|^user,' |
awk -F, '{ n++; u[n] = $1; it[n] = $2; ts[n] = $3; lab[n] = $5; h[n] = $7
	if ($5 >= 0.5) pos[$1 "," $2] = $3 }
END { for (i = 1; i <= n; i++) { k = split(h[i], x, "|")
	for (j = 1; j <= k; j++) { key = u[i] "," x[j]
		if (!(key in pos) || pos[key] >= ts[i]) {
			print "row " i ": history item " x[j] " not strictly earlier"; exit 1 } } } }' ||
    die "a history holds a positive that is not strictly earlier"

log "MovieLens --no-side: the same samples without the side column"
"$BIN/dccl-data" split "$ML" "$T/n" --cold 0.2 --no-side >"$T/noside.log" \
    2>&1 || die "split --no-side failed"
head -1 "$T/m/pool.csv" | grep -q "^# dccl-samples v2 .*n_side=1" ||
    die "the default split has no side field"
head -1 "$T/n/pool.csv" | grep -q "^# dccl-samples v1 " ||
    die "--no-side: pool.csv is not v1"
[ ! -s "$T/n/schema.txt" ] || die "--no-side: a schema was written"
for f in pool.csv devices/0.local.csv devices/5.test.csv; do
	tail -n +3 "$T/m/$f" | cut -d, -f1-7 >"$T/with-side"
	tail -n +3 "$T/n/$f" >"$T/without"
	[ -s "$T/without" ] && cmp -s "$T/with-side" "$T/without" ||
	    die "--no-side: $f differs beyond the side column"
done

log "MovieLens ranking: each positive after 99 negatives of its own"
"$BIN/dccl-data" split "$ML" "$T/r" --task ranking --negatives 99 \
    --rank-positives 3 --seed 3 >"$T/rank.log" 2>&1 || die "ranking split failed"
for f in "$T"/r/devices/1.test.csv "$T"/r/devices/100.test.csv \
    "$T"/r/devices/414.test.csv; do
	grep -v '^#\|^user,' "$f" | awk -F, '
	{ if ($5 < 0.5) { if (nn == 0) { ts = $3; h = $7 }
		if ($3 != ts || $7 != h) { print "negative context differs"; exit 1 }
		nn++; seen[$2] = 1; next }
	  if (nn != 99) { print "positive after " nn " negatives"; exit 1 }
	  if ($3 != ts || $7 != h) { print "positive context differs"; exit 1 }
	  if ($2 in seen) { print "positive among its negatives"; exit 1 }
	  np++; nn = 0; delete seen }
	END { if (np < 1 || np > 3 || nn != 0) { print np " positives, " nn " trailing"; exit 1 } }' ||
	    die "$f: bad ranking block"
done
log "ok"
