#!/bin/sh
# runtime-deps.sh BINARY...: prints the Debian packages that provide the
# shared libraries the binaries load, one per line. The Dockerfile's build
# stage runs it on the installed programs, and the runtime stage installs
# exactly that list, so the image never needs a hand-kept package list that
# drifts from the Makefile's PKGS. Debian is usrmerged: dpkg may know a
# library by its /lib or its /usr/lib path, so both are tried.
set -eu
[ $# -gt 0 ] || { echo "usage: runtime-deps.sh BINARY..." >&2; exit 2; }
for b in "$@"; do
	ldd "$b" || { echo "runtime-deps: ldd $b failed" >&2; exit 1; }
done | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u |
while read -r lib; do
	real=$(readlink -f "$lib")
	for p in "$real" "${real#/usr}" "$lib" "${lib#/usr}"; do
		if pkg=$(dpkg -S "$p" 2>/dev/null); then
			echo "${pkg%%:*}"
			continue 2
		fi
	done
	echo "runtime-deps: no package owns $lib" >&2
	exit 1
done | sort -u
