-- api_version: ig_identity.graph_api_version (checked, in the path of every
-- call, never a host), and the per-account app secret: appsecret_proof on
-- every call, the six-argument ig_connect_account, a rotation through the
-- five-argument one keeping the secret, bad secrets refused with nothing
-- stored; the status view's token_expires_at.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_apiver;
RESET client_min_messages;
CREATE DATABASE igid_apiver;
\c igid_apiver
CREATE EXTENSION ig_identity;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
SET ig_identity.verify_on_connect = on;

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

-- 1. The version: the newest one Meta documents by default; malformed
-- values and versions Meta no longer serves are refused with a hint.
SHOW ig_identity.graph_api_version;
SELECT pg_temp.outcome($$SET ig_identity.graph_api_version = 'v20.0'$$);
SELECT pg_temp.outcome($$SET ig_identity.graph_api_version = '26.0'$$);
SELECT pg_temp.outcome($$SET ig_identity.graph_api_version = 'v26.0/../../evil'$$);
SELECT pg_temp.outcome($$SET ig_identity.graph_api_version = ''$$);
SHOW ig_identity.graph_api_version;
-- not a setting a less privileged role may change
CREATE ROLE igid_apiver_app;
SET ROLE igid_apiver_app;
SELECT pg_temp.outcome($$SET ig_identity.graph_api_version = 'v25.0'$$);
RESET ROLE;
DROP ROLE igid_apiver_app;

-- Every call goes to the configured version's path, on the configured base.
SET ig_identity.graph_api_version = 'v25.0';
SELECT status FROM ig_connect_account('loc_v', '17841400000000001', '17841400000000001',
                                      'mock-token-A-0123456789', 'graph.facebook.com');
SELECT * FROM ig_sync_inbox('loc_v');
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" paths | sort | uniq -c | sed 's/^ *//'
RESET ig_identity.graph_api_version;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
SELECT refreshed >= 0 AS ran FROM ig_refresh_identities('loc_v');
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" paths | cut -d/ -f1-2 | sort -u

-- 2. An app with "Require App Secret": the five-argument form sends no
-- proof and is refused; a wrong secret is refused; nothing is stored.
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" data '{"accounts":[{"ig_account_id":"17841400000000004","token":"mock-token-D-0123456789","api_host":"graph.instagram.com","app_secret":"mock-app-secret-D"}]}'
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" conversations 17841400000000004 2
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
SELECT pg_temp.outcome($$SELECT ig_connect_account('loc_d', '17841400000000004', '17841400000000004',
                                                   'mock-token-D-0123456789', 'graph.instagram.com')$$);
SELECT pg_temp.outcome($$SELECT ig_connect_account('loc_d', '17841400000000004', '17841400000000004',
                                                   'mock-token-D-0123456789', 'graph.instagram.com',
                                                   'mock-app-secret-wrong')$$);
-- malformed secrets, checked before any call; no message repeats one
SELECT pg_temp.outcome($$SELECT ig_connect_account('loc_d', '17841400000000004', '17841400000000004',
                                                   'mock-token-D-0123456789', 'graph.instagram.com', '')$$);
SELECT pg_temp.outcome($$SELECT ig_connect_account('loc_d', '17841400000000004', '17841400000000004',
                                                   'mock-token-D-0123456789', 'graph.instagram.com',
                                                   E'mock-app-secret-D\n')$$);
SELECT count(*) AS stored FROM ig_identity.accounts WHERE ig_account_id = '17841400000000004';

-- 3. The right secret: connected; sync and refresh carry the proof on every call.
SELECT status FROM ig_connect_account('loc_d', '17841400000000004', '17841400000000004',
                                      'mock-token-D-0123456789', 'graph.instagram.com', 'mock-app-secret-D');
SELECT conversations, api_calls > 0 AS called FROM ig_sync_inbox('loc_d');
SELECT refreshed, failed FROM ig_refresh_identities('loc_d');
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" paths | awk '{print $1, $3, $4}' | sort | uniq -c | sed 's/^ *//'
SELECT ig_account_id, status, last_error FROM ig_identity_status WHERE location_id = 'loc_d';

-- 4. Rotating the token with the five-argument form keeps the secret.
SELECT status FROM ig_connect_account('loc_d', '17841400000000004', '17841400000000004',
                                      'mock-token-D-0123456789', 'graph.instagram.com');
SELECT app_secret IS NOT NULL AS has_secret FROM ig_identity.account_tokens
 WHERE ig_account_id = '17841400000000004';
-- NULL forgets it: the app still requires a proof, so the check fails and
-- the stored secret stays
SELECT pg_temp.outcome($$SELECT ig_connect_account('loc_d', '17841400000000004', '17841400000000004',
                                                   'mock-token-D-0123456789', 'graph.instagram.com', NULL)$$);
SELECT app_secret IS NOT NULL AS has_secret FROM ig_identity.account_tokens
 WHERE ig_account_id = '17841400000000004';

-- 5. The secret is as private as the token: no role but the owner reads it;
-- the status view shows the token's expiry (unknown until a refresh), never
-- the token or the secret.
SELECT has_column_privilege('pg_monitor', 'ig_identity.account_tokens', 'app_secret', 'SELECT') AS monitor_reads,
       has_function_privilege('public', 'ig_connect_account(text,text,text,text,text,text)', 'EXECUTE')
           AS public_connects,
       has_function_privilege('public', 'ig_identity.account_secrets(text,text)', 'EXECUTE') AS public_reads;
SELECT ig_account_id, token_expires_at FROM ig_identity_status ORDER BY 1;
SELECT count(*) AS leaked FROM ig_identity_status s
 WHERE s::text LIKE '%mock-app-secret-D%' OR s::text LIKE '%mock-token%';

\c contrib_regression
DROP DATABASE igid_apiver;
