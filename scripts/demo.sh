#!/usr/bin/env bash
# scripts/demo.sh — ig_identity end to end on a throwaway cluster.
#
# Installs what is missing, builds, starts a private PostgreSQL 15 cluster
# with the library preloaded and the local Graph API mock, loads an inbox
# whose identity cache has the bug (rows with no ig_account_id, duplicates,
# participants shown as user_******), installs the extension (which repairs
# the tables), then refreshes identities from the mock and shows the inbox
# before and after.  Everything is removed at the end (KEEP=1 keeps it).
set -u
source "$(dirname "$0")/lib.sh"

ensure_deps
build_extension

DIR=$(make_workdir)
cleanup() { stop_cluster; stop_mock; [ -n "${KEEP:-}" ] || rm -rf "$DIR"; }
trap cleanup EXIT
start_mock "$DIR"
start_cluster "$DIR" "$(free_port)" inbox
psql_as postgres -q -c "CREATE DATABASE inbox" || die "createdb failed"
sql() { psql_as inbox -v ON_ERROR_STOP=1 -P pager=off "$@"; }

echo
log "1. The app's inbox before ig_identity: the identity cache is corrupted"
chown "$PG_USER" "$DIR"
cp "$IGID_ROOT/test/fixtures/legacy_seed.sql" "$DIR/seed.sql" && chown "$PG_USER" "$DIR/seed.sql"
sql -q -f "$DIR/seed.sql" >/dev/null || die "could not load the seed"
sql -c "SELECT count(*) AS rows,
               count(*) FILTER (WHERE ig_account_id IS NULL) AS rows_with_null_account,
               count(DISTINCT (ig_account_id, ig_user_id)) AS distinct_pairs,
               count(*) FILTER (WHERE username IS NULL) AS rows_without_username
          FROM instagram_user_cache"
# What the app's inbox query shows: it finds a participant's cache row by
# (account, participant); rows that lost their account never match.
INBOX_QUERY="SELECT c.participant_igsid AS participant,
       COALESCE((SELECT u.username FROM instagram_user_cache u
                  WHERE u.ig_account_id = c.ig_account_id AND u.ig_user_id = c.participant_igsid
                  ORDER BY u.last_fetched_at DESC NULLS LAST LIMIT 1), 'user_******') AS inbox_shows
  FROM instagram_conversations c WHERE c.location_id = 'loc_123' ORDER BY 1"
log "   The inbox of location loc_123, as the app shows it:"
sql -c "$INBOX_QUERY"

log "2. CREATE EXTENSION ig_identity repairs the tables in place"
sql -c "CREATE EXTENSION ig_identity"
sql -c "SELECT * FROM ig_identity_check()"
sql -c "SELECT reason, count(*) AS rows_set_aside FROM ig_identity.quarantine GROUP BY reason ORDER BY reason"
log "   The same inbox query after the repair:"
sql -c "$INBOX_QUERY"
IDENTITIES="SELECT c.participant_igsid AS participant, ig_display_name(c.ig_account_id, c.participant_igsid) AS shown_as,
       u.name, u.profile_pic IS NOT NULL AS has_picture, u.fetch_status, u.last_error_code AS error,
       to_char(u.last_fetched_at, 'HH24:MI:SS') AS fetched_at
  FROM instagram_conversations c
  LEFT JOIN instagram_user_cache u ON u.ig_account_id = c.ig_account_id AND u.ig_user_id = c.participant_igsid
 WHERE c.location_id = 'loc_123' ORDER BY 1"

if sql -tAc "SELECT to_regproc('ig_refresh_identities') IS NOT NULL" | grep -q t; then
    log "3. Connect the business account (the token goes to ig_identity's private table)"
    sql -c "SELECT * FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001',
                                             'mock-token-A-0123456789', 'graph.facebook.com')"
    log "   Identities before the refresh (names, pictures and fetch state unknown):"
    sql -c "$IDENTITIES"
    log "4. SELECT * FROM ig_refresh_identities('loc_123')"
    sql -c "SELECT * FROM ig_refresh_identities('loc_123')"
    log "   After the refresh: names and fresh pictures; 104 has not messaged with consent (230) and"
    log "   keeps what was known, 105 is gone (9010); neither lost a value"
    sql -c "$IDENTITIES"
fi
if sql -tAc "SELECT to_regproc('ig_identity_worker_state') IS NOT NULL" | grep -q t; then
    log "5. A new customer writes: ig_ingest_webhook stores the message and queues them;"
    log "   the background worker wakes at COMMIT and resolves them, no other call needed"
    IGID_MOCK_PORT=$MOCK_PORT "$PYTHON" "$IGID_ROOT/test/mock_graph/mockctl.py" \
        user 1000000000000777 new.customer "New Customer"
    for _ in $(seq 1 40); do   # the worker connects once the inbox database exists
        sql -tAc "SELECT pid IS NOT NULL FROM ig_identity_worker_state()" | grep -q t && break
        sleep 0.5
    done
    sql <<'SQL'
BEGIN;
SELECT * FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1752834911539,
  "messaging":[{"sender":{"id":"1000000000000777"},"recipient":{"id":"17841400000000001"},
  "timestamp":1752834910447,"message":{"mid":"mid.demo.777","text":"hi, do you ship to Lyon?"}}]}]}');
SELECT ig_display_name('17841400000000001', '1000000000000777') AS shown_before_commit;
COMMIT;
SQL
    start=$(date +%s.%N)
    for _ in $(seq 1 100); do
        sql -tAc "SELECT username IS NOT NULL FROM instagram_user_cache
                   WHERE ig_account_id = '17841400000000001' AND ig_user_id = '1000000000000777'" | grep -q t && break
        sleep 0.1
    done
    log "   $(printf '%.2f' "$(echo "$(date +%s.%N) - $start" | bc)") s after COMMIT:"
    sql -c "SELECT ig_display_name(ig_account_id, ig_user_id) AS shown_now, name, fetch_status
              FROM instagram_user_cache WHERE ig_user_id = '1000000000000777'"
    sql -c "SELECT ig_account_id, status, queue_depth, worker_cycles, worker_identities_refreshed
              FROM ig_identity_status"
fi
log "done (cluster and mock stopped)"
