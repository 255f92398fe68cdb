-- fetch_sync_webhook: ig_sync_inbox (Conversations API paging, idempotent,
-- identities captured from the responses, self never stored) and
-- ig_ingest_webhook (dedupe on mid, echo inverts sender/recipient, other
-- events skipped, bodies that are no delivery rejected, participants queued).
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_sync;
RESET client_min_messages;
CREATE DATABASE igid_sync;
\c igid_sync
CREATE EXTENSION ig_identity;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
SELECT status FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001',
                                      'mock-token-A-0123456789', 'graph.facebook.com');

-- 1. Sync: the mock's account A has 3 conversations of 3 messages each
SELECT * FROM ig_sync_inbox('loc_123');
SELECT id LIKE 'aWdf%' AS graph_id, ig_account_id, location_id, participant_igsid,
       updated_time IS NOT NULL AS has_time
  FROM instagram_conversations ORDER BY participant_igsid;
SELECT count(*) AS messages, count(*) FILTER (WHERE is_echo) AS echoes,
       count(*) FILTER (WHERE is_echo AND from_id = '17841400000000001') AS echoes_from_self,
       count(DISTINCT conversation_id) AS conversations
  FROM instagram_messages;
-- identities from the participants lists: usernames, never the account itself
SELECT ig_user_id, username, fetch_status FROM instagram_user_cache ORDER BY ig_user_id;
-- the API calls: one list page that carries the messages too (field
-- expansion), and no call per conversation
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" count conversations
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" count conversation

-- 2. Idempotent: a second sync stores nothing new and fetches no messages
CREATE TEMP TABLE conv_before AS SELECT * FROM instagram_conversations;
CREATE TEMP TABLE msg_before AS SELECT * FROM instagram_messages;
SELECT * FROM ig_sync_inbox('loc_123');
SELECT (SELECT count(*) FROM ((TABLE instagram_conversations EXCEPT TABLE conv_before)
                              UNION ALL (TABLE conv_before EXCEPT TABLE instagram_conversations)) d) AS conversations_changed,
       (SELECT count(*) FROM ((TABLE instagram_messages EXCEPT TABLE msg_before)
                              UNION ALL (TABLE msg_before EXCEPT TABLE instagram_messages)) d) AS messages_changed;
-- a known username is never replaced by NULL when a page lacks it
UPDATE instagram_user_cache SET name = 'Jane Doe' WHERE ig_user_id = '1000000000000101';
SELECT * FROM ig_sync_inbox('loc_123');
SELECT username, name FROM instagram_user_cache WHERE ig_user_id = '1000000000000101';

-- 3. Paging across pages: account B gets 60 more conversations (61 in
-- all), listed 25 per page with their messages: 3 list calls in all
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" conversations 17841400000000002 60
SELECT status FROM ig_connect_account('loc_789', '17841400000000002', '17841400000000002',
                                      'mock-token-B-0123456789', 'graph.instagram.com');
SELECT * FROM ig_sync_inbox('loc_789');
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" count conversations
SELECT count(*) AS conversations, count(DISTINCT participant_igsid) AS people
  FROM instagram_conversations WHERE location_id = 'loc_789';
SELECT count(*) AS gen_users_named FROM instagram_user_cache
 WHERE ig_account_id = '17841400000000002' AND username LIKE 'gen.user.%';
-- a page without the nested messages: the new conversations' messages are
-- fetched one conversation at a time, the others cost nothing more
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" config '{"omit_nested_messages":true}'
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" conversations 17841400000000002 2 60
SELECT * FROM ig_sync_inbox('loc_789');
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" count conversation
SELECT count(*) AS messages_of_new FROM instagram_messages m
  JOIN instagram_conversations c ON c.id = m.conversation_id
 WHERE c.location_id = 'loc_789' AND c.participant_igsid IN ('3000000000000060', '3000000000000061');
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset

-- 4. Sync on a stopped token: raised (28000), nothing stored; recorded
-- on the account when failures are warnings
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" fault '{"match":{"account":"17841400000000002"},"fault":{"type":"graph_error","code":190}}'
SELECT * FROM ig_sync_inbox('loc_789');
SET ig_identity.sync_failure = warning;
SELECT * FROM ig_sync_inbox('loc_789');
RESET ig_identity.sync_failure;
SELECT status, last_error_code FROM ig_identity.accounts WHERE ig_account_id = '17841400000000002';
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset

-- 5. Webhook: an inbound message from a new person, its echo reply, a
-- reaction (skipped) and a repeat delivery (deduplicated)
SELECT * FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1752834911539,"messaging":[
  {"sender":{"id":"1000000000000150"},"recipient":{"id":"17841400000000001"},"timestamp":1752834910447,"message":{"mid":"mid.in.1","text":"hi there"}},
  {"sender":{"id":"17841400000000001"},"recipient":{"id":"1000000000000150"},"timestamp":1752834920447,"message":{"mid":"mid.echo.1","text":"hello!","is_echo":true}},
  {"sender":{"id":"1000000000000150"},"recipient":{"id":"17841400000000001"},"timestamp":1752834930447,"reaction":{"mid":"mid.in.1","action":"react","reaction":"love"}}]}]}');
SELECT id, from_id, to_id, message, is_echo, created_at AT TIME ZONE 'UTC' AS created_utc
  FROM instagram_messages WHERE id LIKE 'mid.%' ORDER BY created_at, id;
SELECT ig_account_id, ig_user_id, reason FROM ig_identity.refresh_queue ORDER BY ig_user_id;
SELECT * FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1752834911539,"messaging":[
  {"sender":{"id":"1000000000000150"},"recipient":{"id":"17841400000000001"},"timestamp":1752834910447,"message":{"mid":"mid.in.1","text":"hi there"}}]}]}');
SELECT count(*) FROM instagram_messages WHERE id LIKE 'mid.%';
-- a person with a good identity is not queued; one who needed consent is,
-- once they write again
DELETE FROM ig_identity.refresh_queue;
UPDATE instagram_user_cache SET fetch_status = 'consent_required', last_error_code = 230
 WHERE ig_user_id = '1000000000000102';
SELECT participants_queued FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[
  {"sender":{"id":"1000000000000101"},"recipient":{"id":"17841400000000001"},"timestamp":1752834940447,"message":{"mid":"mid.in.2","text":"again"}},
  {"sender":{"id":"1000000000000102"},"recipient":{"id":"17841400000000001"},"timestamp":1752834950447,"message":{"mid":"mid.in.3","text":"me too"}}]}]}');
SELECT ig_user_id, reason FROM ig_identity.refresh_queue ORDER BY ig_user_id;

-- 6. Bodies that are no Instagram delivery: a clear error, nothing stored
-- (a delivery with some bad events keeps the good ones: webhook_shapes)
\set VERBOSITY default
SELECT * FROM ig_ingest_webhook('{"object":"instagram","entry":{"id":"17841400000000001","messaging":[{"sender":{"id":"1"},"recipient":{"id":"2"},"timestamp":1,"message":{"mid":"mid.bad.1"}}]}}');
SELECT * FROM ig_ingest_webhook('[1, 2, 3]');
SELECT * FROM ig_ingest_webhook('{"object":"page","entry":[]}');
SELECT * FROM ig_ingest_webhook(NULL);
SELECT count(*) FROM instagram_messages WHERE id = 'mid.bad.1';

\c contrib_regression
DROP DATABASE igid_sync;
