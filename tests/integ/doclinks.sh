# Every relative link in the repository's Markdown resolves to a file inside
# the repository, and no document points outside it (../shared and the like).
. "$(dirname "$0")/../../scripts/itest-lib.sh"
cd "$ROOT"
python3 - <<'PY' || die "broken or outside links (above)"
import os, re, subprocess, sys
root = os.getcwd()
bad = 0
files = subprocess.run(["git", "ls-files", "*.md"], capture_output=True, text=True).stdout.split()
for f in files:
    text = open(f, encoding="utf-8").read()
    for m in re.finditer(r"\]\(([^)\s]+)\)", text):
        target = m.group(1)
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = os.path.normpath(os.path.join(os.path.dirname(f), target.split("#")[0]))
        inside = not os.path.relpath(os.path.abspath(path), root).startswith("..")
        if not inside or not os.path.exists(path):
            print(f"{f}: link {target} -> {path}: {'outside the repository' if not inside else 'missing'}")
            bad += 1
# Nothing cites the developers' notes beside the checkout: the methods are
# described inside the repository (shared/ml/README.md).
for f in subprocess.run(["git", "grep", "-l", "-e", "papers\\.md", "-e", "shared/docs/"], capture_output=True, text=True).stdout.split():
    if f != "tests/integ/doclinks.sh":
        print(f"{f}: cites a file outside the repository")
        bad += 1
print(f"{len(files)} documents, {bad} bad links")
sys.exit(1 if bad else 0)
PY
echo "doclinks OK"
