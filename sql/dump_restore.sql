-- dump_restore: pg_dump and restore keep every row and column of the inbox
-- and private tables, with no error in the restore, both when the
-- extension created the inbox tables (a) and when the app had them first
-- with its own column, key and index (b); plain format through psql and
-- custom format through pg_restore. Needs pg_dump, pg_restore and psql on
-- PATH; pg_regress exports PGHOST and PGPORT.
\set SHOW_CONTEXT never
\set regress_db :DBNAME
\getenv abs_srcdir PG_ABS_SRCDIR
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_dump_a;
DROP DATABASE IF EXISTS igid_dump_a_plain;
DROP DATABASE IF EXISTS igid_dump_a_partial;
DROP DATABASE IF EXISTS igid_dump_b;
DROP DATABASE IF EXISTS igid_dump_b_plain;
DROP DATABASE IF EXISTS igid_dump_b_custom;
RESET client_min_messages;

-- Counts and a checksum of the ordered rows of every table that matters.
-- Kept as text in a psql variable and run the same way in every database.
SELECT $fp$
SELECT t.tbl, t.row_count, t.checksum
  FROM (SELECT 'inbox: instagram_user_cache' AS tbl, count(*) AS row_count,
               md5(COALESCE(string_agg(x::text, E'\n' ORDER BY x::text), '')) AS checksum
          FROM public.instagram_user_cache x
        UNION ALL
        SELECT 'inbox: instagram_conversations', count(*),
               md5(COALESCE(string_agg(x::text, E'\n' ORDER BY x::text), ''))
          FROM public.instagram_conversations x
        UNION ALL
        SELECT 'inbox: instagram_messages', count(*),
               md5(COALESCE(string_agg(x::text, E'\n' ORDER BY x::text), ''))
          FROM public.instagram_messages x
        UNION ALL
        SELECT 'private: accounts', count(*),
               md5(COALESCE(string_agg(x::text, E'\n' ORDER BY x::text), ''))
          FROM ig_identity.accounts x
        UNION ALL
        SELECT 'private: account_tokens', count(*),
               md5(COALESCE(string_agg(x::text, E'\n' ORDER BY x::text), ''))
          FROM ig_identity.account_tokens x
        UNION ALL
        SELECT 'private: refresh_queue', count(*),
               md5(COALESCE(string_agg(x::text, E'\n' ORDER BY x::text), ''))
          FROM ig_identity.refresh_queue x
        UNION ALL
        SELECT 'private: refresh_runs', count(*),
               md5(COALESCE(string_agg(x::text, E'\n' ORDER BY x::text), ''))
          FROM ig_identity.refresh_runs x
        UNION ALL
        SELECT 'private: quarantine', count(*),
               md5(COALESCE(string_agg(x::text, E'\n' ORDER BY x::text), ''))
          FROM ig_identity.quarantine x) t
$fp$ AS fp \gset

/*
 * (a) The extension created the inbox tables.
 */
CREATE DATABASE igid_dump_a;
\c igid_dump_a
CREATE EXTENSION ig_identity;
SELECT * FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001', 'mock-token-A-0123456789');
SELECT * FROM ig_connect_account('loc_456', '17841400000000002', '17841400000000002', 'mock-token-B-0123456789', 'graph.instagram.com');
INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid, updated_time) VALUES
    ('conv_A_101', '17841400000000001', 'loc_123', '1000000000000101', '2025-07-28 22:44:49+00'),
    ('conv_B_101', '17841400000000002', 'loc_456', '1000000000000101', '2025-07-28 22:45:00+00');
INSERT INTO instagram_messages (id, conversation_id, ig_account_id, from_id, to_id, message, created_at, is_echo) VALUES
    ('m_1', 'conv_A_101', '17841400000000001', '1000000000000101', '17841400000000001', 'hi', '2025-07-28 22:44:00+00', false),
    ('m_2', 'conv_A_101', '17841400000000001', '17841400000000001', '1000000000000101', E'hello\nthere', '2025-07-28 22:44:49+00', true);
SELECT ig_upsert_participant_identity('17841400000000001', '17841400000000001',
       '{"id": "1000000000000101", "username": "jane.doe", "name": "Jane Doe", "profile_pic": "https://cdn.example/101.jpg"}');
SELECT ig_identity.upsert_identities('17841400000000002', ARRAY['1000000000000101', '1000000000000104'],
       ARRAY['jane.doe', NULL], NULL, NULL, ARRAY['ok', 'consent_required'], ARRAY[NULL, 230], NULL);
INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason) VALUES
    ('17841400000000002', '1000000000000104', 'retry');
INSERT INTO ig_identity.refresh_runs (source, location_id, started_at, finished_at, refreshed, failed, total, errors) VALUES
    ('manual', 'loc_123', '2025-07-28 22:00:00+00', '2025-07-28 22:00:01+00', 1, 0, 1, '[]'),
    ('worker', NULL, '2025-07-28 23:00:00+00', '2025-07-28 23:00:02+00', 1, 1, 2, '[{"code": 230}]');
SELECT string_agg(f.tbl || '=' || f.row_count || '/' || f.checksum, ', ' ORDER BY f.tbl) AS fp_a
  FROM (:fp) f \gset
SELECT f.tbl, f.row_count FROM (:fp) f ORDER BY f.tbl COLLATE "C";

-- Plain format through psql; the restore's own output is discarded, its
-- errors (stderr) would show here.
CREATE DATABASE igid_dump_a_plain;
\! pg_dump -d igid_dump_a | psql -X -q -v ON_ERROR_STOP=1 -d igid_dump_a_plain >/dev/null; echo "restore exit status: $?"
\c igid_dump_a_plain
SELECT string_agg(f.tbl || '=' || f.row_count || '/' || f.checksum, ', ' ORDER BY f.tbl) = :'fp_a' AS identical
  FROM (:fp) f;
SELECT f.tbl, f.row_count FROM (:fp) f ORDER BY f.tbl COLLATE "C";
-- The dump carried the sealed tokens, and they open here (same key).
SELECT ig_account_id, get_byte(access_token, 0) AS envelope_version,
       ig_identity.secret_matches('access_token', ig_account_id, access_token,
                                  CASE ig_account_id WHEN '17841400000000001' THEN 'mock-token-A-0123456789'
                                                     ELSE 'mock-token-B-0123456789' END) AS token_restored
  FROM ig_identity.account_tokens ORDER BY 1;
-- The restored tables are the dump's, still not members, and complete.
SELECT count(*) AS inbox_tables_in_extension
  FROM pg_catalog.pg_depend d
 WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'e'
   AND d.objid IN ('instagram_user_cache'::regclass, 'instagram_messages'::regclass,
                   'instagram_conversations'::regclass);
SELECT * FROM ig_identity_repair();
-- Identity sequences go on from where they were.
INSERT INTO ig_identity.refresh_runs (source, started_at) VALUES ('manual', '2025-07-29 00:00:00+00')
RETURNING id;

-- A restore that left the inbox tables out (here: a dump taken with -T)
-- gets them from ig_identity_repair() afterwards, as ordinary tables
-- outside the extension.
\c :regress_db
CREATE DATABASE igid_dump_a_partial;
\! pg_dump -d igid_dump_a -T 'public.instagram_*' | psql -X -q -v ON_ERROR_STOP=1 -d igid_dump_a_partial >/dev/null; echo "restore exit status: $?"
\c igid_dump_a_partial
SELECT count(*) AS inbox_tables FROM pg_catalog.pg_class WHERE relname LIKE 'instagram%' AND relkind = 'r';
SELECT count(*) AS tokens FROM ig_identity.account_tokens;
SELECT * FROM ig_identity_repair();
SELECT c.relname, EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                           WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                             AND d.deptype = 'e') AS member
  FROM pg_catalog.pg_class c
 WHERE c.relname LIKE 'instagram%' AND c.relkind = 'r' ORDER BY 1;

/*
 * (b) The app had the tables first: the legacy inbox, repaired by the
 * install, with its own id key, notes column and index.
 */
CREATE DATABASE igid_dump_b;
\c igid_dump_b
\set ECHO none
\o /dev/null
\i :abs_srcdir/test/fixtures/legacy_seed.sql
\o
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION ig_identity;
RESET client_min_messages;
SELECT * FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001', 'mock-token-A-0123456789');
SELECT ig_upsert_participant_identity('17841400000000001', NULL, '{"id": "1000000000000104", "username": "no.consent"}');
SELECT string_agg(f.tbl || '=' || f.row_count || '/' || f.checksum, ', ' ORDER BY f.tbl) AS fp_b
  FROM (:fp) f \gset
SELECT f.tbl, f.row_count FROM (:fp) f ORDER BY f.tbl COLLATE "C";

CREATE DATABASE igid_dump_b_plain;
\! pg_dump -d igid_dump_b | psql -X -q -v ON_ERROR_STOP=1 -d igid_dump_b_plain >/dev/null; echo "restore exit status: $?"
CREATE DATABASE igid_dump_b_custom;
\! pg_dump -Fc -d igid_dump_b | pg_restore --exit-on-error -d igid_dump_b_custom; echo "pg_restore exit status: $?"

\c igid_dump_b_plain
SELECT string_agg(f.tbl || '=' || f.row_count || '/' || f.checksum, ', ' ORDER BY f.tbl) = :'fp_b' AS identical
  FROM (:fp) f;
SELECT attname FROM pg_catalog.pg_attribute
 WHERE attrelid = 'instagram_user_cache'::regclass AND attname IN ('id', 'notes') ORDER BY 1;
SELECT indexname FROM pg_catalog.pg_indexes WHERE tablename = 'instagram_user_cache' ORDER BY 1;
SELECT ig_account_id, get_byte(access_token, 0) AS envelope_version,
       ig_identity.secret_matches('access_token', ig_account_id, access_token,
                                  'mock-token-A-0123456789') AS token_restored
  FROM ig_identity.account_tokens;
SELECT * FROM ig_identity_check();
SELECT nextval('instagram_user_cache_id_seq') AS next_app_id;

\c igid_dump_b_custom
SELECT string_agg(f.tbl || '=' || f.row_count || '/' || f.checksum, ', ' ORDER BY f.tbl) = :'fp_b' AS identical
  FROM (:fp) f;
SELECT attname FROM pg_catalog.pg_attribute
 WHERE attrelid = 'instagram_user_cache'::regclass AND attname IN ('id', 'notes') ORDER BY 1;
SELECT indexname FROM pg_catalog.pg_indexes WHERE tablename = 'instagram_user_cache' ORDER BY 1;
SELECT ig_account_id, get_byte(access_token, 0) AS envelope_version,
       ig_identity.secret_matches('access_token', ig_account_id, access_token,
                                  'mock-token-A-0123456789') AS token_restored
  FROM ig_identity.account_tokens;
SELECT * FROM ig_identity_repair();

\c :regress_db
DROP DATABASE igid_dump_a;
DROP DATABASE igid_dump_a_plain;
DROP DATABASE igid_dump_a_partial;
DROP DATABASE igid_dump_b;
DROP DATABASE igid_dump_b_plain;
DROP DATABASE igid_dump_b_custom;
