-- fetch_refresh: ig_refresh_identities and ig_resolve_profile against the
-- local Graph API mock (scripts/test.sh starts it and points
-- ig_identity.graph_api_url at it): exact summary figures, self never
-- fetched or stored, each error class and the state it leaves, a failed
-- fetch never replacing a good value, cancel during a slow refresh, and
-- EXECUTE only when granted.  The mock's built-in users: 101 jane.doe,
-- 102 john.smith (name null), 103 stories.in.store, 104 no consent (230),
-- 105 unavailable (9010).
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_fetch;
DROP ROLE IF EXISTS igid_fetch_app;
RESET client_min_messages;
CREATE DATABASE igid_fetch;
\c igid_fetch
CREATE EXTENSION ig_identity;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset

-- An inbox: conversations (one UNKNOWN_ and one NULL participant, ignored),
-- messages (one older than 30 days, ignored; one from self, ignored).
INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid, updated_time) VALUES
    ('c101', '17841400000000001', 'loc_123', '1000000000000101', now()),
    ('c102', '17841400000000001', 'loc_123', '1000000000000102', now()),
    ('c103', '17841400000000001', 'loc_123', '1000000000000103', now()),
    ('cunk', '17841400000000001', 'loc_123', 'UNKNOWN_1', now()),
    ('cnul', '17841400000000001', 'loc_123', NULL, now());
INSERT INTO instagram_messages (id, conversation_id, ig_account_id, from_id, to_id, message, created_at) VALUES
    ('m1', 'c101', '17841400000000001', '1000000000000101', '17841400000000001', 'hi', now()),
    ('m2', 'c101', '17841400000000001', '17841400000000001', '1000000000000101', 'hello', now()),
    ('m3', NULL, '17841400000000001', '1000000000000104', '17841400000000001', 'me too', now()),
    ('m4', NULL, '17841400000000001', '1000000000000105', '17841400000000001', 'bye', now()),
    ('m5', NULL, '17841400000000001', '1000000000000199', '17841400000000001', 'old', now() - interval '40 days');
-- 104 was known before: its failure (230) must not erase that
INSERT INTO instagram_user_cache (ig_account_id, ig_user_id, username, name)
VALUES ('17841400000000001', '1000000000000104', 'known.before', 'Known Before');

-- No account yet: clear errors
SELECT * FROM ig_refresh_identities('loc_123');
SELECT * FROM ig_refresh_identities(NULL);
SELECT * FROM ig_resolve_profile('17841400000000001', '1000000000000101');

SELECT * FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001',
                                 'mock-token-A-0123456789', 'graph.facebook.com');

-- 1. The normal path: 5 participants, 3 refreshed, 230 and 9010 reported
-- (errors sorted: fetches finish in any order)
SELECT refreshed, failed, total,
       jsonb_pretty((SELECT jsonb_agg(e ORDER BY e->>'ig_user_id') FROM jsonb_array_elements(errors) e))
  FROM ig_refresh_identities('loc_123');
SELECT ig_user_id, username, name, profile_pic LIKE 'https://%' AS has_pic,
       profile_pic = profile_pic_url AS url_mirrors, fetch_status, last_error_code,
       last_fetched_at IS NOT NULL AS fetched
  FROM instagram_user_cache ORDER BY ig_user_id;
-- each participant asked once; never self, never the old or UNKNOWN_ ones
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" users
SELECT source, location_id, refreshed, failed, total FROM ig_identity.refresh_runs;
SELECT status, last_success_at IS NOT NULL AS succeeded FROM ig_identity.accounts;

-- 2. A failure never replaces good values: malformed JSON, {}, a mismatched
-- id, absent name and null picture, 5xx; values stay, status says error
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"user":"1000000000000101"},"fault":{"type":"malformed_json"}}'
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"user":"1000000000000102"},"fault":{"type":"empty_object"}}'
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"user":"1000000000000103"},"fault":{"type":"mismatched_id"}}'
SELECT refreshed, failed, total,
       (SELECT jsonb_agg(e->>'ig_user_id' ORDER BY e->>'ig_user_id') FROM jsonb_array_elements(errors) e) AS failed_ids
  FROM ig_refresh_identities('loc_123');
SELECT ig_user_id, username, name, profile_pic IS NOT NULL AS has_pic, fetch_status
  FROM instagram_user_cache ORDER BY ig_user_id;
-- transient failures were retried (3 attempts each), the others not
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" users
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"user":"1000000000000101"},"fault":{"type":"absent_name"}}'
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"user":"1000000000000101"},"fault":{"type":"null_profile_pic"}}'
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"user":"1000000000000103"},"count":2,"fault":{"type":"http_status","status":503}}'
SELECT refreshed, failed, total FROM ig_refresh_identities('loc_123');
SELECT ig_user_id, username, name, profile_pic IS NOT NULL AS has_pic, fetch_status
  FROM instagram_user_cache ORDER BY ig_user_id;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" count user:1000000000000103

-- 3. An expired token stops the account: no further call, status
-- reauth_required, identities untouched; resolve fails with a clear error
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"account":"17841400000000001"},"fault":{"type":"graph_error","code":190,"subcode":463,"message":"Error validating access token: Session has expired"}}'
SET ig_identity.max_concurrency = 1;
SELECT refreshed, failed, total FROM ig_refresh_identities('loc_123');
RESET ig_identity.max_concurrency;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" count
SELECT status, last_error_code, last_error FROM ig_identity.accounts;
SELECT count(*) FILTER (WHERE username IS NOT NULL) AS still_named FROM instagram_user_cache;
-- the stopped account is not called again
SELECT refreshed, failed, total, errors->0->>'message' AS why FROM ig_refresh_identities('loc_123');
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" count
SELECT * FROM ig_resolve_profile('17841400000000001', '1000000000000101');
-- a new token puts it back in service
SELECT status FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001',
                                      'mock-token-A-0123456789', 'graph.facebook.com');

-- 3b. The same 190 under DateStyle 'SQL, DMY' and TimeZone 'Asia/Kolkata'
-- (whose 'IST' reads back as Israel time): the token's rotation time is
-- compared as a timestamptz, never through text, so the stop is recorded
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"account":"17841400000000001"},"fault":{"type":"graph_error","code":190,"subcode":463,"message":"Error validating access token: Session has expired"}}'
SET DateStyle = 'SQL, DMY';
SET TimeZone = 'Asia/Kolkata';
SELECT status FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001',
                                      'mock-token-A-0123456789', 'graph.facebook.com');
SET ig_identity.max_concurrency = 1;
SELECT refreshed, failed, total FROM ig_refresh_identities('loc_123');
RESET ig_identity.max_concurrency;
SELECT status, last_error_code FROM ig_identity.accounts;
RESET DateStyle;
RESET TimeZone;
SELECT status FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001',
                                      'mock-token-A-0123456789', 'graph.facebook.com');

-- 4. Throttling (613) pauses the account until a time in the future
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"account":"17841400000000001"},"fault":{"type":"graph_error","code":613,"message":"Calls to this api have exceeded the rate limit."}}'
SET ig_identity.max_concurrency = 1;
SELECT refreshed, failed, total FROM ig_refresh_identities('loc_123');
RESET ig_identity.max_concurrency;
SELECT status, paused_until > now() + interval '50 seconds' AS paused_a_while, last_error_code
  FROM ig_identity.accounts;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" count
-- (terse: the DETAIL names the resume time, which differs on every run)
\set VERBOSITY terse
SELECT * FROM ig_resolve_profile('17841400000000001', '1000000000000101');
\set VERBOSITY default
SELECT status FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001',
                                      'mock-token-A-0123456789', 'graph.facebook.com');

-- 5. ig_resolve_profile: one profile now; self refused
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
SELECT ig_user_id, username, name, fetch_status, display_name FROM ig_resolve_profile('17841400000000001', '1000000000000103');
SELECT ig_user_id, username, fetch_status, last_error_code, display_name FROM ig_resolve_profile('17841400000000001', '1000000000000104');
SELECT * FROM ig_resolve_profile('17841400000000001', '17841400000000001');
SELECT * FROM ig_resolve_profile('17841400000000009', '1000000000000101');
SELECT count(*) AS self_rows FROM instagram_user_cache WHERE ig_user_id = ig_account_id;

-- 6. Cancel: a refresh waiting on a slow Graph API stops at statement_timeout
-- within about a second and writes nothing
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" config '{"latency_ms":20000}'
CREATE TEMP TABLE before_cancel AS SELECT * FROM instagram_user_cache;
CREATE TEMP TABLE t0 AS SELECT clock_timestamp() AS t;
SET statement_timeout = '1s';
SELECT * FROM ig_refresh_identities('loc_123');
RESET statement_timeout;
SELECT clock_timestamp() - t < interval '3 seconds' AS stopped_promptly FROM t0;
SELECT count(*) AS rows_changed FROM (
    (SELECT * FROM instagram_user_cache EXCEPT SELECT * FROM before_cancel)
    UNION ALL (SELECT * FROM before_cancel EXCEPT SELECT * FROM instagram_user_cache)) d;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset

-- 7. A PostgreSQL error in the middle of a batch, while the fetcher and its
-- curl handles are alive (an app's CHECK constraint that a fetched username
-- violates): the error reaches the caller intact, the transaction rolls
-- back, and the session goes on working
UPDATE instagram_user_cache SET username = 'stories.old' WHERE ig_user_id = '1000000000000103';
ALTER TABLE instagram_user_cache ADD CONSTRAINT app_no_stories CHECK (username <> 'stories.in.store');
-- (terse: the constraint's DETAIL echoes the row, whose picture URL changes)
\set VERBOSITY terse
SELECT * FROM ig_refresh_identities('loc_123');
\set VERBOSITY default
SELECT ig_user_id, username FROM instagram_user_cache ORDER BY ig_user_id;
ALTER TABLE instagram_user_cache DROP CONSTRAINT app_no_stories;
SELECT refreshed, failed, total FROM ig_refresh_identities('loc_123');
SELECT username FROM instagram_user_cache WHERE ig_user_id = '1000000000000103';

-- 8. Only granted roles may call the fetch functions
CREATE ROLE igid_fetch_app LOGIN;
GRANT SELECT, INSERT, UPDATE ON instagram_user_cache, instagram_conversations, instagram_messages TO igid_fetch_app;
SET ROLE igid_fetch_app;
SELECT refreshed FROM ig_refresh_identities('loc_123');
SELECT username FROM ig_resolve_profile('17841400000000001', '1000000000000101');
RESET ROLE;
GRANT EXECUTE ON FUNCTION ig_refresh_identities(text), ig_resolve_profile(text, text) TO igid_fetch_app;
SET ROLE igid_fetch_app;
SELECT refreshed, failed, total FROM ig_refresh_identities('loc_123');
SELECT username FROM ig_resolve_profile('17841400000000001', '1000000000000101');
SELECT count(*) FROM ig_identity.account_tokens;
RESET ROLE;

\c contrib_regression
DROP DATABASE igid_fetch;
DROP ROLE igid_fetch_app;
