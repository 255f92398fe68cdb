-- webhook_shapes: every webhook shape of test/fixtures/graph/webhook_*.json
-- through ig_ingest_webhook: standby, attachments, reply_to, unsupported,
-- unsend, postback, referral, reactions and reads, the dashboard's test
-- changes, and a delivery with bad parts (dead letters, then replayed).
\set SHOW_CONTEXT never
\getenv abs_srcdir PG_ABS_SRCDIR
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_shapes;
DROP ROLE IF EXISTS igid_shapes_user;
RESET client_min_messages;
CREATE DATABASE igid_shapes;
\c igid_shapes
CREATE EXTENSION ig_identity;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
SELECT status FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001',
                                      'mock-token-A-0123456789', 'graph.facebook.com');
SELECT set_config('igid_test.fixtures', :'abs_srcdir' || '/test/fixtures/graph/', false) IS NOT NULL AS fixtures;
CREATE FUNCTION pg_temp.fixture(name text) RETURNS jsonb LANGUAGE sql AS
$$ SELECT pg_catalog.pg_read_file(current_setting('igid_test.fixtures') || name)::jsonb $$;
CREATE VIEW pg_temp.msgs AS
SELECT m.id, m.from_id, m.message, m.is_echo, d.kind, d.attachments, d.reply_to,
       d.deleted_at IS NOT NULL AS deleted
  FROM instagram_messages m
  LEFT JOIN ig_identity.message_details d ON d.ig_account_id = m.ig_account_id AND d.mid = m.id;

-- 1. standby: read like messaging
SELECT * FROM ig_ingest_webhook(pg_temp.fixture('webhook_standby.json'));
SELECT id, from_id, message, kind FROM pg_temp.msgs WHERE id = 'wh.standby.1';

-- 2. attachments: stored with their type and payload, not as NULL text alone
SELECT * FROM ig_ingest_webhook(pg_temp.fixture('webhook_attachments.json'));
SELECT id, message, kind, attachments -> 0 ->> 'type' AS type,
       attachments -> 0 -> 'payload' ? 'url' AS has_url
  FROM pg_temp.msgs WHERE id LIKE 'wh.att.%' ORDER BY id;

-- 3. reply_to: a message or a story
SELECT * FROM ig_ingest_webhook(pg_temp.fixture('webhook_reply_to.json'));
SELECT id, message, reply_to FROM pg_temp.msgs WHERE id LIKE 'wh.reply.%' ORDER BY id;

-- 4. is_unsupported
SELECT * FROM ig_ingest_webhook(pg_temp.fixture('webhook_unsupported.json'));
SELECT id, message, kind FROM pg_temp.msgs WHERE id = 'wh.unsupported.1';

-- 5. unsend: the row stays, its text goes, it is marked deleted; again is
-- harmless; an unsend that arrives before its message keeps its text out
SELECT * FROM ig_ingest_webhook(pg_temp.fixture('webhook_unsend.json'));
SELECT id, message, kind, deleted FROM pg_temp.msgs WHERE id = 'wh.standby.1';
SELECT messages_deleted FROM ig_ingest_webhook(pg_temp.fixture('webhook_unsend.json'));
SELECT messages_deleted FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[
  {"sender":{"id":"1111222233334444"},"recipient":{"id":"17841400000000001"},"timestamp":1752900004500,"message":{"mid":"wh.late.1","is_deleted":true}}]}]}');
SELECT messages_stored FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[
  {"sender":{"id":"1111222233334444"},"recipient":{"id":"17841400000000001"},"timestamp":1752900004400,"message":{"mid":"wh.late.1","text":"oops"}}]}]}');
SELECT id, message, kind, deleted FROM pg_temp.msgs WHERE id = 'wh.late.1';

-- 6. postbacks grant consent like a message: stored, and the person is
-- queued even when marked consent_required; a repeat stores nothing twice
DELETE FROM ig_identity.refresh_queue;
INSERT INTO instagram_user_cache (ig_account_id, ig_user_id, fetch_status, last_error_code)
VALUES ('17841400000000001', '5555666677778888', 'consent_required', 230);
SELECT * FROM ig_ingest_webhook(pg_temp.fixture('webhook_postback.json'));
SELECT ig_user_id, kind, mid, payload ->> 'title' AS title, payload ->> 'payload' AS payload,
       pg_catalog.round(extract(epoch FROM occurred_at) * 1000) AS occurred_ms
  FROM ig_identity.webhook_events ORDER BY id;
SELECT ig_user_id, reason FROM ig_identity.refresh_queue ORDER BY ig_user_id;
SELECT events_stored, participants_queued FROM ig_ingest_webhook(pg_temp.fixture('webhook_postback.json'));

-- 7. referral: stored, the person queued
SELECT * FROM ig_ingest_webhook(pg_temp.fixture('webhook_referral.json'));
SELECT ig_user_id, kind, mid, payload FROM ig_identity.webhook_events WHERE kind = 'referral';
SELECT ig_user_id, reason FROM ig_identity.refresh_queue ORDER BY ig_user_id;

-- 8. reactions and reads: skipped on purpose, counted; so are the test
-- button's changes
SELECT * FROM ig_ingest_webhook(pg_temp.fixture('webhook_reaction_read.json'));
SELECT * FROM ig_ingest_webhook(pg_temp.fixture('webhook_changes_test.json'));

-- 9. a delivery with bad parts: the good message is stored, the rest are
-- dead letters (raw, with the reason), counted in the status view
SELECT * FROM ig_ingest_webhook(pg_temp.fixture('webhook_partly_bad.json'));
SELECT id, message FROM pg_temp.msgs WHERE id IN ('wh.good.1', 'wh.orphan.1');
SELECT ig_account_id, reason, raw -> 'entry' -> 0 ? 'messaging' AS has_event,
       pg_catalog.jsonb_array_length(raw -> 'entry' -> 0 -> 'messaging') AS events
  FROM ig_identity.webhook_dead_letters ORDER BY id;
SELECT ig_account_id, webhook_dead_letters FROM ig_identity_status;

-- 10. replay: nothing new parses, so everything stays; once an operator
-- (or a newer parser) makes one readable, it is stored and removed
SELECT * FROM ig_identity_replay_dead_letters();
UPDATE ig_identity.webhook_dead_letters
   SET raw = pg_catalog.jsonb_set(raw, '{entry,0,id}', '"17841400000000001"')
 WHERE reason = 'entry without id';
SELECT * FROM ig_identity_replay_dead_letters();
SELECT id, message FROM pg_temp.msgs WHERE id = 'wh.orphan.1';
SELECT reason FROM ig_identity.webhook_dead_letters ORDER BY id;
SELECT webhook_dead_letters FROM ig_identity_status;

-- 11. private: an ordinary role reads no dead letter and replays nothing
CREATE ROLE igid_shapes_user;
SET ROLE igid_shapes_user;
\set VERBOSITY terse
SELECT count(*) FROM ig_identity.webhook_dead_letters;
SELECT * FROM ig_identity_replay_dead_letters();
SELECT * FROM ig_ingest_webhook('{"object":"instagram","entry":[]}');
\set VERBOSITY default
RESET ROLE;
DROP ROLE igid_shapes_user;

\c contrib_regression
DROP DATABASE igid_shapes;
