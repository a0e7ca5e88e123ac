#!/bin/sh
# cloud-entry.sh [cloudd options...]: the "cloudd" service. Imports the
# shared pool into the database once (a marker in the state volume records
# it), then runs cloudd in the foreground as PID 1's only child (exec), so
# docker's SIGTERM reaches it and it shuts down cleanly.
#   DCCL_CLOUDD_CONF  config file (default /etc/dccl/cloudd.conf)
#   DCCL_SPLIT        split data set (default /data/split)
#   DCCL_TOKEN_FILE   the enrollment token cloudd creates on first start
#                     (default /var/lib/dccl/enroll/enroll.token, on the
#                     dccl-enroll volume the devices mount read-only)
# Endpoints: devices on the compose network reach tcp://cloudd:7400 (REP)
# and tcp://cloudd:7401 (PUB); the admin socket is $DCCL_ADMIN, which the
# image sets to ipc:///run/dccl/admin.ipc, so "dcctl status" (and the
# healthcheck) needs no -s.
set -eu
STATE=${DCCL_STATE:-/var/lib/dccl/cloudd}
SPLIT=${DCCL_SPLIT:-/data/split}
set -- -f "${DCCL_CLOUDD_CONF:-/etc/dccl/cloudd.conf}" \
    -o cloudd.data-dir="$STATE" \
    -o cloudd.listen=tcp://0.0.0.0:7400 \
    -o cloudd.pub-listen=tcp://0.0.0.0:7401 \
    -o cloudd.admin-listen="${DCCL_ADMIN:-ipc:///run/dccl/admin.ipc}" \
    -o auth.token-file="${DCCL_TOKEN_FILE:-/var/lib/dccl/enroll/enroll.token}" \
    "$@"
if [ ! -e "$STATE/.pool-imported" ]; then
	[ -f "$SPLIT/pool.csv" ] || { echo "cloud: no $SPLIT/pool.csv" >&2; exit 1; }
	${DCCL_ENTRY_DRYRUN:+echo} cloudd "$@" --import "$SPLIT/pool.csv"
	${DCCL_ENTRY_DRYRUN:+echo} touch "$STATE/.pool-imported"
fi
exec ${DCCL_ENTRY_DRYRUN:+echo} cloudd "$@"
