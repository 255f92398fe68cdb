-- privileges: credentials and private state are closed to ordinary roles;
-- ig_connect_account needs an explicit GRANT, and even then the tokens stay
-- unreadable; account state can be granted for monitoring without tokens;
-- the setting that decides where tokens go is superuser-only; every
-- function pins its search_path and no SECURITY DEFINER function is open
-- to PUBLIC.
\set SHOW_CONTEXT never
\set regress_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_priv;
DROP ROLE IF EXISTS regress_igid_app;
DROP ROLE IF EXISTS regress_igid_monitor;
RESET client_min_messages;
CREATE DATABASE igid_priv;
\c igid_priv
CREATE EXTENSION ig_identity;
CREATE ROLE regress_igid_app;
CREATE ROLE regress_igid_monitor;
-- The app owns its inbox; reading and writing it is its own business.
GRANT SELECT, INSERT, UPDATE ON instagram_user_cache TO regress_igid_app;
SELECT * FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001', 'tok-priv-superuser');

SET ROLE regress_igid_app;
SELECT * FROM ig_identity.account_tokens;
SELECT * FROM ig_identity.accounts;
SELECT * FROM ig_identity.quarantine;
SELECT * FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001', 'tok-priv-app');
SELECT ig_disconnect_account('17841400000000001');
SELECT ig_upsert_participant_identity('17841400000000001', NULL, '{"id": "1000000000000101", "username": "x"}');
SELECT ig_identity.upsert_identities('17841400000000001', ARRAY['1'], NULL, NULL, NULL, NULL, NULL, NULL);
SELECT * FROM ig_identity_repair();
-- Reading what the inbox shows needs only the app's own rights.
SELECT ig_display_name('17841400000000001', '1000000000000101');
-- The Graph API base URL decides where tokens are sent.
SET ig_identity.graph_api_url = 'https://graph.example.net/v21.0';
SET ig_identity.graph_api_url = '';
RESET ROLE;

-- Granting EXECUTE is enough to register and rotate...
GRANT EXECUTE ON FUNCTION ig_connect_account(text, text, text, text, text) TO regress_igid_app;
SET ROLE regress_igid_app;
SELECT * FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001', 'tok-priv-app');
SELECT * FROM ig_connect_account('loc_456', '17841400000000002', '17841400000000002', 'tok-priv-app-b', 'graph.instagram.com');
-- ...but the tokens are still unreadable.
SELECT * FROM ig_identity.account_tokens;
RESET ROLE;
-- Stored sealed: the superuser sees ciphertext only, bound to its row.
SELECT ig_account_id,
       ig_identity.secret_matches('access_token', ig_account_id, access_token,
                                  CASE ig_account_id WHEN '17841400000000001' THEN 'tok-priv-app'
                                                     ELSE 'tok-priv-app-b' END) AS token_stored,
       position(convert_to('tok-priv-app', 'UTF8') IN access_token) AS clear_text_at,
       get_byte(access_token, 0) AS envelope_version
  FROM ig_identity.account_tokens ORDER BY 1;
-- The sealing and checking helpers are private.
SET ROLE regress_igid_app;
SELECT ig_identity.seal_secret('x', 'access_token:1');
SELECT ig_identity.secret_matches('access_token', '1', '\x00'::bytea, 'x');
SELECT ig_identity_rotate_key();
RESET ROLE;

-- State for monitoring, without the tokens.
GRANT USAGE ON SCHEMA ig_identity TO regress_igid_monitor;
GRANT SELECT ON ig_identity.accounts TO regress_igid_monitor;
SET ROLE regress_igid_monitor;
SELECT ig_account_id, location_id, api_host, status FROM ig_identity.accounts ORDER BY 1;
SELECT * FROM ig_identity.account_tokens;
RESET ROLE;

-- Every function of the extension pins search_path (the list of those that
-- do not must be empty).
SELECT p.oid::regprocedure AS function_without_pinned_search_path
  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid = d.objid
 WHERE d.classid = 'pg_catalog.pg_proc'::regclass
   AND d.refclassid = 'pg_catalog.pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'ig_identity')
   AND d.deptype = 'e'
   AND NOT COALESCE('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false);
SELECT count(*) > 0 AS extension_has_functions,
       bool_and('search_path=pg_catalog, pg_temp' = ANY (p.proconfig)) AS all_pinned
  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid = d.objid
 WHERE d.classid = 'pg_catalog.pg_proc'::regclass
   AND d.refclassid = 'pg_catalog.pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'ig_identity')
   AND d.deptype = 'e';

-- No SECURITY DEFINER function is executable by PUBLIC (must be empty).
SELECT p.oid::regprocedure AS definer_function_open_to_public
  FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc p ON p.oid = d.objid
 WHERE d.classid = 'pg_catalog.pg_proc'::regclass
   AND d.refclassid = 'pg_catalog.pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'ig_identity')
   AND d.deptype = 'e'
   AND p.prosecdef
   AND pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE');

-- The public interface as PUBLIC sees it.
SELECT p.proname, p.prosecdef AS security_definer,
       pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
   AND p.proname IN ('ig_connect_account', 'ig_disconnect_account', 'ig_upsert_participant_identity',
                     'ig_display_name', 'ig_identity_check', 'ig_identity_repair')
 ORDER BY 1;

/*
 * The token never comes back: not in a result, nor in any error's message,
 * DETAIL, HINT or CONTEXT, whichever argument is wrong and wherever the
 * token was passed (a token given in the wrong position must not be echoed
 * either). The messages are shown; leaks checks all four fields.
 */
CREATE FUNCTION pg_temp.connect_outcome(p_args text[], OUT state text, OUT message text,
                                        OUT detail text, OUT hint text, OUT leaks boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_context text;
    v_result text;
BEGIN
    SELECT r::text INTO v_result
      FROM ig_connect_account(p_args[1], p_args[2], p_args[3], p_args[4],
                              COALESCE(p_args[5], 'graph.facebook.com')) r;
    state := 'none';
    leaks := position('SECRET-7f3a9c' in v_result) > 0;
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT,
                            v_context = PG_EXCEPTION_CONTEXT;
    leaks := position('SECRET-7f3a9c' in concat_ws('|', message, detail, hint, v_context)) > 0;
END $$;
\x on
SELECT c.label, o.*
  FROM (VALUES
        (1, 'valid',               ARRAY['loc_123', '17841400000000003', '17841400000000003', 'EAAG-SECRET-7f3a9c-token']),
        (2, 'empty location',      ARRAY['', '17841400000000003', '17841400000000003', 'EAAG-SECRET-7f3a9c-token']),
        (3, 'location too long',   ARRAY[repeat('l', 201), '17841400000000003', '17841400000000003', 'EAAG-SECRET-7f3a9c-token']),
        (4, 'account not digits',  ARRAY['loc_123', '1784140000000000x', '17841400000000003', 'EAAG-SECRET-7f3a9c-token']),
        (5, 'account too long',    ARRAY['loc_123', repeat('1', 33), '17841400000000003', 'EAAG-SECRET-7f3a9c-token']),
        (6, 'self missing',        ARRAY['loc_123', '17841400000000003', NULL, 'EAAG-SECRET-7f3a9c-token']),
        (7, 'token empty',         ARRAY['loc_123', '17841400000000003', '17841400000000003', '']),
        (8, 'token with newline',  ARRAY['loc_123', '17841400000000003', '17841400000000003', E'EAAG-SECRET-7f3a9c-token\n']),
        (9, 'token with space',    ARRAY['loc_123', '17841400000000003', '17841400000000003', 'EAAG-SECRET-7f3a9c token']),
        (10, 'token too long',     ARRAY['loc_123', '17841400000000003', '17841400000000003', 'EAAG-SECRET-7f3a9c' || repeat('t', 4079)]),
        (11, 'unknown host',       ARRAY['loc_123', '17841400000000003', '17841400000000003', 'EAAG-SECRET-7f3a9c-token', 'graph.example.com']),
        (12, 'token as host',      ARRAY['loc_123', '17841400000000003', '17841400000000003', 'graph.facebook.com', 'EAAG-SECRET-7f3a9c-token']),
        (13, 'token as account',   ARRAY['loc_123', 'EAAG-SECRET-7f3a9c-token', '17841400000000003', 'x']),
        (14, 'token as self',      ARRAY['loc_123', '17841400000000003', 'EAAG-SECRET-7f3a9c-token', 'x']),
        (15, 'token as location',  ARRAY[repeat('EAAG-SECRET-7f3a9c-token', 10), '17841400000000003', '17841400000000003', 'x'])
       ) AS c(n, label, args),
       LATERAL pg_temp.connect_outcome(c.args) o
 ORDER BY c.n;
\x off
-- Stored, and only where it belongs.
SELECT ig_account_id,
       ig_identity.secret_matches('access_token', ig_account_id, access_token,
                                  'EAAG-SECRET-7f3a9c-token') AS token_stored,
       position(convert_to('SECRET-7f3a9c', 'UTF8') IN access_token) AS clear_text_at
  FROM ig_identity.account_tokens WHERE ig_account_id = '17841400000000003';
SELECT count(*) AS token_elsewhere
  FROM ig_identity.accounts a WHERE a::text LIKE '%SECRET-7f3a9c%';

\c :regress_db
DROP DATABASE igid_priv;
DROP ROLE regress_igid_app;
DROP ROLE regress_igid_monitor;
