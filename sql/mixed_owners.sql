-- mixed_owners (issue 12): each inbox table has its own owner, none with a
-- grant on another's table. Every path reads and writes each table as its
-- own owner: the webhook (messages take their conversation from
-- instagram_conversations, read as its owner), the sync, the refresh and
-- the repair. The conversations owner's row-level security policy records
-- whom it ran as: never the messages owner, never a superuser.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_mixed_owners;
DROP ROLE IF EXISTS regress_igid_conv_owner;
DROP ROLE IF EXISTS regress_igid_msg_owner;
DROP ROLE IF EXISTS regress_igid_cache_owner;
RESET client_min_messages;
CREATE DATABASE igid_mixed_owners;
\c igid_mixed_owners
CREATE EXTENSION ig_identity;
CREATE ROLE regress_igid_conv_owner;
CREATE ROLE regress_igid_msg_owner;
CREATE ROLE regress_igid_cache_owner;
ALTER TABLE instagram_conversations OWNER TO regress_igid_conv_owner;
ALTER TABLE instagram_messages OWNER TO regress_igid_msg_owner;
ALTER TABLE instagram_user_cache OWNER TO regress_igid_cache_owner;

CREATE TABLE policy_log (ran_as text, is_superuser boolean);
GRANT INSERT ON policy_log TO PUBLIC;
CREATE FUNCTION public.conv_visible() RETURNS boolean LANGUAGE plpgsql VOLATILE
SET search_path = public AS $$
BEGIN
    INSERT INTO policy_log
    SELECT current_user, (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
    RETURN true;
END $$;
ALTER FUNCTION public.conv_visible() OWNER TO regress_igid_conv_owner;
SET ROLE regress_igid_conv_owner;
CREATE POLICY conv_policy ON instagram_conversations USING (public.conv_visible());
ALTER TABLE instagram_conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE instagram_conversations FORCE ROW LEVEL SECURITY;
RESET ROLE;

\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
SELECT status FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001',
                                      'mock-token-A-0123456789', 'graph.facebook.com');

-- Sync: conversations, messages and identities, each stored as its owner
SELECT conversations, messages, identities FROM ig_sync_inbox('loc_123');
SELECT count(*) AS conversations FROM instagram_conversations;
SELECT count(*) AS messages, count(conversation_id) AS with_conversation FROM instagram_messages;

-- Webhook: a message without a conversation id gets the account's
-- conversation with its sender, read as the conversations owner
SELECT * FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[
  {"sender":{"id":"1000000000000101"},"recipient":{"id":"17841400000000001"},"timestamp":1752834910447,"message":{"mid":"mid.mixed.1","text":"hi"}}]}]}');
SELECT m.id, m.conversation_id = c.id AS has_its_conversation
  FROM instagram_messages m, instagram_conversations c
 WHERE m.id = 'mid.mixed.1' AND c.participant_igsid = '1000000000000101';

-- Refresh: participants read from both tables, each as its owner
UPDATE instagram_user_cache SET last_fetched_at = NULL, username = NULL;
SELECT refreshed, failed FROM ig_refresh_identities('loc_123');

-- The repair, with every table owned by another role
SELECT * FROM ig_identity_repair();

-- The policy ran, and only as the conversations owner
SELECT count(*) > 0 AS policy_ran FROM policy_log;
SELECT DISTINCT ran_as, is_superuser FROM policy_log ORDER BY 1;
-- and nobody needed a grant on another's table
SELECT r.rolname, t.relname
  FROM pg_catalog.pg_roles r, pg_catalog.pg_class t
 WHERE r.rolname LIKE 'regress_igid_%_owner'
   AND t.relname IN ('instagram_conversations', 'instagram_messages', 'instagram_user_cache')
   AND t.relowner <> r.oid AND pg_catalog.has_table_privilege(r.oid, t.oid, 'SELECT')
 ORDER BY 1, 2;

\c contrib_regression
DROP DATABASE igid_mixed_owners;
DROP ROLE regress_igid_conv_owner;
DROP ROLE regress_igid_msg_owner;
DROP ROLE regress_igid_cache_owner;
