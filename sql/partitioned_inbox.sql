-- partitioned_inbox (issue 12): a declaratively partitioned
-- instagram_messages (by month, with a default partition) through the
-- repair, the webhook path and the refresh. No unique index can hold id
-- alone across partitions: the repair builds one on (id, created_at) when
-- missing and sets aside duplicate ids told apart by tableoid and ctid;
-- the webhook writer keeps ids unique across partitions. Inheritance
-- children stay refused; a partition of another owner is refused clearly.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_partitioned;
DROP ROLE IF EXISTS regress_igid_part_other;
RESET client_min_messages;
CREATE DATABASE igid_partitioned;
\c igid_partitioned

-- The app's legacy table: partitioned by month, no unique index, no
-- is_echo column, one webhook redelivered into two months (same id).
CREATE TABLE instagram_messages (
    id              text NOT NULL,
    conversation_id text,
    ig_account_id   text,
    from_id         text,
    to_id           text,
    message         text,
    created_at      timestamptz NOT NULL
) PARTITION BY RANGE (created_at);
CREATE TABLE instagram_messages_2025_06 PARTITION OF instagram_messages
    FOR VALUES FROM ('2025-06-01 00:00+00') TO ('2025-07-01 00:00+00');
CREATE TABLE instagram_messages_2025_07 PARTITION OF instagram_messages
    FOR VALUES FROM ('2025-07-01 00:00+00') TO ('2025-08-01 00:00+00');
CREATE TABLE instagram_messages_default PARTITION OF instagram_messages DEFAULT;
INSERT INTO instagram_messages VALUES
    ('mid.dup', NULL, NULL,                '1000000000000101', '17841400000000001', 'hi (late copy)', '2025-07-01 00:00:01+00'),
    ('mid.dup', 'c101', '17841400000000001', '1000000000000101', '17841400000000001', 'hi',            '2025-06-30 23:59:59+00'),
    ('mid.june', 'c101', '17841400000000001', '17841400000000001', '1000000000000101', 'hello',        '2025-06-15 10:00+00'),
    ('m.recent', NULL, '17841400000000001', '1000000000000102', '17841400000000001', 'recent',        now());

CREATE EXTENSION ig_identity;
-- one row per id: the copy that knows its account stayed, the other is set aside
SELECT tableoid::regclass AS partition, id, ig_account_id, is_echo FROM instagram_messages ORDER BY id, created_at;
SELECT source_table, reason, row_data ->> 'id' AS id, row_data ->> 'message' AS message
  FROM ig_identity.quarantine ORDER BY id;
-- the unique index holds id and the partition key, on every partition
SELECT c.relname, pg_catalog.pg_get_indexdef(i.indexrelid) LIKE '%(id, created_at)' AS on_id_and_key
  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = 'instagram_messages'::regclass AND i.indisunique;
SELECT count(*) AS partitions_with_the_index
  FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_index i ON i.indrelid = h.inhrelid AND i.indisunique
 WHERE h.inhparent = 'instagram_messages'::regclass;
-- the repair is idempotent
SELECT * FROM ig_identity_repair();

\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
SELECT status FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001',
                                      'mock-token-A-0123456789', 'graph.facebook.com');
INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid, updated_time)
VALUES ('c101', '17841400000000001', 'loc_123', '1000000000000101', now());

-- Webhook: a new message lands in its month's partition; a redelivery is a
-- duplicate, and so is the same mid with another timestamp (another month)
SELECT * FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1752834911539,"messaging":[
  {"sender":{"id":"1000000000000101"},"recipient":{"id":"17841400000000001"},"timestamp":1752834910447,"message":{"mid":"mid.in.1","text":"hi there"}}]}]}');
SELECT * FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1752834911539,"messaging":[
  {"sender":{"id":"1000000000000101"},"recipient":{"id":"17841400000000001"},"timestamp":1752834910447,"message":{"mid":"mid.in.1","text":"hi there"}}]}]}');
SELECT messages_stored, duplicates FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[
  {"sender":{"id":"1000000000000101"},"recipient":{"id":"17841400000000001"},"timestamp":1750000000000,"message":{"mid":"mid.in.1","text":"hi there"}},
  {"sender":{"id":"1000000000000101"},"recipient":{"id":"17841400000000001"},"timestamp":1750000000000,"message":{"mid":"mid.dup","text":"hi"}}]}]}');
SELECT tableoid::regclass AS partition, id, conversation_id, from_id, message
  FROM instagram_messages WHERE id IN ('mid.in.1', 'mid.dup') ORDER BY id;
-- a message first seen without its conversation gets it (m.recent's sender
-- has none yet; its conversation arrives, then a redelivery completes it)
INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid, updated_time)
VALUES ('c102', '17841400000000001', 'loc_123', '1000000000000102', now());
SELECT messages_stored, duplicates FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[
  {"sender":{"id":"1000000000000102"},"recipient":{"id":"17841400000000001"},"timestamp":1752834910447,"message":{"mid":"m.recent","text":"recent"}}]}]}');
SELECT id, conversation_id FROM instagram_messages WHERE id = 'm.recent';

-- Refresh: participants are read from the partitioned table (messages of
-- the last 30 days: m.recent's sender, in the default partition)
SELECT refreshed, failed, total FROM ig_refresh_identities('loc_123');
SELECT ig_user_id, username FROM instagram_user_cache ORDER BY ig_user_id;

-- A partition of another owner is refused with a clear error, nothing written
CREATE ROLE regress_igid_part_other;
ALTER TABLE instagram_messages_default OWNER TO regress_igid_part_other;
SELECT * FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[
  {"sender":{"id":"1000000000000101"},"recipient":{"id":"17841400000000001"},"timestamp":1,"message":{"mid":"mid.other","text":"x"}}]}]}');
SELECT count(*) AS stored FROM instagram_messages WHERE id = 'mid.other';
ALTER TABLE instagram_messages_default OWNER TO CURRENT_USER;

-- Inheritance (not partitioning) stays refused, by the repair too
DROP EXTENSION ig_identity;
CREATE TABLE instagram_user_cache_old () INHERITS (instagram_user_cache);
CREATE EXTENSION ig_identity;
DROP TABLE instagram_user_cache_old;

\c contrib_regression
DROP DATABASE igid_partitioned;
DROP ROLE regress_igid_part_other;
