#!/usr/bin/env bash
# scripts/citus_build.sh — builds Citus from test/vendor/ and installs it into
# the PostgreSQL installation PG_CONFIG names, when citus.so is not there yet.
# The scale-out TAP test (test/t/024_citus.pl) needs it: Debian 12 has no
# Citus package for PostgreSQL 15. Nothing is downloaded beyond the Debian
# packages of the build dependencies (apt-get); the source is the tarball
# checked in under test/vendor/, checked against test/vendor/SHA256SUMS.
#
# Exit status: 0 when citus.so is installed (already, or now), 1 otherwise;
# the reason is on stderr (and in the log the caller keeps).
set -u
source "$(dirname "$0")/lib.sh"

VENDOR=$IGID_ROOT/test/vendor
CITUS_VERSION=13.2.2
TARBALL=$VENDOR/citus-$CITUS_VERSION.tar.gz
PATCH=$VENDOR/citus-$CITUS_VERSION-pg15.14.patch
CITUS_DEPS=(libzstd-dev liblz4-dev libkrb5-dev libselinux1-dev libxslt1-dev
            libpam0g-dev libssl-dev libreadline-dev)

[ -x "$PG_CONFIG" ] || command -v "$PG_CONFIG" >/dev/null || die "no pg_config at $PG_CONFIG"
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
if [ -f "$PKGLIBDIR/citus.so" ]; then
    echo "citus: already installed in $PKGLIBDIR"
    exit 0
fi

(cd "$VENDOR" && sha256sum --quiet -c SHA256SUMS) || die "test/vendor does not match SHA256SUMS"

missing=()
for p in "${CITUS_DEPS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -ne 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "Citus build dependencies missing (${missing[*]}); run as root or install them"
    log "citus: installing ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || die "apt-get install of the Citus build dependencies failed"
fi

BUILD=$(mktemp -d /tmp/igid_citus_build.XXXXXX)
trap 'rm -rf "$BUILD"' EXIT
log "citus: building $CITUS_VERSION against $("$PG_CONFIG" --version)"
tar xzf "$TARBALL" -C "$BUILD" || die "cannot unpack $TARBALL"
cd "$BUILD/citus-$CITUS_VERSION" || die "unexpected tarball layout"
patch -s -p1 <"$PATCH" || die "the compatibility patch does not apply"
{
    ./configure --without-libcurl PG_CONFIG="$PG_CONFIG" &&
    make -j2 &&
    make install
} >"$BUILD/build.log" 2>&1 || { tail -n 40 "$BUILD/build.log" >&2; die "the Citus build failed"; }
[ -f "$PKGLIBDIR/citus.so" ] || die "make install put no citus.so in $PKGLIBDIR"
echo "citus: installed $CITUS_VERSION into $PKGLIBDIR"
