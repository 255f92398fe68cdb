#!/usr/bin/env bash
# scripts/release_check.sh — the files every release ships, checked:
# META.json (PGXN meta spec 1.0.0) agrees with ig_identity.control, LICENSE
# and CHANGELOG.md are there, every install and upgrade script from 1.0 to
# default_version exists with its \echo guard, released scripts are unchanged
# (test/upgrade/frozen.sha256), nothing points at notes outside the
# repository, and `make dist` builds the PGXN zip. Ends "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
PASSED=0
FAILED=0
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then PASSED=$((PASSED + 1)); echo "ok - $what"
    else FAILED=$((FAILED + 1)); echo "not ok - $what"; fi
}
DEFAULT=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" ig_identity.control)

check "META.json follows the PGXN meta spec 1.0.0 and matches default_version $DEFAULT" \
    python3 - "$DEFAULT" <<'PY'
import json, re, sys
default = sys.argv[1]
m = json.load(open("META.json"))
problems = []
for key in ("name", "abstract", "version", "maintainer", "license", "provides", "meta-spec"):
    if key not in m:
        problems.append("missing " + key)
semver = re.compile(r"^\d+\.\d+\.\d+$")
if m.get("meta-spec", {}).get("version") != "1.0.0":
    problems.append("meta-spec.version is not 1.0.0")
if m.get("version") != default + ".0" or not semver.match(m.get("version", "")):
    problems.append("version %r is not %s.0" % (m.get("version"), default))
ext = m.get("provides", {}).get("ig_identity", {})
if ext.get("version") != default + ".0" or ext.get("file") != "ig_identity--%s.sql" % default:
    problems.append("provides.ig_identity does not name version %s.0 and its script" % default)
for p in problems:
    print("META.json: " + p)
sys.exit(1 if problems else 0)
PY
check "LICENSE holds the PostgreSQL License" grep -q "Permission to use, copy, modify, and distribute" LICENSE
check "CHANGELOG.md has a section for $DEFAULT" grep -q "^## $DEFAULT\b" CHANGELOG.md
check "debian/changelog is at $DEFAULT" grep -q "^ig-identity ($DEFAULT-" debian/changelog

# every step from 1.0 to default_version, and the full newest script's source
steps_ok() {
    local v=1.0 ok=0 next
    [ -f ig_identity--1.0.sql ] || { echo "ig_identity--1.0.sql is missing"; return 1; }
    while [ "$v" != "$DEFAULT" ]; do
        next=$(ls ig_identity--"$v"--*.sql 2>/dev/null | sed -E "s/^ig_identity--$v--(.*)\.sql$/\1/" | sort -V | tail -n 1)
        [ -n "$next" ] || { echo "no upgrade script from $v"; return 1; }
        grep -q '^\\echo Use "ALTER EXTENSION ig_identity UPDATE' "ig_identity--$v--$next.sql" ||
            { echo "ig_identity--$v--$next.sql lacks the \\echo guard"; ok=1; }
        grep -q "ig_identity--$v--$next.sql" Makefile || { echo "Makefile DATA lacks ig_identity--$v--$next.sql"; ok=1; }
        v=$next
    done
    grep -q '^\\echo Use "CREATE EXTENSION ig_identity' src/sql/00_header.sql ||
        { echo "src/sql/00_header.sql lacks the \\echo guard"; ok=1; }
    return $ok
}
check "an upgrade script for every step from 1.0 to $DEFAULT, each in DATA with its \\echo guard" steps_ok
check "released install scripts are unchanged (test/upgrade/frozen.sha256)" \
    sha256sum --quiet -c test/upgrade/frozen.sha256
no_outside_refs() {
    local hits
    hits=$(grep -rIlE 'DESIGN\.md|STYLE\.md|GRAPH_API\.md|\.\./shared|/work/shared' . \
        --exclude-dir=.git --exclude-dir='build*' --exclude=ig_identity--1.0.sql \
        --exclude=ig_identity--1.1.sql --exclude=release_check.sh)
    [ -z "$hits" ] || { echo "these point at notes outside the repository: $hits"; return 1; }
}
check "nothing points at notes outside the repository" no_outside_refs
if git rev-parse --git-dir >/dev/null 2>&1; then
    dist_ok() {
        local v zip
        v=$(python3 -c 'import json; print(json.load(open("META.json"))["version"])')
        zip=ig_identity-$v.zip
        make -s dist >/dev/null 2>&1 || { echo "make dist failed"; return 1; }
        python3 - "$zip" "ig_identity-$v/" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
top = sys.argv[2]
bad = [n for n in names if not n.startswith(top)]
need = [top + f for f in ("META.json", "LICENSE", "Makefile", "ig_identity.control", "ig_identity--1.0.sql")]
missing = [n for n in need if n not in names]
print("dist: %d files under %s; outside: %s; missing: %s" % (len(names), top, bad[:3], missing))
sys.exit(1 if bad or missing else 0)
PY
        local rc=$?
        rm -f "$zip"
        return $rc
    }
    check "make dist builds the PGXN zip with one top directory" dist_ok
fi
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
