# MoMoDistill end to end: cloudd + 8 devices; `dcctl distill` makes v2
# from the patches on v1, v2 is announced and every device downloads it,
# re-personalizes and uploads a patch on v2. Then the stale rule: after a
# plain training (v3) every stored patch is stale; with distill.stale=drop
# distill refuses (nothing usable, all counted as dropped), with decay the
# v2 patches are used at weight lambda*decay (teacher = v2 + patch) and v4
# records it (with distill.freeze-users, the student's per-user rows
# fixed). Last, the automatic trigger (distill.min-patches): devices
# upload on v4 and cron distills v5 without dcctl.
# Every run here changes the weights (a run that keeps them publishes no
# version: distill_kept.sh): v1 and v3 are trained for one epoch without
# the item prior (whose recalibration, fit on the validation slice, no
# distillation epoch beats), so distilling further improves validation;
# the devices' guard adopts any patch with a positive CV gain
# (learn.guard-z=0, learn.guard-rank=no), so there are soft samples.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
endpoints
make_data 8 60
import_pool
DEVOPTS="-o learn.guard-z=0 -o learn.guard-rank=no"
# Trainable per-user rows here (the default is frozen), frozen for v4.
start_cloudd -o distill.stale=drop -o distill.freeze-users=no \
    -o train.epochs=1 -o train.item-prior=no
wait_model 1
patches_on() { sql "SELECT count(DISTINCT device_id) FROM patches WHERE base_version = $1"; }
# shellcheck disable=SC2086
start_deviced devs -o deviced.shards="$SHARDS" $DEVOPTS
wait_for "[ \$(patches_on 1) = 8 ]" 600 0.1 || die "patches on v1: $(patches_on 1)"

log "dcctl distill on v1"
out=$(dcctl distill 2) || die "dcctl distill: $out"
echo "$out"
echo "$out" | grep -q "base v1): 8 patches, 0 stale used" || die "reply: $out"
wait_model 2
distill_accepted 2 1
grep -q "DISTILL: model v2 from v1: 8 fresh + 0 stale patches used" "$T/cloudd.log" || die "v2 line"
wait_for "[ \$(grep -c 'DOWNLOAD: device=.* model v2 installed' '$T/devs.log') -ge 8 ]" 600 0.1 || die "devices did not download v2"
wait_for "[ \$(patches_on 2) = 8 ]" 600 0.1 || die "no re-personalized patches on v2"
# v2's shared part on disk once, v1's removed with its last device
# (deviced/dshared.h)
ls "$T/dev/shared" | grep -q '^v2-.*\.part$' && [ "$(ls "$T/dev/shared" | wc -l)" = 1 ] ||
    die "shared parts on disk: $(ls "$T/dev/shared")"
dcctl model show 2 | grep -q "distill_patches.*8" || die "v2 metrics: $(dcctl model show 2)"
kill -TERM "$DPID"; wait "$DPID" 2>/dev/null || true

log "stale patches: drop"
dcctl train 1 >/dev/null || die "train"
wait_model 3
out=$(dcctl distill 2>&1) && die "distill with only stale patches under drop: $out"
echo "$out" | grep -q "E_NOT_FOUND.*no usable patch for v3 (8 stale dropped" || die "drop reply: $out"
grep -q "DISTILL: no usable patch for v3 (8 stale dropped" "$T/cloudd.log" || die "drop log"

log "stale patches: decay (restart with distill.stale=decay)"
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit"
start_cloudd -o distill.stale=decay -o distill.decay=0.25 -o distill.lambda=2 \
    -o distill.min-patches=8 -o distill.freeze-users=yes
# Right after READY the pool may still be loading: E_BUSY, retry.
dcctl_busy distill 2
echo "$out"
echo "$out" | grep -q "base v3): 0 patches, 8 stale used, 0 stale dropped" || die "decay reply: $out"
wait_model 4
distill_accepted 4 3
grep -q "DISTILL: model v4 from v3: 0 fresh + 8 stale patches used" "$T/cloudd.log" || die "v4 line"
# Patches a device's guard did not adopt (its m rows = the base's) teach
# nothing and are left out: taught + not adopted = the 8 patches, and
# some taught.
line=$(grep "DISTILL: [0-9]* users' patches (2 teacher model(s)), lambda 2.*per-user rows frozen" "$T/cloudd.log") || die "teachers"
taught=$(echo "$line" | sed -n "s/.*DISTILL: \([0-9]*\) users' patches.*/\1/p")
same=$(echo "$line" | sed -n 's/.*(\([0-9]*\) not adopted).*/\1/p')
[ $((taught + same)) = 8 ] && [ "$taught" -gt 0 ] || die "teachers: $line"
grep -q "DISTILL: .*per-user rows trained" "$T/cloudd.log" || die "v2 was not distilled with trainable per-user rows"
dcctl model show 4 | grep -q "distill_stale_used.*8" || die "v4 metrics"

log "automatic run (distill.min-patches=8)"
# shellcheck disable=SC2086
start_deviced devs2 -o deviced.shards="$SHARDS" $DEVOPTS
wait_for "[ \$(patches_on 4) = 8 ]" 600 0.1 || die "patches on v4: $(patches_on 4)"
wait_model 5
grep -q "DISTILL: automatic run: 8 users with a patch on v4" "$T/cloudd.log" || die "automatic run"
distill_accepted 5 4
grep -q "DISTILL: model v5 from v4: 8 fresh" "$T/cloudd.log" || die "v5"
wait_for "[ \$(grep -c 'DOWNLOAD: device=.* model v5 installed' '$T/devs2.log') -ge 8 ]" 600 0.1 || die "devices did not download v5"
kill -TERM "$DPID"; wait "$DPID" 2>/dev/null || true
kill -TERM "$CPID"; wait "$CPID" || die "cloudd exit"
grep -q "EXIT: clean shutdown" "$T/cloudd.log" || die "no clean exit"
echo "distill OK"
