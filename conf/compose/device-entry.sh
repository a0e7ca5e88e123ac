#!/bin/sh
# device-entry.sh [deviced options...]: one "deviced" replica. The service
# scales ("docker compose up --scale deviced=N", or DCCL_REPLICAS=N, which
# also sets deploy.replicas); each replica hosts its own shard K of N of the
# users in $DCCL_SPLIT/devices: those at positions K, K+N, K+2N, ... of the
# sorted user list. Shards are disjoint and cover every user, and a user's
# device id (dev-<user>) does not depend on the shard, so a rescale moves
# devices between replicas without renaming them.
#
# K, the replica's 0-based index, comes from, in order:
#   1. DCCL_SHARD, if set (run the replicas as separate services, or by hand);
#   2. the replica number compose puts in the container name
#      (<project>-deviced-<n>, or <project>_deviced_<n> for compose v1),
#      found by a reverse DNS lookup of the container's address: Docker's
#      embedded DNS answers it with <container-name>.<network>;
#   3. N = 1 needs no index.
# Otherwise the script exits 1 and says so: guessing could make two
# replicas host the same devices.
#
# N is DCCL_REPLICAS (default 1); it must equal the replica count.
#   DCCL_CLASS      capability class: low, mid or high (default mid); picks
#                   /etc/dccl/deviced-$DCCL_CLASS.conf
#   DCCL_CLOUD, DCCL_CLOUD_PUB   cloud endpoints (tcp://cloudd:7400, :7401)
#   DCCL_TOKEN_FILE the cloud's enrollment token (default
#                   /var/lib/dccl/enroll/enroll.token: cloudd's file on the
#                   dccl-enroll volume, mounted read-only)
#   DCCL_ENTRY_DRYRUN=1          print the deviced command instead of running it
set -eu
SPLIT=${DCCL_SPLIT:-/data/split}
STATE=${DCCL_STATE:-/var/lib/dccl/deviced}
CONFDIR=${DCCL_CONFDIR:-/etc/dccl}
SERVICE=${DCCL_SERVICE:-deviced}
N=${DCCL_REPLICAS:-1}
CLASS=${DCCL_CLASS:-mid}
die() { echo "device-entry: $*" >&2; exit 1; }

case $N in ''|*[!0-9]*|0) die "DCCL_REPLICAS must be a positive integer, not '$N'" ;; esac
case $CLASS in low|mid|high) ;; *) die "DCCL_CLASS must be low, mid or high" ;; esac

# Prints the reverse-DNS name of this container, or nothing.
rdns_name() {
	if [ -n "${DCCL_RDNS_NAME:-}" ]; then	# tests
		echo "$DCCL_RDNS_NAME"
		return
	fi
	ip=$(getent hosts "$(uname -n)" | awk '{ print $1; exit }') || return 0
	[ -n "$ip" ] || return 0
	# -s dns: /etc/hosts would answer with the container id instead.
	getent -s dns hosts "$ip" | awk '{ print $2; exit }' || true
}

if [ -n "${DCCL_SHARD:-}" ]; then
	K=$DCCL_SHARD
	how="DCCL_SHARD"
else
	name=$(rdns_name)
	# project-deviced-3.project_net -> 3 (first label only).
	n=$(echo "${name%%.*}" | sed -n "s/.*[-_]${SERVICE}[-_]\([0-9][0-9]*\)\$/\1/p")
	if [ -n "$n" ]; then
		K=$((n - 1))
		how="replica ${name%%.*}"
	elif [ "$N" = 1 ]; then
		K=0
		how="single replica"
	else
		die "cannot tell which of the $N replicas this is (reverse DNS" \
		    "gave '${name:-nothing}'): set DCCL_SHARD=0..$((N - 1))"
	fi
fi
case $K in ''|*[!0-9]*) die "shard index '$K' is not a number" ;; esac
[ "$K" -lt "$N" ] || die "shard $K out of range: DCCL_REPLICAS=$N is smaller" \
    "than the replica count; set it to the --scale value"

[ -d "$SPLIT/devices" ] || die "no $SPLIT/devices (has the data service run?)"
# This replica's users, as symlinks in a private shard directory that
# deviced.shards points at (the simulate.sh layout).
shard=$STATE/shard
${DCCL_ENTRY_DRYRUN:+:} mkdir -p "$STATE"
users=$(ls "$SPLIT/devices" | sed -n 's/^\([0-9][0-9]*\)\.local\.csv$/\1/p' |
    sort -n | awk -v k="$K" -v n="$N" '(NR - 1) % n == k')
[ -n "$users" ] || die "shard $K of $N is empty"
if [ -z "${DCCL_ENTRY_DRYRUN:-}" ]; then
	rm -rf "$shard"
	mkdir -p "$shard"
	for u in $users; do
		ln -s "$SPLIT/devices/$u.local.csv" "$shard/"
		[ -f "$SPLIT/devices/$u.test.csv" ] &&
		    ln -s "$SPLIT/devices/$u.test.csv" "$shard/"
	done
fi
echo "device-entry: shard $K of $N ($how), class $CLASS:" \
    "$(echo "$users" | wc -l) users, $(echo "$users" | head -n 1)" \
    "to $(echo "$users" | tail -n 1)" >&2
exec ${DCCL_ENTRY_DRYRUN:+echo} deviced -f "$CONFDIR/deviced-$CLASS.conf" \
    -o deviced.cloud="${DCCL_CLOUD:-tcp://cloudd:7400}" \
    -o deviced.cloud-pub="${DCCL_CLOUD_PUB:-tcp://cloudd:7401}" \
    -o deviced.shards="$shard" -o deviced.data-dir="$STATE/devices" \
    -o deviced.device-id="${DCCL_DEVICE_PREFIX:-dev}" \
    -o auth.token-file="${DCCL_TOKEN_FILE:-/var/lib/dccl/enroll/enroll.token}" "$@"
