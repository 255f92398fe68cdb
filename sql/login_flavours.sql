-- login_flavours: both Instagram API login flavours against the strict mock.
-- ig_connect_account checks the token and ids with one /me call (Facebook
-- Login: the Page and its linked account, stored Page id; Instagram Login:
-- user_id, never the app-scoped id); sync lists a Page token's
-- conversations under the Page; a sync whose calls fail is raised with a
-- SQLSTATE or, with ig_identity.sync_failure = warning, recorded on the
-- account and in the run history; a refresh whose calls all fail shows its
-- error on the account.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_flavours;
RESET client_min_messages;
CREATE DATABASE igid_flavours;
\c igid_flavours
CREATE EXTENSION ig_identity;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
SET ig_identity.verify_on_connect = on;

-- SQLSTATE, message, detail and hint of a statement's error, or 'ok'.
CREATE FUNCTION pg_temp.outcome(p_sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_state text; v_msg text; v_detail text; v_hint text;
BEGIN
    EXECUTE p_sql;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                            v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
    RETURN v_state || E'\n' || v_msg || E'\n' || v_detail || E'\n' || v_hint;
END $$;

-- 1. Facebook Login: the Page token of account A, its IG account id. One
-- /me call; the Page id is stored.
SELECT status FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001',
                                      'mock-token-A-0123456789', 'graph.facebook.com');
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" count me
SELECT ig_account_id, api_host, page_id FROM ig_identity.accounts;

-- ids that do not go with the token fail at connect time and store nothing
SELECT pg_temp.outcome($$SELECT ig_connect_account('loc_x', '17841400000000002', '17841400000000002',
                                                   'mock-token-A-0123456789', 'graph.facebook.com')$$);
SELECT pg_temp.outcome($$SELECT ig_connect_account('loc_x', '1000000000000001', '1000000000000001',
                                                   'mock-token-A-0123456789', 'graph.facebook.com')$$);
SELECT pg_temp.outcome($$SELECT ig_connect_account('loc_x', '17841400000000001', '17841400000000001',
                                                   'mock-token-A-wrong', 'graph.facebook.com')$$);
SELECT count(*) AS accounts, count(*) FILTER (WHERE location_id = 'loc_x') AS stored_loc_x
  FROM ig_identity.accounts;

-- 2. Instagram Login: account B's token, its user_id; no Page id. The
-- app-scoped id /me answers as `id` is refused as the account id.
SELECT status FROM ig_connect_account('loc_456', '17841400000000002', '17841400000000002',
                                      'mock-token-B-0123456789', 'graph.instagram.com');
SELECT ig_account_id, api_host, page_id FROM ig_identity.accounts ORDER BY 1;
SELECT pg_temp.outcome($$SELECT ig_connect_account('loc_x', '2641400000000002', '2641400000000002',
                                                   'mock-token-B-0123456789', 'graph.instagram.com')$$);
SELECT pg_temp.outcome($$SELECT ig_connect_account('loc_x', '17841400000000001', '17841400000000001',
                                                   'mock-token-B-0123456789', 'graph.instagram.com')$$);
-- an app with "Require App Secret" refuses the check with a clear error
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" data '{"accounts":[{"ig_account_id":"17841400000000003","token":"mock-token-C-0123456789","api_host":"graph.instagram.com","app_secret":"mock-app-secret-C"}]}'
SELECT pg_temp.outcome($$SELECT ig_connect_account('loc_x', '17841400000000003', '17841400000000003',
                                                   'mock-token-C-0123456789', 'graph.instagram.com')$$);
-- off: no call, nothing checked (offline setups)
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
SET ig_identity.verify_on_connect = off;
SELECT status FROM ig_connect_account('loc_789', '17841400000000009', '17841400000000009',
                                      'tok-offline-9', 'graph.facebook.com');
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" count total
SELECT ig_disconnect_account('17841400000000009');
SET ig_identity.verify_on_connect = on;

-- 3. Sync per flavour: A's conversations are listed under the Page (`me`),
-- never under the IG account id, which the mock refuses as Meta does
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
SELECT * FROM ig_sync_inbox('loc_123');
SELECT conversations > 0 AS listed, api_calls > 0 AS called FROM ig_sync_inbox('loc_456');
SELECT location_id, count(*) > 0 AS has_conversations FROM instagram_conversations GROUP BY 1 ORDER BY 1;

-- 4. A sync whose calls fail is not a success. By default it raises, with
-- the SQLSTATE of what the account needs: a bad request (38000) ...
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"endpoint":"conversations"},"fault":{"type":"graph_error","code":100,"message":"Unsupported get request"}}'
SELECT pg_temp.outcome($$SELECT * FROM ig_sync_inbox('loc_123')$$);
-- ... no answer at all (08006) ...
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"endpoint":"conversations"},"fault":{"type":"http_status","status":503}}'
SELECT pg_temp.outcome($$SELECT * FROM ig_sync_inbox('loc_123')$$);
-- ... a dead token (28000), and the account needs reconnecting
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"endpoint":"conversations"},"fault":{"type":"graph_error","code":190,"subcode":460}}'
SELECT pg_temp.outcome($$SELECT * FROM ig_sync_inbox('loc_123')$$);
-- with sync_failure = warning the failure is recorded and shown in
-- ig_identity_status and the run history, and the counts are returned
SET ig_identity.sync_failure = warning;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"endpoint":"conversations"},"fault":{"type":"http_status","status":503}}'
SELECT * FROM ig_sync_inbox('loc_123');
SELECT ig_account_id, status, last_error_code, last_error LIKE 'sync: gave up after 3 attempts%' AS last_error
  FROM ig_identity_status ORDER BY 1;
SELECT source, location_id, refreshed > 0 AS synced_any, failed, total, errors->0->>'ig_account_id' AS account,
       errors->0->>'status' AS status
  FROM ig_identity.refresh_runs WHERE source = 'sync';
RESET ig_identity.sync_failure;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset

-- 5. A refresh whose calls all fail shows the error on the account
INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid)
VALUES ('conv_flav_1', '17841400000000002', 'loc_456', '1000000000000102')
ON CONFLICT DO NOTHING;
UPDATE ig_identity.accounts SET last_error = NULL, last_error_code = NULL;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"account":"17841400000000002"},"fault":{"type":"http_status","status":502}}'
SELECT refreshed, failed > 0 AS failed FROM ig_refresh_identities('loc_456');
SELECT ig_account_id, status, last_error_code, last_error IS NOT NULL AS has_error
  FROM ig_identity_status WHERE ig_account_id = '17841400000000002';
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
-- and a refresh that succeeds leaves no account error behind
UPDATE ig_identity.accounts SET last_error = NULL, last_error_code = NULL;
SELECT refreshed > 0 AS refreshed FROM ig_refresh_identities('loc_456');
SELECT last_error IS NULL AS no_error FROM ig_identity.accounts WHERE ig_account_id = '17841400000000002';

\c contrib_regression
DROP DATABASE igid_flavours;
