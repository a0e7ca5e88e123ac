#!/bin/sh
# Install the Debian packages dccl needs to build and test. Idempotent: when
# everything is present it does nothing (no apt-get update, no network).
set -eu

PKGS="build-essential pkg-config libuv1-dev libprotobuf-c-dev protobuf-c-compiler
libnanomsg-dev nanomsg-utils libsqlite3-dev sqlite3 libpq-dev postgresql
libcmocka-dev libinih-dev
libopenblas-dev libsodium-dev libsystemd-dev libmicrohttpd-dev mandoc python3-yaml bc
clang libclang-rt-14-dev"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
