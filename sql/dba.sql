-- dba: what a DBA's first hour needs (issue 16).  A database owned by a
-- non-superuser app role, CREATE EXTENSION by a superuser: the inbox tables
-- it creates belong to the database's owner (or to ig_identity.inbox_owner);
-- the README's GRANT block is enough for the app role (every function) and
-- for a monitoring role (the status view, the check, the quarantine), with
-- no pg_monitor and no access to schema ig_identity; the staged connect
-- reads the token from the caller's temporary table; inbox tables in
-- another schema make CREATE EXTENSION refuse with a hint.
\set SHOW_CONTEXT never
\set regress_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_dba;
DROP DATABASE IF EXISTS igid_dba_named;
DROP DATABASE IF EXISTS igid_dba_schema;
DROP ROLE IF EXISTS regress_igid_dba_app;
DROP ROLE IF EXISTS regress_igid_dba_monitor;
DROP ROLE IF EXISTS regress_igid_dba_writer;
RESET client_min_messages;
CREATE ROLE regress_igid_dba_app LOGIN;
CREATE ROLE regress_igid_dba_monitor LOGIN;
CREATE ROLE regress_igid_dba_writer;
CREATE DATABASE igid_dba OWNER regress_igid_dba_app;
\c igid_dba
CREATE EXTENSION ig_identity;
-- Created by a superuser, owned by the database's owner.
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner
  FROM pg_class c
 WHERE c.relname IN ('instagram_user_cache', 'instagram_conversations', 'instagram_messages')
 ORDER BY 1;

-- The README's GRANT block (section "Roles and grants").
GRANT EXECUTE ON FUNCTION
    ig_connect_account(text, text, text, text, text),
    ig_connect_account(text, text, text, text, text, text),
    ig_connect_account_staged(text, text, text, text),
    ig_disconnect_account(text),
    ig_refresh_identities(text),
    ig_resolve_profile(text, text),
    ig_sync_inbox(text),
    ig_ingest_webhook(jsonb),
    ig_upsert_participant_identity(text, text, jsonb)
  TO regress_igid_dba_app;
GRANT SELECT ON ig_identity_status, ig_identity_quarantine
  TO regress_igid_dba_app, regress_igid_dba_monitor;
GRANT SELECT ON instagram_user_cache TO regress_igid_dba_monitor;

-- The app role: connect (staged, then with a bind parameter), upsert, read.
SET ROLE regress_igid_dba_app;
SELECT * FROM ig_connect_account_staged('loc_dba', '17841400000000001', '17841400000000001');
CREATE TEMP TABLE ig_identity_token_stage (access_token text);
SELECT * FROM ig_connect_account_staged('loc_dba', '17841400000000001', '17841400000000001');
INSERT INTO ig_identity_token_stage VALUES ('tok-dba-one'), ('tok-dba-two');
SELECT * FROM ig_connect_account_staged('loc_dba', '17841400000000001', '17841400000000001');
DELETE FROM ig_identity_token_stage;
INSERT INTO ig_identity_token_stage VALUES ('tok-dba-staged');
SELECT * FROM ig_connect_account_staged('loc_dba', '17841400000000001', '17841400000000001');
SELECT count(*) AS left_staged FROM ig_identity_token_stage;
-- The other two connect forms, as the app role (tokens as arguments: fine
-- here, this server logs no statement).
SELECT * FROM ig_connect_account('loc_dba', '17841400000000002', '17841400000000002', 'tok-dba-five');
SELECT * FROM ig_connect_account('loc_dba', '17841400000000002', '17841400000000002', 'tok-dba-six',
                                 'graph.facebook.com', 'tok-dba-app-secret');
SELECT ig_disconnect_account('17841400000000002');
SELECT ig_upsert_participant_identity('17841400000000001', '17841400000000001',
                                      '{"id": "1000000000000101", "username": "jane"}');
SELECT ig_display_name('17841400000000001', '1000000000000101');
SELECT * FROM ig_identity_check();
SELECT ig_account_id, location_id, status, queue_depth, worker_last_error IS NULL AS no_worker_error
  FROM ig_identity_status;
SELECT count(*) FROM ig_identity_quarantine;
SELECT * FROM ig_identity.accounts;
RESET ROLE;
-- The staged token is the one stored, sealed like any other.
SELECT ig_identity.secret_matches('access_token', ig_account_id, access_token, 'tok-dba-staged') AS staged_stored
  FROM ig_identity.account_tokens;

-- The monitoring role: the view, the check and the quarantine; nothing else.
SET ROLE regress_igid_dba_monitor;
SELECT ig_account_id, status, worker_cycles IS NOT NULL AS has_worker_columns FROM ig_identity_status;
SELECT * FROM ig_identity_check();
SELECT count(*) FROM ig_identity_quarantine;
SELECT * FROM ig_identity.account_tokens;
SELECT * FROM ig_identity.status_worker_state();
SELECT * FROM ig_connect_account_staged('loc_dba', '17841400000000001', '17841400000000001');
SELECT * FROM ig_identity_worker_state();
RESET ROLE;

-- ig_identity.inbox_owner names the owner instead.
\c :regress_db
CREATE DATABASE igid_dba_named OWNER regress_igid_dba_app;
\c igid_dba_named
SET ig_identity.inbox_owner = 'regress_igid_dba_nobody';
CREATE EXTENSION ig_identity;
SET ig_identity.inbox_owner = 'regress_igid_dba_writer';
CREATE EXTENSION ig_identity;
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner
  FROM pg_class c
 WHERE c.relname IN ('instagram_user_cache', 'instagram_conversations', 'instagram_messages')
 ORDER BY 1;
RESET ig_identity.inbox_owner;

-- The app's tables in schema app: refused in public, with the hint.
\c :regress_db
CREATE DATABASE igid_dba_schema OWNER regress_igid_dba_app;
\c igid_dba_schema
CREATE SCHEMA app AUTHORIZATION regress_igid_dba_app;
CREATE TABLE app.instagram_user_cache (ig_account_id text, ig_user_id text NOT NULL, username text);
ALTER TABLE app.instagram_user_cache OWNER TO regress_igid_dba_app;
INSERT INTO app.instagram_user_cache VALUES (NULL, '1000000000000101', 'jane');
\set VERBOSITY verbose
CREATE EXTENSION ig_identity;
\set VERBOSITY default
SELECT count(*) AS extensions FROM pg_extension WHERE extname = 'ig_identity';
CREATE EXTENSION ig_identity SCHEMA app;
SELECT c.relname, pg_get_userbyid(c.relowner) AS owner
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname IN ('instagram_user_cache', 'instagram_conversations', 'instagram_messages')
 ORDER BY n.nspname, 1;
SELECT * FROM app.ig_identity_check();

-- DROP EXTENSION keeps the quarantined row, in a table of the app's.
DROP EXTENSION ig_identity;
SELECT quarantine_id, source_table, reason, row_data ->> 'username' AS username,
       pg_get_userbyid((SELECT relowner FROM pg_class WHERE oid = 'app.ig_identity_quarantine_kept'::regclass)) AS owner
  FROM app.ig_identity_quarantine_kept;
SELECT count(*) AS member_of_nothing FROM pg_depend
 WHERE objid = 'app.ig_identity_quarantine_kept'::regclass AND deptype = 'e';
-- Installed and dropped again: the kept row is not copied twice.
CREATE EXTENSION ig_identity SCHEMA app;
INSERT INTO ig_identity.quarantine (source_table, reason, row_data, quarantined_at)
SELECT source_table, reason, row_data, quarantined_at FROM app.ig_identity_quarantine_kept;
DROP EXTENSION ig_identity;
SELECT count(*) AS kept_rows FROM app.ig_identity_quarantine_kept;

\c :regress_db
DROP DATABASE igid_dba;
DROP DATABASE igid_dba_named;
DROP DATABASE igid_dba_schema;
DROP ROLE regress_igid_dba_app;
DROP ROLE regress_igid_dba_monitor;
DROP ROLE regress_igid_dba_writer;
