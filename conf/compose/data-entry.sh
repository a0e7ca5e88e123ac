#!/bin/sh
# data-entry.sh: the one-shot "data" service. Writes the split data set to
# $DCCL_SPLIT (default /data/split) on the shared volume, once: a later run
# finds it and exits 0, so "docker compose up" is idempotent. The split is
# written to a temporary directory and renamed, so cloudd and the devices
# never see half of it.
#   DCCL_DATASET  a MovieLens directory inside the container (mount it with
#                 an override file): "dccl-data split" it; otherwise
#   DCCL_USERS    synthesize this many users with "dccl-data synth"
#                 (default 64), DCCL_SEED (default 1).
set -eu
SPLIT=${DCCL_SPLIT:-/data/split}
if [ -f "$SPLIT/pool.csv" ] && [ -d "$SPLIT/devices" ]; then
	echo "data: $SPLIT exists; keeping it"
	exit 0
fi
tmp=$SPLIT.tmp.$$
rm -rf "$tmp"
mkdir -p "$(dirname "$SPLIT")"
if [ -n "${DCCL_DATASET:-}" ]; then
	echo "data: splitting $DCCL_DATASET"
	dccl-data split "$DCCL_DATASET" "$tmp"
else
	echo "data: synthesizing ${DCCL_USERS:-64} users"
	dccl-data synth "$tmp" --users "${DCCL_USERS:-64}" --seed "${DCCL_SEED:-1}"
fi
rm -rf "$SPLIT"
mv "$tmp" "$SPLIT"
dccl-data stats "$SPLIT" || true
