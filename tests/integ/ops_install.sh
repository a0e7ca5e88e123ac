# make install: PREFIX/DESTDIR layout, configs that check out with the
# installed binaries, configs kept on reinstall, and man pages that are
# lint-clean (mandoc -Tlint, warnings and worse), render with man(1), and
# document every option: dccl.conf(5) is generated from --example-config
# and must be up to date.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
if ! command -v mandoc >/dev/null 2>&1; then
	# scripts/install-deps.sh lists it; install it here too if a machine
	# predates that (allowed: package installs by name).
	[ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq mandoc >"$T/apt.log" 2>&1 || true
	command -v mandoc >/dev/null 2>&1 || skip "mandoc not installable"
fi

MKF=""
inst() {	# DESTDIR [make variables...]: installs the binaries under test
	d=$1; shift
	# shellcheck disable=SC2086
	make -C "$ROOT" --no-print-directory $MKF -o all install BIN="$BIN" \
	    DESTDIR="$d" "$@" >>"$T/install.log" 2>&1 || die "make install $*"
}

log "PREFIX=/usr"
R=$T/root
inst "$R" PREFIX=/usr
for f in usr/sbin/cloudd usr/sbin/deviced usr/bin/dcctl usr/bin/dccl-data \
    usr/bin/dccl-probe; do
	[ -x "$R/$f" ] || die "$f missing or not executable"
done
for f in usr/share/man/man8/cloudd.8 usr/share/man/man8/deviced.8 \
    usr/share/man/man1/dcctl.1 usr/share/man/man5/dccl.conf.5 \
    lib/systemd/system/dccl-cloudd.service \
    lib/systemd/system/dccl-deviced@.service usr/lib/sysusers.d/dccl.conf \
    etc/dccl/cloudd.conf etc/dccl/deviced/example.conf \
    etc/dccl/deviced-low.conf etc/dccl/deviced-mid.conf \
    etc/dccl/deviced-high.conf; do
	[ -f "$R/$f" ] || die "$f missing"
done
[ -n "$(find "$R" -type f -perm /022)" ] && die "group/world-writable files installed"
# Nothing outside the expected top-level directories.
for top in "$R"/*; do
	case ${top##*/} in usr|lib|etc) ;; *) die "unexpected ${top##*/}/ in DESTDIR" ;; esac
done

log "installed configs check out with the installed binaries"
"$R/usr/sbin/cloudd" -f "$R/etc/dccl/cloudd.conf" -n | grep -q "configuration OK" ||
    die "installed cloudd.conf"
for f in deviced/example.conf deviced-low.conf deviced-mid.conf deviced-high.conf; do
	"$R/usr/sbin/deviced" -f "$R/etc/dccl/$f" -n | grep -q "configuration OK" ||
	    die "installed $f"
done
"$R/usr/sbin/deviced" -f "$R/etc/dccl/deviced-low.conf" -p |
    grep -q "device.compute-class *= low *# file" || die "low class not applied"
"$R/usr/sbin/deviced" -f "$R/etc/dccl/deviced-high.conf" -p |
    grep -q "device.compute-class *= high *# file" || die "high class not applied"
# The class files hold only [device] and [learn].
for c in low mid high; do
	bad=$(grep '^\[' "$ROOT/conf/deviced-$c.conf" | grep -v '^\[device\]$\|^\[learn\]$' || true)
	[ -z "$bad" ] || die "deviced-$c.conf has other sections: $bad"
done

log "reinstall keeps edited configs"
echo "# local edit" >>"$R/etc/dccl/cloudd.conf"
inst "$R" PREFIX=/usr
grep -q "# local edit" "$R/etc/dccl/cloudd.conf" || die "reinstall overwrote cloudd.conf"
cmp -s "$ROOT/conf/cloudd.conf" "$R/etc/dccl/cloudd.conf.dist" ||
    die "reinstall did not leave cloudd.conf.dist"

log "default PREFIX=/usr/local"
L=$T/local
inst "$L"
for f in usr/local/sbin/cloudd usr/local/bin/dcctl \
    usr/local/share/man/man5/dccl.conf.5 \
    usr/local/lib/systemd/system/dccl-cloudd.service \
    usr/local/lib/sysusers.d/dccl.conf etc/dccl/cloudd.conf; do
	[ -e "$L/$f" ] || die "PREFIX=/usr/local: $f missing"
done
grep -q '^ExecStart=/usr/local/sbin/cloudd ' \
    "$L/usr/local/lib/systemd/system/dccl-cloudd.service" || die "/usr/local unit path"
grep -q '^ExecStart=/usr/sbin/deviced ' \
    "$R/lib/systemd/system/dccl-deviced@.service" || die "/usr unit path"

log "uninstall"
# shellcheck disable=SC2086
make -C "$ROOT" --no-print-directory $MKF uninstall DESTDIR="$L" \
    >>"$T/install.log" 2>&1 || die "make uninstall"
[ -n "$(find "$L" -type f ! -path '*/etc/dccl/*')" ] && die "uninstall left files"

log "man pages"
for p in usr/share/man/man8/cloudd.8 usr/share/man/man8/deviced.8 \
    usr/share/man/man1/dcctl.1 usr/share/man/man5/dccl.conf.5; do
	# -Wwarning: warnings, errors and unsupported input fail; style hints
	# (such as cross-references to pages not installed here) do not.
	mandoc -Tlint -Wwarning "$R/$p" >"$T/lint.out" 2>&1 ||
	    { cat "$T/lint.out"; die "mandoc -Tlint: $p"; }
	MANWIDTH=80 mandoc -Tutf8 "$R/$p" >"$T/page.txt" 2>"$T/err.txt" ||
	    die "mandoc render $p"
	[ -s "$T/page.txt" ] || die "$p renders empty"
	if command -v man >/dev/null 2>&1; then
		MANWIDTH=80 man --warnings -l "$R/$p" >"$T/man.txt" 2>"$T/man.err" ||
		    { cat "$T/man.err"; die "man -l $p"; }
		[ -s "$T/man.err" ] && { cat "$T/man.err"; die "man -l $p: warnings"; }
		grep -q "SEE ALSO" "$T/man.txt" || die "man -l $p: no SEE ALSO"
	fi
done

log "dccl.conf(5) covers every option and is up to date"
sh "$ROOT/conf/man/gen-conf-man.sh" "$BIN" >"$T/dccl.conf.5" || die "gen-conf-man.sh"
diff -u "$ROOT/conf/man/dccl.conf.5" "$T/dccl.conf.5" >"$T/man.diff" || {
	head -40 "$T/man.diff"
	die "conf/man/dccl.conf.5 is stale: run 'make man'"
}
for prog in cloudd deviced; do
	"$BIN/$prog" --example-config | awk '
	    /^\[/ { sec = substr($0, 2, length($0) - 2); next }
	    /^[a-z]/ && / = / { sub(/ = .*/, ""); print sec "." $0 }' >"$T/$prog.opts"
	[ -s "$T/$prog.opts" ] || die "$prog --example-config printed no option"
	while read -r o; do
		grep -q "^\.It Ic $o\$" "$R/usr/share/man/man5/dccl.conf.5" ||
		    die "dccl.conf(5) does not document $o"
	done <"$T/$prog.opts"
done
echo "make install and man pages OK ($(cat "$T"/*.opts | wc -l) options documented)"
