# docker-compose topology, without a Docker engine: docker-compose.yml is
# parsed with a YAML parser and its structure asserted (services, a
# scalable deviced, volumes, networks, healthcheck, every command and file
# it names exists and the Dockerfile puts it on PATH); then the same entry
# scripts run natively, in the order compose would run them: data ->
# cloudd (its healthcheck command must pass) -> two deviced replicas, whose
# shards must be disjoint and cover every user, and whose devices all
# upload a patch. The capability-class configs must pass deviced -n.
. "$(dirname "$0")/../../scripts/itest-lib.sh"
C=$ROOT/conf/compose

# A python3 with PyYAML: Debian's python3-yaml is for /usr/bin/python3.
PY=""
for p in /usr/bin/python3 python3; do
	if "$p" -c 'import yaml' 2>/dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ] && [ "$(id -u)" = 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-yaml \
	    >"$T/apt.log" 2>&1 || true
	/usr/bin/python3 -c 'import yaml' 2>/dev/null && PY=/usr/bin/python3
fi
[ -n "$PY" ] || skip "no python3 with PyYAML (package python3-yaml)"

log "compose file structure"
"$PY" - "$C/docker-compose.yml" "$ROOT" >"$T/compose.out" 2>&1 <<'PY' ||
import os, re, sys, yaml
path, root = sys.argv[1], sys.argv[2]
here = os.path.dirname(path)
doc = yaml.safe_load(open(path))
errs = []
def err(m): errs.append(m)
svcs = doc.get("services") or {}
for s in ("data", "cloudd", "deviced"):
	if s not in svcs: err("no service " + s)
vols = set((doc.get("volumes") or {}).keys())
nets = set((doc.get("networks") or {}).keys())
df_text = {}
for name, s in svcs.items():
	b = s.get("build")
	if b:
		ctx = os.path.normpath(os.path.join(here, b["context"]))
		dfp = os.path.join(ctx, b.get("dockerfile", "Dockerfile"))
		if not os.path.isfile(dfp): err(f"{name}: no Dockerfile {dfp}")
		else: df_text[name] = (ctx, open(dfp).read())
	elif not s.get("image"):
		err(f"{name}: neither build nor image")
	for v in s.get("volumes") or []:
		src = (v.split(":")[0] if isinstance(v, str) else v.get("source"))
		if src and not src.startswith((".", "/", "$")) and src not in vols:
			err(f"{name}: volume {src} not declared")
	n = s.get("networks") or []
	for k in (n if isinstance(n, list) else n.keys()):
		if k not in nets: err(f"{name}: network {k} not declared")
	for d, cond in (s.get("depends_on") or {}).items():
		if d not in svcs: err(f"{name}: depends on unknown {d}")
	if not s.get("command"): err(f"{name}: no command")
images = {s.get("image") for s in svcs.values()}
if len(images) != 1: err(f"services use several images: {images}")
d = svcs.get("deviced", {})
if "container_name" in d: err("deviced has container_name: --scale would fail")
if "hostname" in d: err("deviced has a fixed hostname")
for p in d.get("ports") or []:
	if ":" in str(p): err(f"deviced publishes a fixed host port {p}: --scale would fail")
r = (d.get("deploy") or {}).get("replicas")
if r is None or not (isinstance(r, int) or re.fullmatch(r"\$\{DCCL_REPLICAS:-\d+\}", str(r))):
	err(f"deviced replicas {r!r}: want an int or ${{DCCL_REPLICAS:-N}}")
env = d.get("environment") or {}
if str(env.get("DCCL_REPLICAS")) != str(r):
	err("deviced: DCCL_REPLICAS and deploy.replicas disagree")
if (d.get("depends_on") or {}).get("cloudd", {}).get("condition") != "service_healthy":
	err("deviced must wait for a healthy cloudd")
c = svcs.get("cloudd", {})
hc = (c.get("healthcheck") or {}).get("test") or []
if not (isinstance(hc, list) and hc[:2] == ["CMD", "dcctl"] and "status" in hc):
	err(f"cloudd healthcheck {hc!r}: want [CMD, dcctl, ..., status]")
if (c.get("depends_on") or {}).get("data", {}).get("condition") != "service_completed_successfully":
	err("cloudd must wait for the data service")
if str(svcs.get("data", {}).get("restart")) != "no":
	err("data is one-shot: restart must be \"no\"")
# Volume sharing: data writes dccl-data, cloudd and deviced read it.
def mounts(s): return {str(v).split(":")[0]: str(v) for v in svcs[s].get("volumes") or []}
if "dccl-data" not in mounts("data") or str(mounts("data")["dccl-data"]).endswith(":ro"):
	err("data must write the dccl-data volume")
for s in ("cloudd", "deviced"):
	if "dccl-data" not in mounts(s): err(f"{s} does not mount dccl-data")
# The enrollment token: cloudd writes it to dccl-enroll, devices read it.
if "dccl-enroll" not in mounts("cloudd") or mounts("cloudd")["dccl-enroll"].endswith(":ro"):
	err("cloudd must write the dccl-enroll volume")
if not mounts("deviced").get("dccl-enroll", "").endswith("/var/lib/dccl/enroll:ro"):
	err("deviced must mount dccl-enroll read-only at /var/lib/dccl/enroll")
# Dockerfile: Debian 12, the project's deps script, make, non-root user,
# every COPY source present, every command on PATH in the image.
for name, (ctx, text) in list(df_text.items())[:1]:
	froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
	if not froms or any(not f.startswith("debian:12") for f in froms):
		err(f"Dockerfile bases {froms}: want debian:12")
	if "scripts/install-deps.sh" not in text: err("Dockerfile does not use scripts/install-deps.sh")
	if not re.search(r"^RUN .*\bmake\b", text, re.M): err("Dockerfile does not run make")
	users = re.findall(r"^USER\s+(\S+)", text, re.M)
	if not users or users[-1] in ("root", "0"): err(f"image runs as {users[-1:] or 'root'}")
	on_path = set()
	for m in re.finditer(r"^COPY\s+((?:[^\n\\]|\\\n)+)", text, re.M):
		args = m.group(1).replace("\\\n", " ").split()
		if args[0].startswith("--from"): continue
		for src in args[:-1]:
			if not os.path.exists(os.path.join(ctx, src)): err(f"COPY {src}: not in the repository")
			if args[-1].rstrip("/") == "/usr/local/bin": on_path.add(os.path.basename(src))
	# Installed by make install (the Makefile's install rules), hence in /usr/local/{bin,sbin}.
	mk = open(os.path.join(root, "Makefile")).read()
	for v in ("INST_SBIN", "INST_BIN"):
		on_path |= set(re.search(rf"^{v}\s*:=\s*(.*)$", mk, re.M).group(1).split())
	for sname, s in svcs.items():
		cmd = s["command"]
		prog = (cmd if isinstance(cmd, list) else cmd.split())[0]
		if prog not in on_path: err(f"{sname}: command {prog} is not on the image's PATH")
		print("PROG", prog)
	print("HEALTH", " ".join(hc[1:]))
for e in errs: print("ERROR", e)
sys.exit(1 if errs else 0)
PY
    { cat "$T/compose.out"; die "docker-compose.yml"; }
cat "$T/compose.out"
for prog in $(sed -n 's/^PROG //p' "$T/compose.out"); do
	[ -x "$C/$prog" ] || [ -x "$BIN/$prog" ] || die "$prog: no such script or binary"
done
for f in "$C"/*.sh; do sh -n "$f" || die "syntax error in $f"; done

log "capability-class configs"
for c in low mid high; do
	"$BIN/deviced" -f "$ROOT/conf/deviced-$c.conf" -n | grep -q "configuration OK" ||
	    die "deviced-$c.conf"
done

log "runtime-deps.sh finds the packages of the binaries' libraries"
sh "$C/runtime-deps.sh" "$BIN/cloudd" "$BIN/deviced" "$BIN/dcctl" \
    "$BIN/dccl-data" >"$T/pkgs" || die "runtime-deps.sh"
for p in libc6 libuv1 libnanomsg5 libsqlite3-0; do
	grep -qx "$p" "$T/pkgs" || die "runtime-deps.sh missed $p: $(cat "$T/pkgs")"
done

# The entry scripts, natively: binaries from $BIN, configs from conf/.
PATH=$BIN:$C:$PATH
export PATH DCCL_SPLIT="$T/data/split" DCCL_CONFDIR="$ROOT/conf"
log "data-entry.sh"
DCCL_USERS=5 sh "$C/data-entry.sh" >"$T/data.log" 2>&1 || die "data-entry.sh"
[ -f "$T/data/split/pool.csv" ] || die "no pool.csv"
DCCL_USERS=5 sh "$C/data-entry.sh" >>"$T/data.log" 2>&1 || die "data-entry.sh rerun"
grep -q "exists; keeping it" "$T/data.log" || die "data-entry.sh is not idempotent"
users=$(ls "$T/data/split/devices" | sed -n 's/^\([0-9]*\)\.local\.csv$/\1/p' | sort -n)
nu=$(echo "$users" | wc -l)

log "device-entry.sh shards"
shard_of() {	# STATE-dir -> sorted users in its shard
	ls "$1/shard" | sed -n 's/^\([0-9]*\)\.local\.csv$/\1/p' | sort -n
}
for k in 0 1 2; do
	DCCL_REPLICAS=3 DCCL_SHARD=$k DCCL_STATE=$T/s3.$k \
	    sh "$C/device-entry.sh" -n >"$T/s3.$k.log" 2>&1 ||
	    { cat "$T/s3.$k.log"; die "device-entry.sh shard $k of 3"; }
	grep -q "configuration OK" "$T/s3.$k.log" || die "shard $k: deviced -n"
	shard_of "$T/s3.$k"
done | sort -n >"$T/union"
[ "$(cat "$T/union")" = "$users" ] || die "shards of 3 are not a partition of the users"
# The replica index from the compose container name (reverse DNS).
for case in "dccl-deviced-3.dccl_dccl:2" "dccl_deviced_2.dccl_default:1" \
    "x-y-deviced-1:0"; do
	DCCL_REPLICAS=3 DCCL_RDNS_NAME=${case%:*} DCCL_STATE=$T/rd \
	    sh "$C/device-entry.sh" -n >"$T/rd.log" 2>&1 || die "rdns ${case%:*}"
	grep -q "shard ${case#*:} of 3" "$T/rd.log" || die "rdns ${case%:*}: $(cat "$T/rd.log")"
done
rc=0; DCCL_REPLICAS=2 DCCL_RDNS_NAME=0123abcd DCCL_STATE=$T/rd \
    sh "$C/device-entry.sh" -n >"$T/rd.log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "set DCCL_SHARD" "$T/rd.log" || die "unknown replica must fail"
rc=0; DCCL_REPLICAS=2 DCCL_RDNS_NAME=dccl-deviced-3.n DCCL_STATE=$T/rd \
    sh "$C/device-entry.sh" -n >"$T/rd.log" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "out of range" "$T/rd.log" || die "replica beyond DCCL_REPLICAS must fail"

log "cloud-entry.sh + healthcheck + 2 replicas"
# No token in the environment: the devices get cloudd's token file the way
# the compose volumes pass it (DCCL_TOKEN_FILE stands for the volume path).
unset DCCL_AUTH_TOKEN
mkdir -p "$T/enroll"
DCCL_TOKEN_FILE=$T/enroll/enroll.token
export DCCL_TOKEN_FILE
endpoints
DCCL_ADMIN=$ADM
export DCCL_ADMIN
: >"$T/cloudd.log"
DCCL_STATE=$T/cloud DCCL_CLOUDD_CONF=$ROOT/conf/cloudd.conf \
    sh "$C/cloud-entry.sh" -o cloudd.listen="$EP" -o cloudd.pub-listen="$PUB" \
    -o train.epochs=3 >"$T/cloudd.log" 2>&1 &
CPID=$!
PIDS="$PIDS $CPID"
wait_for "grep -q 'READY: cloudd' '$T/cloudd.log'" 100 0.1 || die "cloudd not ready"
[ -e "$T/cloud/.pool-imported" ] || die "pool not imported"
[ -s "$DCCL_TOKEN_FILE" ] || die "cloudd wrote no token to the dccl-enroll volume"
grep -q "IMPORT: .* rows" "$T/cloudd.log" || die "no import line"
# The compose healthcheck, verbatim (dcctl finds the socket via DCCL_ADMIN).
health=$(sed -n 's/^HEALTH //p' "$T/compose.out")
$health >/dev/null || die "healthcheck '$health' fails against a running cloudd"
wait_model 1
for k in 0 1; do
	DCCL_REPLICAS=2 DCCL_SHARD=$k DCCL_STATE=$T/r$k DCCL_CLOUD=$EP \
	    DCCL_CLOUD_PUB=$PUB sh "$C/device-entry.sh" -o deviced.run-once=yes \
	    -o net.request-timeout-ms=2000 >"$T/r$k.log" 2>&1 &
	eval "R$k=\$!"
	PIDS="$PIDS $!"
done
wait "$R0" || die "replica 0 exit $?"
wait "$R1" || die "replica 1 exit $?"
n=$(sql "SELECT count(DISTINCT device_id) FROM patches")
[ "$n" = "$nu" ] || die "expected $nu devices with patches, got $n"
[ "$(sql "SELECT count(*) FROM patches WHERE device_id NOT LIKE 'dev-%'")" = 0 ] ||
    die "device ids not dev-<user>"
# A restart does not import the pool again.
kill -TERM "$CPID"
wait "$CPID" || die "cloudd exit $?"
DCCL_STATE=$T/cloud DCCL_CLOUDD_CONF=$ROOT/conf/cloudd.conf \
    DCCL_ENTRY_DRYRUN=1 sh "$C/cloud-entry.sh" >"$T/dry.out" 2>&1
grep -q -- "--import" "$T/dry.out" && die "cloud-entry.sh would import twice"
echo "compose topology OK ($nu users over 2 replicas)"
