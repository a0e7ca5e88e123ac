#!/bin/sh
# scale.sh N [KILL_PCT]: one round of N devices through scripts/simulate.sh
# (synthetic data), watched from /proc every second. Prints round time
# (first device start to last device done), requests, timeouts, E_BUSY,
# cloudd and deviced peak RSS, their CPU time and the share of devices done.
#
# KILL_PCT (default 0): SIGKILL that share of the deviced processes once
# half the devices have a model, restart them, and count whether they too
# finish (dropout test).
#
# SCALE_MAX_ROUND_S: fail when the round takes longer (make loadtest).
#
# Distillation: the cloud distills automatically once SCALE_DISTILL_PCT
# (default 85) percent of the N devices have uploaded a patch on the
# round's model (distill.min-patches), or SCALE_DISTILL_WINDOW_S (default
# 120) seconds after the first patch (distill.window-s), whichever comes
# first; the summary says whether and when it fired, on how many patches,
# and whether the distilled model was made (or the run kept the model's
# weights and published none) before the run ended.
# SCALE_DISTILL_PCT=0 configures no trigger.
#
# Safety: the machine is shared. The run is killed as a whole when the
# total RSS of its processes passes SCALE_RSS_LIMIT_MB (default 8192) or
# when it runs longer than SCALE_TIMEOUT_S (default 900).
#
# Disk: every hosted device writes its store (~2-4 MB) under $OUT/dev, so
# 10,000 devices need 20-40 GB in /tmp. At the end (also after a watchdog
# kill) the run deletes $OUT/dev and $OUT/data and keeps the logs and the
# cloud's store; SCALE_KEEP_DATA=1 keeps everything.
set -eu
N=${1:?usage: scale.sh N [KILL_PCT]}
KILL_PCT=${2:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIMIT_MB=${SCALE_RSS_LIMIT_MB:-8192}
TIMEOUT_S=${SCALE_TIMEOUT_S:-900}
OUT=${OUT:-$(mktemp -d /tmp/dccl-scale.XXXXXX)}
export OUT OPENBLAS_NUM_THREADS=1
# A fleet's devices are enrolled before a round; here every device enrols
# in it, so the first-enrolment bucket (100/s by default, a guard against
# X25519 floods) would by itself take N/100 s. CLOUDD_OPTS set by the
# caller come after, and win.
DISTILL_PCT=${SCALE_DISTILL_PCT:-85}
DISTILL_WINDOW_S=${SCALE_DISTILL_WINDOW_S:-120}
DISTILL_OPTS=""
if [ "$DISTILL_PCT" -gt 0 ]; then
	DISTILL_OPTS="-o distill.min-patches=$(( (N * DISTILL_PCT + 99) / 100 ))"
	DISTILL_OPTS="$DISTILL_OPTS -o distill.window-s=$DISTILL_WINDOW_S"
fi
CLOUDD_OPTS="-o limits.enroll-rate=2000 -o limits.enroll-burst=20000 $DISTILL_OPTS ${CLOUDD_OPTS:-}"
export CLOUDD_OPTS
[ "$KILL_PCT" -gt 0 ] && export RESTART_KILLED=1
mkdir -p "$OUT"

# Removes the device stores and the synthetic data, once the run is over.
free_disk() {
	[ "${SCALE_KEEP_DATA:-0}" = 1 ] && return 0
	rm -rf "$OUT/dev" "$OUT/data"
	echo "deleted $OUT/dev and $OUT/data (SCALE_KEEP_DATA=1 keeps them)"
}

# Seconds from the first device start (simulate.out's "devices start")
# to the cloudd log line matching $1, or nothing.
since_start() {
	t0=$(sed -n 's/^devices start: //p' "$OUT/simulate.out")
	ts=$(grep -m1 "$1" "$OUT/cloudd.log" | cut -d' ' -f1)
	[ -n "$t0" ] && [ -n "$ts" ] || return 0
	awk -v a="$(date -d "$ts" +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }'
}

# Whether and when the automatic distillation fired, on how many patches.
distill_summary() {
	if [ -z "$DISTILL_OPTS" ]; then
		echo "distill    no trigger configured (SCALE_DISTILL_PCT=0)"
		return 0
	fi
	trig="$(( (N * DISTILL_PCT + 99) / 100 )) patches or ${DISTILL_WINDOW_S} s"
	line=$(grep -m1 "DISTILL: automatic run:" "$OUT/cloudd.log" || true)
	if [ -z "$line" ]; then
		echo "distill    did not fire (trigger: $trig)"
		return 0
	fi
	n=$(echo "$line" | sed -n 's/.*automatic run: \([0-9]*\) users.*/\1/p')
	why=$(echo "$line" | sed -n 's/.*(\(.*\))$/\1/p')
	# The run's result: a new version, or the weights kept (no version).
	res='DISTILL: model v\|DISTILL: v[0-9]* kept: '
	made=$(grep -m1 "$res" "$OUT/cloudd.log" |
	    sed -nE 's/.*DISTILL: (model v[0-9]+ from v[0-9]+|v[0-9]+ kept): ([0-9]+) fresh.*/\1 on \2 fresh patches/p')
	case $made in *" kept "*) made="$made (no new version)" ;; esac
	if [ -n "$made" ]; then
		made="$made, done $(since_start "$res") s after the start"
	else
		made="no distilled model before the run ended"
	fi
	echo "distill    fired $(since_start "DISTILL: automatic run:") s after the first device start on $n patches ($why; trigger: $trig); $made"
}

# The whole run in its own process group, so one kill ends all of it.
setsid sh "$ROOT/scripts/simulate.sh" "$N" >"$OUT/simulate.out" 2>&1 &
SIM=$!
trap 'kill -9 -$SIM 2>/dev/null || true' EXIT INT TERM

# Processes of this run: their command lines name $OUT.
rss_of() {	# prints "cloudd_kb deviced_total_kb deviced_max_kb"
	c=0; t=0; m=0; now=$(date +%s)	# one clock read per scan
	for p in /proc/[0-9]*; do
		cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		case "$cmd" in *"$OUT"*) ;; *) continue ;; esac
		r=$({ awk '/^VmRSS/ {print $2}' "$p/status"; } 2>/dev/null) || continue
		[ -n "$r" ] || continue
		# CPU ticks so far (utime + stime), kept for the totals
		# and the kernel's share of them (stime)
		set -- $({ awk '{print $14 + $15, $15}' "$p/stat"; } 2>/dev/null)
		k=${1:-0}; ks=${2:-0}
		case "$cmd" in
		*bin/cloudd*) c=$((c + r)); echo "$now cloudd ${p#/proc/} $k $r $ks" >>"$OUT/cpu.samples" ;;
		*bin/deviced*) t=$((t + r)); [ "$r" -gt "$m" ] && m=$r
			echo "$now deviced ${p#/proc/} $k $r $ks" >>"$OUT/cpu.samples" ;;
		esac
	done
	echo "$c $t $m"
}

# The watchdog reads the clock: a /proc scan takes seconds under load,
# so counting loop iterations would fire late.
pc=0; pt=0; pm=0; killed=0; restarted=0; why=""
t_start=$(date +%s)
while kill -0 $SIM 2>/dev/null; do
	set -- $(rss_of)
	[ "$1" -gt $pc ] && pc=$1
	[ "$2" -gt $pt ] && pt=$2
	[ "$3" -gt $pm ] && pm=$3
	if [ $(( ($1 + $2) / 1024 )) -gt "$LIMIT_MB" ]; then
		why="total RSS $(( ($1 + $2) / 1024 )) MiB passed the limit of $LIMIT_MB MiB"
		break
	fi
	if [ $(( $(date +%s) - t_start )) -gt "$TIMEOUT_S" ]; then
		why="still running after $TIMEOUT_S s"
		break
	fi
	if [ "$KILL_PCT" -gt 0 ] && [ $killed -eq 0 ] && [ -f "$OUT/devices.pids" ]; then
		got=$(cat "$OUT"/deviced*.log 2>/dev/null | grep -c "DOWNLOAD: .* installed" || true)
		if [ "$got" -ge $((N / 2)) ]; then
			np=$(wc -l <"$OUT/devices.pids")
			k=$(( (np * KILL_PCT + 99) / 100 ))
			head -n "$k" "$OUT/devices.pids" | while read -r pid; do
				kill -9 "$pid" 2>/dev/null || true
			done
			killed=$k
			echo "dropout: SIGKILLed $k of $np deviced processes with $got of $N models installed"
		fi
	fi
	sleep 1
done
if [ -n "$why" ]; then
	kill -9 -$SIM 2>/dev/null || true
	echo "WATCHDOG: killed the run: $why"
	echo "peak RSS so far: cloudd $((pc / 1024)) MiB, deviced total $((pt / 1024)) MiB (max $((pm / 1024)) MiB in one process)"
	echo "output: $OUT"
	sleep 1
	free_disk
	exit 2
fi
rc=0
wait $SIM || rc=$?
trap - EXIT
cat "$OUT/simulate.out" | grep -v '^[a-z0-9-]* *[0-9.]* + [0-9]' | grep -v '^\.\.\. ' || true
logs=$(ls "$OUT"/deviced*.log)
req=$(cat $logs | sed -n "s/.*TRAFFIC: \([0-9]*\) requests.*/\1/p" | awk "{ s += \$1 } END { print s + 0 }")
tmo=$(cat $logs | grep -c "TIMEOUT:" || true)
rsd=$(cat $logs | sed -n "s/.*requests, \([0-9]*\) re-sends.*/\1/p" | awk "{ s += \$1 } END { print s + 0 }")
busy=$(cat $logs | sed -n "s/.*timeouts, \([0-9]*\) busy.*/\1/p" | awk "{ s += \$1 } END { print s + 0 }")
late=$(cat $logs | sed -n "s/.* \([0-9]*\) late chunks kept.*/\1/p" | awk "{ s += \$1 } END { print s + 0 }")
done_=$(cat $logs | grep -o "DONE: device=[^ ]*" | sort -u | wc -l)
echo "== scale: $N devices"
printf "%-10s %s\n" round "$(sed -n 's/^device phase: //p' "$OUT/simulate.out")"
printf "%-10s %s sent, %s timeouts (%s%%), %s E_BUSY, %s late chunks kept\n" requests "$req" "$tmo" \
    "$(awk -v a="$tmo" -v b="$req" 'BEGIN { printf "%.2f", b ? 100 * a / b : 0 }')" "$busy" "$late"
printf "%-10s cloudd %d MiB; deviced total %d MiB, max %d MiB in one process, %.0f KiB per device\n" \
    "peak RSS" $((pc / 1024)) $((pt / 1024)) $((pm / 1024)) "$(awk -v a=$pt -v n=$N 'BEGIN { print a / n }')"
# CPU: each process's last sample; cloudd's split at the first deviced
# sample (training before it). Up to a second of CPU per process is missed.
awk -v hz="$(getconf CLK_TCK)" -v n="$N" '
	$2 == "deviced" && t0 == "" { t0 = $1 }
	$2 == "cloudd" && (t0 == "" || $1 < t0) { pre[$3] = $4 }
	{ last[$2 " " $3] = $4; lastk[$2 " " $3] = $6 }
	END {
		for (k in last) { split(k, a, " "); tot[a[1]] += last[k]; kt[a[1]] += lastk[k] }
		for (p in pre) c0 += pre[p]
		printf "%-10s cloudd %.1f s (%.1f s before the first device), deviced %.1f s (%.1f ms per device, %.0f %% in the kernel)\n",
		    "CPU", tot["cloudd"] / hz, c0 / hz, tot["deviced"] / hz, 1000 * tot["deviced"] / hz / n,
		    tot["deviced"] ? 100 * kt["deviced"] / tot["deviced"] : 0
	}' "$OUT/cpu.samples" 2>/dev/null || true
# When cloudd's RSS peaked, against the first device start (field 5 of a
# sample is its VmRSS in KiB): training, the devices' requests or the
# distillation after them.
awk '$2 == "deviced" && t0 == "" { t0 = $1 }
	$2 == "cloudd" && $5 + 0 > pk { pk = $5; at = $1 }
	END { if (pk > 0 && t0 != "")
		printf "%-10s cloudd %d MiB at %+d s from the first device start\n",
		    "RSS peak", pk / 1024, at - t0 }' "$OUT/cpu.samples" 2>/dev/null || true
printf "%-10s %d of %d (%.1f%%)\n" done "$done_" "$N" "$(awk -v a=$done_ -v n=$N 'BEGIN { print 100 * a / n }')"
[ "$KILL_PCT" -gt 0 ] && echo "dropout    $killed deviced processes SIGKILLed and restarted"
distill_summary
echo "load       $(uptime | sed 's/.*load/load/')"
echo "output: $OUT"
free_disk
[ "$done_" -eq "$N" ] || rc=1
if [ -n "${SCALE_MAX_ROUND_S:-}" ]; then
	r=$(sed -n 's/^device phase: \([0-9.]*\) s/\1/p' "$OUT/simulate.out")
	if awk -v r="${r:-1e9}" -v m="$SCALE_MAX_ROUND_S" 'BEGIN { exit !(r > m) }'; then
		echo "FAIL: round time ${r:-?} s is above SCALE_MAX_ROUND_S=$SCALE_MAX_ROUND_S"
		rc=1
	fi
fi
exit $rc
