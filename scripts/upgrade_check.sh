#!/usr/bin/env bash
# scripts/upgrade_check.sh — the quick form of the upgrade test: on a
# throwaway cluster, installs ig_identity 1.0 and updates it, installs the
# newest version fresh, and diffs the two catalogs
# (test/upgrade/catalog_snapshot.sql). Exit 0 when they are the same.
# The full test, with data, tokens and the worker, is test/t/014_upgrade.pl.
set -u
source "$(dirname "$0")/lib.sh"

FROM=${1:-1.0}
build_extension
WORK=$(make_workdir ig_upgrade)
trap 'stop_cluster; stop_mock; rm -rf "$WORK"' EXIT
start_mock "$WORK"
start_cluster "$WORK" "$(free_port)" postgres
cp "$IGID_ROOT/test/upgrade/catalog_snapshot.sql" "$WORK/" && chown "$PG_USER" "$WORK/catalog_snapshot.sql"
psql_as postgres -q -v ON_ERROR_STOP=1 -c 'CREATE DATABASE updated' -c 'CREATE DATABASE fresh' >/dev/null
psql_as updated -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION ig_identity VERSION '$FROM'" \
    -c 'ALTER EXTENSION ig_identity UPDATE' || die "update from $FROM failed"
psql_as fresh -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION ig_identity' || die "fresh install failed"
psql_as updated -v ON_ERROR_STOP=1 -f "$WORK/catalog_snapshot.sql" >"$WORK/updated.txt" || die "snapshot failed"
psql_as fresh -v ON_ERROR_STOP=1 -f "$WORK/catalog_snapshot.sql" >"$WORK/fresh.txt" || die "snapshot failed"
if diff -u "$WORK/fresh.txt" "$WORK/updated.txt"; then
    echo "upgrade from $FROM: the updated catalog equals a fresh install ($(wc -l <"$WORK/fresh.txt") lines)"
else
    echo "upgrade from $FROM: the updated catalog differs from a fresh install (- fresh, + updated)"
    exit 1
fi
