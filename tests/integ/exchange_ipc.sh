# The exchange scenario over ipc:// endpoints in the temp dir.
TRANSPORT=ipc
export TRANSPORT
. "$(cd "$(dirname "$0")" && pwd)/exchange.sh"
