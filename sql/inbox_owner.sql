-- inbox_owner: every write ig_identity makes to an inbox table runs as that
-- table's owner, in a security-restricted operation, never as the
-- extension's owner (a superuser here).  The app owns its inbox tables and
-- attaches triggers to them; if ig_identity wrote as the superuser, those
-- triggers would run as the superuser, and the app's role could make itself
-- one.  Here each inbox table carries a trigger that records who it ran as
-- and tries two things: reading a server file (superuser only) and creating
-- a temporary table (refused in a security-restricted operation).
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_owner;
DROP ROLE IF EXISTS regress_igid_inbox;
DROP ROLE IF EXISTS regress_igid_caller;
RESET client_min_messages;
CREATE DATABASE igid_owner;
\c igid_owner
CREATE EXTENSION ig_identity;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
CREATE ROLE regress_igid_inbox;     -- owns the inbox tables, not a superuser
CREATE ROLE regress_igid_caller;    -- may only call the fetch functions
ALTER TABLE instagram_user_cache OWNER TO regress_igid_inbox;
ALTER TABLE instagram_conversations OWNER TO regress_igid_inbox;
ALTER TABLE instagram_messages OWNER TO regress_igid_inbox;
GRANT CREATE ON SCHEMA public TO regress_igid_inbox;
GRANT EXECUTE ON FUNCTION ig_refresh_identities(text), ig_resolve_profile(text, text),
                          ig_sync_inbox(text), ig_ingest_webhook(jsonb)
   TO regress_igid_caller;
GRANT EXECUTE ON FUNCTION ig_upsert_participant_identity(text, text, jsonb) TO regress_igid_inbox;
SELECT status FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001',
                                      'mock-token-A-0123456789', 'graph.facebook.com');

-- The app's own trigger, created by the app's role on its own tables.
SET ROLE regress_igid_inbox;
CREATE TABLE trigger_log (tbl text, op text, ran_as text, is_superuser boolean,
                          read_server_file text, temp_table text);
-- (ig_identity's writers pin search_path = pg_catalog, pg_temp, so a
-- trigger names its own schema, as any function should)
CREATE FUNCTION app_audit() RETURNS trigger LANGUAGE plpgsql SET search_path = public AS $$
DECLARE
    v_read text := 'allowed';
    v_temp text := 'allowed';
BEGIN
    BEGIN
        PERFORM pg_catalog.pg_read_file('postgresql.conf', 0, 1);
    EXCEPTION WHEN OTHERS THEN
        v_read := SQLERRM;
    END;
    BEGIN
        CREATE TEMP TABLE IF NOT EXISTS app_scratch (x int);
    EXCEPTION WHEN OTHERS THEN
        v_temp := SQLERRM;
    END;
    -- a setting changed for the session: it must not outlive the write
    PERFORM pg_catalog.set_config('igid_test.set_by_trigger', 'yes', false);
    INSERT INTO trigger_log
    SELECT TG_TABLE_NAME, TG_OP, current_user,
           (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), v_read, v_temp;
    RETURN NEW;
END $$;
CREATE TRIGGER audit BEFORE INSERT OR UPDATE ON instagram_user_cache
    FOR EACH ROW EXECUTE FUNCTION app_audit();
CREATE TRIGGER audit BEFORE INSERT OR UPDATE ON instagram_conversations
    FOR EACH ROW EXECUTE FUNCTION app_audit();
CREATE TRIGGER audit BEFORE INSERT OR UPDATE ON instagram_messages
    FOR EACH ROW EXECUTE FUNCTION app_audit();
RESET ROLE;

-- 1. The fetch paths, called by the superuser and by a role with EXECUTE only.
SELECT conversations, messages, identities FROM ig_sync_inbox('loc_123');
SELECT refreshed, failed, total FROM ig_refresh_identities('loc_123');
SET ROLE regress_igid_caller;
SELECT refreshed, failed, total FROM ig_refresh_identities('loc_123');
SELECT username FROM ig_resolve_profile('17841400000000001', '1000000000000101');
SELECT messages_stored, participants_queued FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[
  {"sender":{"id":"1000000000000150"},"recipient":{"id":"17841400000000001"},"timestamp":1752834910447,"message":{"mid":"mid.owner.1","text":"hi"}}]}]}');
RESET ROLE;
-- the identities did land
SELECT ig_user_id, username FROM instagram_user_cache ORDER BY ig_user_id;

-- The triggers' setting changes stayed inside the writes (as in
-- PostgreSQL's own restricted operations): the session never sees them.
SELECT coalesce(current_setting('igid_test.set_by_trigger', true), '') AS setting_left_by_trigger;
-- Every trigger run was the table owner's, not a superuser's: the server
-- file stayed closed, and no temporary table could be made.
SELECT tbl, ran_as, is_superuser, read_server_file, temp_table, count(*) > 0 AS fired
  FROM trigger_log GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 4, 5;

-- 2. The SQL-level upsert, called by a role granted EXECUTE and by the
-- table owner itself: the write is the table owner's, restricted, either way.
TRUNCATE trigger_log;
GRANT EXECUTE ON FUNCTION ig_upsert_participant_identity(text, text, jsonb) TO regress_igid_caller;
SET ROLE regress_igid_caller;
SELECT ig_upsert_participant_identity('17841400000000001', NULL,
                                      '{"id": "1000000000000160", "username": "manual.entry"}');
RESET ROLE;
SET ROLE regress_igid_inbox;
SELECT ig_upsert_participant_identity('17841400000000001', NULL,
                                      '{"id": "1000000000000161", "username": "by.the.owner"}');
RESET ROLE;
SELECT tbl, op, ran_as, is_superuser, read_server_file, temp_table FROM trigger_log ORDER BY op;
SELECT ig_user_id, username FROM instagram_user_cache WHERE ig_user_id IN ('1000000000000160', '1000000000000161')
 ORDER BY 1;

-- 3. A view in a table's place is refused, not written through.
BEGIN;
ALTER TABLE instagram_conversations RENAME TO instagram_conversations_t;
CREATE VIEW instagram_conversations AS SELECT * FROM instagram_conversations_t;
\set VERBOSITY terse
SELECT conversations FROM ig_sync_inbox('loc_123');
\set VERBOSITY default
ROLLBACK;

-- An index whose expression calls a function the table owner wrote (and
-- could have declared IMMUTABLE falsely) is refused before ig_identity reads
-- the table with its owner's rights: PostgreSQL may run that function while
-- planning the read.
SET ROLE regress_igid_inbox;
CREATE FUNCTION app_norm(text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN lower($1); END $$;
CREATE INDEX cache_app_norm_idx ON instagram_user_cache (app_norm(username));
RESET ROLE;
\set VERBOSITY terse
SELECT refreshed FROM ig_refresh_identities('loc_123');
SELECT username FROM ig_resolve_profile('17841400000000001', '1000000000000101');
\set VERBOSITY default
DROP INDEX cache_app_norm_idx;
SELECT refreshed, failed FROM ig_refresh_identities('loc_123');

-- 4. The inbox writers themselves stay closed to other roles.
SET ROLE regress_igid_caller;
\set VERBOSITY terse
SELECT ig_identity.merge_identities('17841400000000001', NULL, ARRAY['1000000000000162'], ARRAY['sneaky'],
                                    NULL, NULL, NULL, NULL, NULL);
SELECT ig_identity.store_messages('17841400000000001', ARRAY['mid.sneaky'], NULL, NULL, NULL,
                                  NULL, NULL, ARRAY[false]);
\set VERBOSITY default
RESET ROLE;

-- 5. A trigger that raises an error aborts the refresh with the app's own
-- error, nothing is written, and the session is back to its own role.
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'app says no to %', NEW.ig_user_id; END $$;
ALTER FUNCTION refuse() OWNER TO regress_igid_inbox;
CREATE TRIGGER refuse BEFORE UPDATE ON instagram_user_cache FOR EACH ROW EXECUTE FUNCTION refuse();
SET ROLE regress_igid_caller;
\set VERBOSITY terse
SELECT refreshed, failed, total FROM ig_refresh_identities('loc_123');
\set VERBOSITY default
SELECT current_user;
RESET ROLE;
SELECT count(*) AS rows_changed FROM instagram_user_cache WHERE updated_at > now() - interval '0 s';

\c contrib_regression
DROP DATABASE igid_owner;
DROP ROLE regress_igid_inbox;
DROP ROLE regress_igid_caller;
