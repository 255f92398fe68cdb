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

-- 3b. Reads run as the table's owner too.  Planning or running a read of
-- an inbox table can run code its owner attached to it; no list of such
-- objects is complete, so ig_identity reads each inbox table as its owner,
-- restricted, as it writes.  Each shape below records who ran it and tries
-- to make the owner a superuser.  (This session reads the cache only as
-- its owner while they exist: a superuser planning a read would fold them.)
SET ROLE regress_igid_inbox;
CREATE TABLE shape_log (shape text, ran_as text, is_superuser boolean);
CREATE FUNCTION escalate(p_shape text) RETURNS boolean LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    INSERT INTO shape_log
    SELECT p_shape, current_user, (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
    BEGIN
        ALTER ROLE regress_igid_inbox SUPERUSER;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END $$;
-- (a) an extended statistics object on an expression calling the owner's
-- function: the planner folds it while planning the read
CREATE FUNCTION app_const() RETURNS text LANGUAGE plpgsql IMMUTABLE AS
  $$ BEGIN PERFORM public.escalate('statistics expression'); RETURN ''; END $$;
CREATE STATISTICS cache_app_stats ON ((ig_user_id || app_const())) FROM instagram_user_cache;
-- (b) an index expression using the owner's operator (the catalogs record
-- the operator, not the function behind it)
CREATE FUNCTION app_cat(text, text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS
  $$ BEGIN PERFORM public.escalate('index operator'); RETURN $1 || $2; END $$;
CREATE OPERATOR ||| (LEFTARG = text, RIGHTARG = text, FUNCTION = app_cat);
CREATE INDEX cache_app_op_idx ON instagram_user_cache ((ig_user_id || ('a'::text ||| 'b'::text)));
-- (c) a row-level security policy
ALTER TABLE instagram_user_cache ENABLE ROW LEVEL SECURITY;
ALTER TABLE instagram_user_cache FORCE ROW LEVEL SECURITY;
CREATE POLICY app_policy ON instagram_user_cache USING (public.escalate('policy'));
TRUNCATE shape_log;   -- creating them ran some, as the owner
RESET ROLE;
-- the refresh (targets, merge), the one-profile read, and the webhook's
-- queueing, by the superuser and by a role with EXECUTE only
SELECT refreshed, failed, total FROM ig_refresh_identities('loc_123');
SET ROLE regress_igid_caller;
SELECT username, display_name FROM ig_resolve_profile('17841400000000001', '1000000000000101');
SELECT messages_stored, participants_queued FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[
  {"sender":{"id":"1000000000000151"},"recipient":{"id":"17841400000000001"},"timestamp":1752834910447,"message":{"mid":"mid.owner.2","text":"hi"}}]}]}');
RESET ROLE;
-- every shape ran, and only as the owner
SELECT shape, ran_as, is_superuser FROM shape_log GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT rolsuper AS owner_is_superuser FROM pg_roles WHERE rolname = 'regress_igid_inbox';
SET ROLE regress_igid_inbox;
DROP POLICY app_policy ON instagram_user_cache;
ALTER TABLE instagram_user_cache NO FORCE ROW LEVEL SECURITY;
ALTER TABLE instagram_user_cache DISABLE ROW LEVEL SECURITY;
DROP INDEX cache_app_op_idx;
DROP STATISTICS cache_app_stats;
-- (d) a rule: PostgreSQL refuses the upsert's ON CONFLICT on a table with
-- INSERT or UPDATE rules, so the write fails with its error and nothing of
-- the rule runs
CREATE RULE app_rule AS ON UPDATE TO instagram_user_cache
    DO ALSO SELECT public.escalate('rule');
RESET ROLE;
\set VERBOSITY terse
SELECT refreshed FROM ig_refresh_identities('loc_123');
\set VERBOSITY default
SET ROLE regress_igid_inbox;
DROP RULE app_rule ON instagram_user_cache;
-- (e) an index on an inheritance child: inheritance children are refused,
-- with a clear error, before anything is read (partitions are fine)
CREATE TABLE cache_child () INHERITS (instagram_user_cache);
CREATE INDEX cache_child_idx ON cache_child ((ig_user_id || ('a'::text ||| 'b'::text)));
TRUNCATE shape_log;
RESET ROLE;
\set VERBOSITY terse
SELECT refreshed FROM ig_refresh_identities('loc_123');
SET ROLE regress_igid_caller;
SELECT username FROM ig_resolve_profile('17841400000000001', '1000000000000101');
SELECT participants_queued FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[
  {"sender":{"id":"1000000000000152"},"recipient":{"id":"17841400000000001"},"timestamp":1752834910447,"message":{"mid":"mid.owner.3","text":"hi"}}]}]}');
RESET ROLE;
-- the repair refuses it too: a parent's and a child's rows share ctids, and
-- matching on ctid once moved one account's identities to another
SELECT * FROM ig_identity_repair();
\set VERBOSITY default
SELECT count(*) AS shapes_run FROM shape_log;
SELECT rolsuper AS owner_is_superuser FROM pg_roles WHERE rolname = 'regress_igid_inbox';
DROP TABLE cache_child;
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
