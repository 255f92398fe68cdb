#!/usr/bin/env bash
# scripts/valgrind.sh [TEST...] — runs pg_regress tests (default: the fetch
# tests, which raise errors mid-batch, cancel a refresh and exercise curl and
# jansson) against a server under valgrind memcheck, then reports the
# memcheck errors whose stack passes through ig_identity's code.
#
# Debian's postgres is not built with USE_VALGRIND, so memcheck also reports
# things inside PostgreSQL itself; only reports naming our library count.
# Slow (minutes): not part of scripts/test.sh.  Last line: "N passed, N failed".
set -u
source "$(dirname "$0")/lib.sh"
TESTS=("$@")
[ ${#TESTS[@]} -eq 0 ] && TESTS=(fetch_refresh fetch_sync_webhook)
DEPS+=(valgrind)
ensure_deps
build_extension

DIR=$(make_workdir)
trap 'stop_mock; as_pg pg_ctl -D "$DIR/data" -m immediate stop >/dev/null 2>&1; [ -n "${KEEP:-}" ] || rm -rf "$DIR"' EXIT
cp -a "$IGID_ROOT"/{sql,expected,test} "$DIR"/
mkdir -p "$DIR/vg" "$DIR/out"
chown -R "$PG_USER" "$DIR"
start_mock "$DIR"
as_pg initdb -D "$DIR/data" -A trust -U postgres --no-sync >/dev/null
write_pg_conf "$DIR/pg.conf" contrib_regression
echo "ig_identity.enabled = off" >>"$DIR/pg.conf"
echo "include '$DIR/pg.conf'" >>"$DIR/data/postgresql.conf"
PORT=$(free_port)
log "starting postgres under valgrind memcheck (slow)"
runuser -u "$PG_USER" -- valgrind --quiet --trace-children=yes --error-limit=no --num-callers=40 \
    --leak-check=no --track-origins=no --log-file="$DIR/vg/vg.%p.log" \
    "$PGBIN/postgres" -D "$DIR/data" -p "$PORT" -k "$DIR" >"$DIR/server.log" 2>&1 &
for _ in $(seq 1 120); do
    as_pg pg_isready -q -h "$DIR" -p "$PORT" && break
    sleep 1
done
as_pg pg_isready -q -h "$DIR" -p "$PORT" || die "postgres under valgrind did not start"
as_pg createdb -h "$DIR" -p "$PORT" contrib_regression

log "running ${TESTS[*]}"
(cd "$DIR" && as_pg env IGID_MOCK_PORT="$MOCK_PORT" IGID_SRC="$DIR" \
    "$PGXS_DIR/src/test/regress/pg_regress" --use-existing --host="$DIR" --port="$PORT" \
    --inputdir=. --outputdir="$DIR/out" --bindir="$PGBIN" --dbname=contrib_regression "${TESTS[@]}") \
    | tee "$DIR/regress.log" | grep -E '^test |tests (passed|failed)'
as_pg pg_ctl -D "$DIR/data" -m fast -w -t 300 stop >/dev/null 2>&1

# one memcheck error record = lines from "==pid== <kind>" to a blank "==pid== "
ours=$(awk '/^==[0-9]+== [A-Z]/{rec=$0; next} /^==[0-9]+== +(at|by) /{rec=rec "\n" $0; next}
            /^==[0-9]+== *$/{ if (rec ~ /ig_identity\.so|igid::/) print rec "\n"; rec=""}' "$DIR"/vg/vg.*.log)
total=$(grep -hcE '^==[0-9]+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched)' "$DIR"/vg/vg.*.log | paste -sd+ | bc)
n_ours=$(printf '%s' "$ours" | grep -cE '^==[0-9]+== (Invalid|Conditional|Use of uninit|Syscall param|Mismatched)')
echo "memcheck: $total error records in all processes, $n_ours through ig_identity's code"
[ "$n_ours" -gt 0 ] && printf '%s\n' "$ours" | head -120
regress_failed=$(grep -qE 'All [0-9]+ tests passed' "$DIR/regress.log"; echo $?)
failed=$(( (n_ours > 0) + (regress_failed > 0) ))
echo "$((2 - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
