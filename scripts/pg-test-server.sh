#!/bin/sh
# pg-test-server.sh: a throwaway PostgreSQL server for tests and benchmarks.
#
#   sh scripts/pg-test-server.sh start [fast|durable]   prints its directory
#   sh scripts/pg-test-server.sh stop DIR               stops it, removes DIR
#   sh scripts/pg-test-server.sh down|up DIR            an outage: stops it
#       (immediate, as a crash) keeping DIR; starts it again on the same data
#
# The server runs from Debian's postgresql package (initdb and pg_ctl under
# /usr/lib/postgresql/N/bin) in a new directory /tmp/dccl-pg.XXXXXX, listens
# only on a unix socket in that directory, and trusts local connections.
# Connect with "host=DIR user=dccl dbname=postgres". PostgreSQL refuses to
# run as root, so as root the server runs as the postgres user (or nobody).
# "fast" (the default, for tests) turns fsync off: a crash of cloudd loses
# nothing committed either way, only a crash of the machine would;
# "durable" keeps the defaults (for benchmarks). When PostgreSQL is not
# installed, start prints a SKIP: line and exits 77.
set -eu
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
run() {
	if [ "$(id -u)" = 0 ]; then
		user=postgres
		id -u postgres >/dev/null 2>&1 || user=nobody
		runuser -u "$user" -- "$@"
	else
		"$@"
	fi
}
case ${1:-} in
start)
	if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/pg_ctl" ]; then
		echo "SKIP: PostgreSQL server not installed (apt-get install postgresql)"
		exit 77
	fi
	dir=$(mktemp -d /tmp/dccl-pg.XXXXXX)
	chmod 755 "$dir"
	if [ "$(id -u)" = 0 ]; then
		user=postgres
		id -u postgres >/dev/null 2>&1 || user=nobody
		chown "$user" "$dir"
	fi
	opts="-k $dir -c listen_addresses= -c max_connections=200"
	[ "${2:-fast}" = fast ] && opts="$opts -c fsync=off -c full_page_writes=off"
	echo "$opts" >"$dir/opts"	# for "up"
	if ! run "$PGBIN/initdb" -D "$dir/data" -A trust -U dccl -E UTF8 \
	    --no-sync >"$dir/initdb.log" 2>&1; then
		echo "pg-test-server: initdb failed:" >&2
		tail -n 5 "$dir/initdb.log" >&2
		rm -rf "$dir"
		exit 1
	fi
	if ! run "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
	    -o "$opts" start >/dev/null 2>&1; then
		echo "pg-test-server: server did not start:" >&2
		tail -n 5 "$dir/server.log" >&2
		rm -rf "$dir"
		exit 1
	fi
	echo "$dir"
	;;
stop)
	dir=${2:?usage: pg-test-server.sh stop DIR}
	case $dir in /tmp/dccl-pg.*) ;; *) echo "not a test server: $dir" >&2; exit 2 ;; esac
	[ -d "$dir/data" ] && run "$PGBIN/pg_ctl" -D "$dir/data" -m immediate \
	    -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
	;;
down|up)
	dir=${2:?usage: pg-test-server.sh down|up DIR}
	case $dir in /tmp/dccl-pg.*) ;; *) echo "not a test server: $dir" >&2; exit 2 ;; esac
	if [ "$1" = down ]; then
		run "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
	else
		run "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
		    -o "$(cat "$dir/opts")" start >/dev/null
	fi
	;;
*)
	echo "usage: pg-test-server.sh start [fast|durable] | stop|down|up DIR" >&2
	exit 2
	;;
esac
