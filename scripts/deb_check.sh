#!/usr/bin/env bash
# scripts/deb_check.sh — the Debian package path, as a user takes it:
# builds postgresql-<major>-ig-identity with dpkg-buildpackage from a clean
# copy of the tree, checks what it holds and what it depends on, installs it
# with apt-get in place of the files `make install` put there, runs
# make installcheck (pg_regress and the isolation specs) against the
# installed files only, purges the package, checks that nothing is left
# behind, and then puts the `make install` files back.
# Run as root (scripts/test.sh, suite "deb"). Ends with "N passed, N failed".
set -u
source "$(dirname "$0")/lib.sh"

# The package installs into Debian's own PostgreSQL of that major version.
SYS_PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
PKG=postgresql-$PG_MAJOR-ig-identity
VERSION=$(dpkg-parsechangelog -l "$IGID_ROOT/debian/changelog" -S Version)
DEB=${PKG}_${VERSION}_$(dpkg --print-architecture).deb
PASSED=0
FAILED=0
check() { # check DESCRIPTION COMMAND...: one counted check
    local what=$1; shift
    if "$@" >>"$WORK/checks.log" 2>&1; then
        PASSED=$((PASSED + 1)); echo "ok - $what"
    else
        FAILED=$((FAILED + 1)); echo "not ok - $what"
    fi
}
finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}

[ "$(id -u)" -eq 0 ] || die "run as root: it installs and purges a package"
[ -x "$SYS_PG_CONFIG" ] || die "$SYS_PG_CONFIG is missing (postgresql-server-dev-$PG_MAJOR)"
PKGLIB=$("$SYS_PG_CONFIG" --pkglibdir)
EXTDIR=$("$SYS_PG_CONFIG" --sharedir)/extension
WORK=$(make_workdir ig_deb)
installed_files() { ls "$PKGLIB"/ig_identity.so "$EXTDIR"/ig_identity[.-]* 2>/dev/null | sort; }
HAD_MAKE_INSTALL=$(installed_files)
restore() {
    dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "install ok installed" &&
        apt-get purge -y -qq "$PKG" >/dev/null 2>&1
    if [ -n "$HAD_MAKE_INSTALL" ]; then
        make -C "$IGID_ROOT" -s install PG_CONFIG="$SYS_PG_CONFIG" >/dev/null 2>&1
    fi
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap restore EXIT

# 1. build from a clean copy (the tree may be a tarball, not a clone)
log "deb: dpkg-buildpackage -us -uc -b"
mkdir -p "$WORK/src"
tar -C "$IGID_ROOT" --exclude=./.git --exclude='./build*' --exclude='*.o' --exclude='*.so' \
    --exclude='*.d' --exclude='./tmp_*' --exclude=./results --exclude=./output_iso \
    --exclude=./log --exclude='./regression.*' --exclude=./ig_identity--1.1.sql \
    --exclude='./debian/.debhelper' --exclude="./debian/$PKG" --exclude='./debian/files' \
    --exclude='./debian/*.substvars' --exclude='./debian/debhelper-build-stamp' -cf - . |
    tar -C "$WORK/src" -xf -
(cd "$WORK/src" && pg_buildext updatecontrol && dpkg-buildpackage -us -uc -b) >"$WORK/build.log" 2>&1
check "dpkg-buildpackage -us -uc -b builds $DEB" test -f "$WORK/$DEB"
[ -f "$WORK/$DEB" ] || { tail -n 40 "$WORK/build.log"; finish; }

# 2. what it holds and needs
dpkg-deb -c "$WORK/$DEB" | awk '{print $6}' | grep -E '^\./usr/(lib|share)/postgresql/.*[^/]$' |
    sed 's|^\.||' | sort >"$WORK/contents"
printf '%s\n' "$PKGLIB/ig_identity.so" "$EXTDIR/ig_identity--1.0--1.1.sql" \
    "$EXTDIR/ig_identity--1.0.sql" "$EXTDIR/ig_identity--1.1.sql" "$EXTDIR/ig_identity.control" |
    sort >"$WORK/expected"
check "it ships the library, the control file and every install and upgrade script, nothing else" \
    diff -u "$WORK/expected" "$WORK/contents"
depends=$(dpkg-deb -f "$WORK/$DEB" Depends)
check "it depends on libcurl4" grep -q 'libcurl4' <<<"$depends"
check "it depends on libjansson4" grep -q 'libjansson4' <<<"$depends"
check "it depends on postgresql-$PG_MAJOR" grep -q "postgresql-$PG_MAJOR" <<<"$depends"

# 3. install it in place of make install's files
rm -f "$PKGLIB"/ig_identity.so "$EXTDIR"/ig_identity[.-]*
check "apt-get install ./$DEB" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$WORK/$DEB"
check "dpkg lists it as installed" sh -c "dpkg-query -W -f='\${Status}' $PKG | grep -q 'install ok installed'"
check "the installed files are the package's" sh -c "dpkg -L $PKG | grep -c ig_identity | grep -qx 5"

# 4. make installcheck against the installed files only: a copy with the
# tests and the Makefile, no library, no build tree on any path
T=$WORK/tests
mkdir -p "$T"
cp -a "$IGID_ROOT"/{Makefile,ig_identity.control,sql,expected,test} "$T"/
chown -R "$PG_USER" "$WORK"
for target in installcheck-regress installcheck-isolation; do
    (cd "$T" && as_pg make -s --no-print-directory "$target" PG_CONFIG="$SYS_PG_CONFIG" \
        PYTHON="$PYTHON" IGID_SRC="$T") >"$WORK/$target.log" 2>&1
    rc=$?
    check "make $target against the package ($(grep -oE 'All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests failed' "$WORK/$target.log" | tail -n 1))" test "$rc" -eq 0
    [ "$rc" -eq 0 ] || tail -n 40 "$WORK/$target.log"
done

# 5. purge leaves nothing behind
check "apt-get purge $PKG" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$PKG"
check "dpkg no longer lists it" sh -c "! dpkg-query -W -f='\${Status}' $PKG 2>/dev/null | grep -q 'installed'"
check "no ig_identity file is left in $PKGLIB or $EXTDIR" test -z "$(installed_files)"

finish
