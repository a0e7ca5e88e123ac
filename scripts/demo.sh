#!/bin/sh
# make demo: the main job end to end on an embedded default. Uses
# ../shared/data/ml-latest-small when it is there (the first DEMO_DEVICES
# users become devices), else a generated data set.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=""
for d in "$ROOT/../shared/data/ml-latest-small" "$ROOT/data/ml-latest-small"; do
	[ -f "$d/ratings.csv" ] && { DATA=$d; break; }
done
[ -n "$DATA" ] || echo "(no MovieLens data found: using a generated data set)"
exec sh "$ROOT/scripts/simulate.sh" "${DEMO_DEVICES:-20}" $DATA
