# settings.awk: the setting each device's cross-validation chose, per
# method, from the runs' *.extra files (deviced/learn_eval.c writes
# "method,lr,X", "method,steps,Y", "method,adopted,A", "method,bias_only,B"
# per device; each file starts with a line "#device"). Prints a Markdown table: devices, the share that kept the
# cloud model, the share that adopted the bias alone (fallback), and the
# share per chosen (learning rate, steps). Used by eval.sh:
#   for f in DIR/*.extra; do echo '#device'; cat "$f"; done |
#   awk -F, -v title=... -f scripts/settings.awk
function flush(   m, key) {
	for (m in ad) {
		if (!(m in lr))
			continue;	# no setting: cloud, Forward-OFA
		n[m]++
		if (!ad[m]) {
			kept[m]++
			continue
		}
		if (bo[m])
			bias[m]++
		key = m SUBSEP lr[m] SUBSEP st[m]
		cnt[key]++
	}
	split("", ad); split("", lr); split("", st); split("", bo)
}
$0 == "#device" { flush(); next }
$2 == "adopted" { ad[$1] = $3 }
$2 == "lr" { lr[$1] = $3; if (!($1 in order)) order[$1] = ++no }
$2 == "steps" { st[$1] = $3 }
$2 == "bias_only" { bo[$1] = $3 }
END {
	flush()
	print "**Chosen settings, " title "** (per device, by cross-validation on its local data; rows `<m>-fed`: the setting the cloud chose by federated selection, `<m>-def`: the default; lr x steps, share of devices)"
	print ""
	print "| method | devices | kept the cloud model | bias alone (fallback) | settings adopted |"
	print "|---|---|---|---|---|"
	for (i = 1; i <= no; i++)
		for (m in order)
			if (order[m] == i) {
				# this method's settings, by lr then steps
				nk = 0
				for (k in cnt) {
					split(k, p, SUBSEP)
					if (p[1] != m)
						continue
					j = ++nk
					while (j > 1 && (kl[j - 1] + 0 > p[2] + 0 ||
					    (kl[j - 1] + 0 == p[2] + 0 &&
					    ks[j - 1] + 0 > p[3] + 0))) {
						kl[j] = kl[j - 1]; ks[j] = ks[j - 1]
						kc[j] = kc[j - 1]; j--
					}
					kl[j] = p[2]; ks[j] = p[3]; kc[j] = cnt[k]
				}
				s = ""
				for (j = 1; j <= nk; j++)
					s = s (s == "" ? "" : ", ") \
					    sprintf("%.3g x %d: %.1f %%", kl[j], ks[j],
					    100 * kc[j] / n[m])
				printf "| %s | %d | %.1f %% | %.1f %% | %s |\n", m, n[m], 100 * kept[m] / n[m], 100 * bias[m] / n[m], s == "" ? "—" : s
			}
	print ""
}
