-- tenant_ids (issue 12): conversation and message ids are global, the inbox
-- tables are keyed on them alone; a write for account A that meets a row
-- account B stores under the same id never changes B's row. A's copy goes
-- to ig_identity.quarantine (reason id_of_another_account, once), with a
-- WARNING; both are kept.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_tenant_ids;
RESET client_min_messages;
CREATE DATABASE igid_tenant_ids;
\c igid_tenant_ids
CREATE EXTENSION ig_identity;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
SELECT status FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001',
                                      'mock-token-A-0123456789', 'graph.facebook.com');
SELECT status FROM ig_connect_account('loc_789', '17841400000000002', '17841400000000002',
                                      'mock-token-B-0123456789', 'graph.instagram.com');

-- 1. ig_sync_inbox for A meets a conversation B stores under the same id.
SELECT conversations FROM ig_sync_inbox('loc_123');
-- B's conversation (the one with 1000000000000102, say), as B stored it
UPDATE instagram_conversations
   SET ig_account_id = '17841400000000002', location_id = 'loc_789',
       participant_igsid = '2000000000000001', updated_time = '2020-01-01 00:00+00'
 WHERE participant_igsid = '1000000000000102';
DELETE FROM instagram_messages m
 WHERE m.conversation_id IN (SELECT id FROM instagram_conversations WHERE ig_account_id = '17841400000000002');
CREATE TEMP TABLE b_conv AS
    SELECT * FROM instagram_conversations WHERE ig_account_id = '17841400000000002';
SELECT conversations, messages FROM ig_sync_inbox('loc_123');
-- B's row is untouched: its participant, location and time stay B's
SELECT (SELECT count(*) FROM ((TABLE instagram_conversations EXCEPT ALL
                               SELECT * FROM instagram_conversations WHERE ig_account_id = '17841400000000001')
                              EXCEPT ALL TABLE b_conv) d) AS b_rows_changed,
       (SELECT count(*) FROM instagram_conversations WHERE ig_account_id = '17841400000000002') AS b_rows;
-- and no message of A was filed under B's conversation
SELECT count(*) AS a_messages_in_b_conversation
  FROM instagram_messages m JOIN b_conv c ON c.id = m.conversation_id;
-- A's copy is in the quarantine, once, with A's values
SELECT source_table, reason, row_data ->> 'ig_account_id' AS account,
       row_data ->> 'participant_igsid' AS participant, row_data ->> 'location_id' AS location,
       row_data ->> 'id' = (SELECT id FROM b_conv) AS same_id
  FROM ig_identity.quarantine ORDER BY id;
SELECT conversations FROM ig_sync_inbox('loc_123');
SELECT count(*) AS quarantined FROM ig_identity.quarantine;

-- 2. A webhook for A carrying a mid B stores (B's row has no conversation
-- yet: before, A's webhook gave it A's conversation and dropped A's copy).
DELETE FROM ig_identity.quarantine;
INSERT INTO instagram_messages (id, conversation_id, ig_account_id, from_id, to_id, message, created_at)
VALUES ('mid.shared.1', NULL, '17841400000000002', '2000000000000001', '17841400000000002', 'B''s message',
        '2025-07-18 10:00+00');
SELECT * FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1752834911539,"messaging":[
  {"sender":{"id":"1000000000000101"},"recipient":{"id":"17841400000000001"},"timestamp":1752834910447,"message":{"mid":"mid.shared.1","text":"A''s message"}},
  {"sender":{"id":"1000000000000101"},"recipient":{"id":"17841400000000001"},"timestamp":1752834910448,"message":{"mid":"mid.a.only","text":"A only"}}]}]}');
SELECT id, conversation_id IS NULL AS no_conversation, ig_account_id, from_id, message
  FROM instagram_messages WHERE id IN ('mid.shared.1', 'mid.a.only') ORDER BY id;
SELECT source_table, reason, row_data ->> 'id' AS id, row_data ->> 'ig_account_id' AS account,
       row_data ->> 'from_id' AS from_id, row_data ->> 'message' AS message
  FROM ig_identity.quarantine ORDER BY id;
-- a redelivery sets nothing aside twice, and says nothing
SELECT messages_stored, duplicates FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1752834911539,"messaging":[
  {"sender":{"id":"1000000000000101"},"recipient":{"id":"17841400000000001"},"timestamp":1752834910447,"message":{"mid":"mid.shared.1","text":"A''s message"}}]}]}');
SELECT count(*) AS quarantined FROM ig_identity.quarantine;
-- ig_identity_check counts them with the other set-aside rows
SELECT quarantined_rows FROM ig_identity_check();

\c contrib_regression
DROP DATABASE igid_tenant_ids;
