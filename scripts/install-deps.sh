#!/bin/sh
# Install the Debian packages dccl needs to build and test. Idempotent: when
# everything is present it does nothing (no apt-get update, no network).
#
#   scripts/install-deps.sh               the native build and tests
#   scripts/install-deps.sh --cross arm64 also the cross toolchain, qemu-user
#                                         and the :arm64 libraries deviced
#                                         links (make cross; opt-in)
#   ... --cross arm64 --check             exit 0 if those are all present,
#                                         1 if not; installs nothing
set -eu

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

# Packages in $@ that are not installed.
missing_of() {
	for p in "$@"; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		case "$st" in
		*"ok installed"*) ;;
		*) printf ' %s' "$p" ;;
		esac
	done
}

# --cross ARCH: multiarch libraries plus the cross compiler. A library whose
# :ARCH package cannot be installed beside the host's (Debian rebuilt
# nanomsg for amd64 only, so the versions differ and apt would remove the
# host's) is unpacked with dpkg-deb into $DCCL_CROSS_ROOT instead, which the
# Makefile's cross target searches first.
cross() {
	arch=$1
	case "$arch" in
	arm64) triplet=aarch64-linux-gnu ;;
	*) echo "install-deps: --cross: unknown architecture $arch (known: arm64)" >&2
	   exit 2 ;;
	esac
	root=${DCCL_CROSS_ROOT:-/opt/dccl-cross}/$arch
	libs="libuv1-dev libprotobuf-c-dev libsqlite3-dev libinih-dev
	    libopenblas-dev libsodium-dev libssl-dev libc6-dev"
	pkgs="gcc-$triplet libc6-dev-$arch-cross binutils-$triplet qemu-user"
	for l in $libs; do pkgs="$pkgs $l:$arch"; done
	unpack="libnanomsg5 libnanomsg-dev"

	# shellcheck disable=SC2086
	miss=$(missing_of $pkgs)
	need_unpack=0
	[ -e "$root/usr/lib/$triplet/libnanomsg.so" ] || need_unpack=1
	[ -z "$miss" ] && [ "$need_unpack" = 0 ] && return 0
	[ "$check_only" = 1 ] && return 1
	if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
		echo "install-deps: adding architecture $arch"
		$SUDO dpkg --add-architecture "$arch"
	fi
	$SUDO apt-get update -qq
	if [ -n "$miss" ]; then
		echo "install-deps: installing:$miss"
		# shellcheck disable=SC2086
		$SUDO apt-get install -y -qq --no-install-recommends $miss
	fi
	if [ "$need_unpack" = 1 ]; then
		tmp=$(mktemp -d)
		chmod 755 "$tmp"
		for p in $unpack; do
			(cd "$tmp" && apt-get download -q "$p:$arch" 2>/dev/null) ||
			    { echo "install-deps: cannot download $p:$arch" >&2
			      rm -rf "$tmp"; exit 1; }
		done
		$SUDO mkdir -p "$root"
		for d in "$tmp"/*.deb; do
			$SUDO dpkg-deb -x "$d" "$root"
		done
		rm -rf "$tmp"
		echo "install-deps: unpacked $unpack ($arch) into $root"
	fi
}

PKGS="build-essential pkg-config libuv1-dev libprotobuf-c-dev protobuf-c-compiler
libnanomsg-dev nanomsg-utils libsqlite3-dev sqlite3 libpq-dev postgresql
libcmocka-dev libinih-dev
libopenblas-dev libsodium-dev libssl-dev libsystemd-dev libmicrohttpd-dev mandoc python3-yaml bc
clang libclang-rt-14-dev"

if [ "${1:-}" = "--cross" ]; then
	check_only=0
	[ "${3:-}" = "--check" ] && check_only=1
	[ $# = 2 ] || [ $check_only = 1 ] ||
	    { echo "usage: install-deps.sh [--cross ARCH [--check]]" >&2; exit 2; }
	cross "$2"
	exit $?
fi

# shellcheck disable=SC2086
missing=$(missing_of $PKGS)
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
