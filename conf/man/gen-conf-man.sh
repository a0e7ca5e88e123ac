#!/bin/sh
# gen-conf-man.sh [BIN]: writes dccl.conf(5) to stdout from the prose in
# conf/man/dccl.conf.5.in and the option tables, as printed by
# "BIN/cloudd --example-config" and "BIN/deviced --example-config". The
# tables are the single source of every option, type, range and default, so
# the page cannot drift from the code: regenerate with "make man" after
# changing an option (tests/integ/ops_install.sh fails on a stale page).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$here/../../bin}

# example-config -> mdoc: one .Ss per INI section, one .It per option.
# Input per option: "# help", "# type[, range]; default D[; reloadable]",
# "key = value"; sections are "[name]". Everything before the first section
# is the file's title comment and is skipped.
options() {	# program
	"$BIN/$1" --example-config | awk '
	function esc(s) {	# text for a macro or text line
		gsub(/\\/, "\\e", s)
		return s
	}
	function arg(s) {	# one quoted macro argument, never a delimiter
		s = esc(s)
		gsub(/"/, "\\(dq", s)
		gsub(/,/, ",\\:", s)	# long lists may break after a comma
		return "\"\\&" s "\""
	}
	# A section may appear twice (the table is ordered by topic, not
	# by section): output is collected per section, printed at the end
	# in order of first appearance.
	function out(line) { body[sec] = body[sec] line "\n" }
	/^\[/ {
		sec = substr($0, 2, length($0) - 2)
		if (!(sec in body)) { order[++ns] = sec; body[sec] = "" }
		n = 0
		next
	}
	sec == "" { next }
	/^# / {
		c[n++] = substr($0, 3)
		next
	}
	/ = / {
		key = $0; sub(/ = .*/, "", key)
		help = c[0]; typ = c[1]; n = 0
		rel = (typ ~ /; reloadable$/); sub(/; reloadable$/, "", typ)
		def = typ; sub(/.*; default /, "", def)
		sub(/; default .*/, "", typ)
		out(".It Ic " sec "." key)
		# The help text is a sentence fragment; capitalize it.
		h = esc(help)
		out(toupper(substr(h, 1, 1)) substr(h, 2) (h ~ /\.$/ ? "" : "."))
		if (typ ~ /^one of:/) {
			sub(/^one of: */, "", typ)
			m = split(typ, v, " ")
			out("One of")
			s = ".Cm"
			for (i = 1; i <= m; i++)
				s = s (i > 1 ? " Cm " : " ") v[i] \
				    (i < m - 1 ? " ," : (i == m - 1 ? " No or" : ""))
			out(s " .")
		} else if (typ ~ /^integer, / || typ ~ /^number, /) {
			r = typ; sub(/^[a-z]*, /, "", r); t = typ; sub(/,.*/, "", t)
			out("An " t " in")
			out(".Ql " arg(r) " .")
		} else if (typ == "yes or no") {
			out(".Cm yes")
			out("or")
			out(".Cm no .")
		} else
			out("A string.")
		if (def == "(empty)")
			out("Default: empty.")
		else {
			out("Default:")
			out(".Ql " arg(def) " .")
		}
		if (rel)
			out("Reloadable: SIGHUP applies a change.")
		next
	}
	END {
		for (i = 1; i <= ns; i++) {
			print ".Ss \"[" order[i] "] section\""
			print ".Bl -tag -width Ds"
			printf "%s", body[order[i]]
			print ".El"
		}
	}'
}

cl=$(options cloudd)
dv=$(options deviced)
while IFS= read -r line; do
	case $line in
	@CLOUDD_OPTIONS@) printf '%s\n' "$cl" ;;
	@DEVICED_OPTIONS@) printf '%s\n' "$dv" ;;
	*) printf '%s\n' "$line" ;;
	esac
done <"$here/dccl.conf.5.in"
