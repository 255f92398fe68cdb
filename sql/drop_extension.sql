-- drop_extension: DROP EXTENSION removes the extension's own state (schema
-- ig_identity) and never the inbox tables or their rows, whether the
-- extension created them (a) or the app had them first (b); installing
-- again adopts the same tables as they are: nothing created, added,
-- recovered, merged or quarantined.
\set SHOW_CONTEXT never
\set regress_db :DBNAME
\getenv abs_srcdir PG_ABS_SRCDIR
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_drop_a;
DROP DATABASE IF EXISTS igid_drop_b;
RESET client_min_messages;

-- Table identities, column counts and a checksum of the inbox rows.
SELECT $fp$
SELECT c.relname, c.oid, (SELECT count(*) FROM pg_catalog.pg_attribute a
                            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
  FROM pg_catalog.pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
   AND c.relname IN ('instagram_user_cache', 'instagram_conversations', 'instagram_messages')
$fp$ AS tables_fp,
$fp$
SELECT md5(string_agg(x, E'\n' ORDER BY x))
  FROM (SELECT u::text AS x FROM public.instagram_user_cache u
        UNION ALL SELECT c::text FROM public.instagram_conversations c
        UNION ALL SELECT m::text FROM public.instagram_messages m) r
$fp$ AS rows_fp \gset

/*
 * (a) Tables the extension created.
 */
CREATE DATABASE igid_drop_a;
\c igid_drop_a
CREATE EXTENSION ig_identity;
SELECT * FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001', 'tok-drop-a');
INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid)
VALUES ('conv_A_101', '17841400000000001', 'loc_123', '1000000000000101');
INSERT INTO instagram_messages (id, conversation_id, ig_account_id, from_id, to_id, message)
VALUES ('m_1', 'conv_A_101', '17841400000000001', '1000000000000101', '17841400000000001', 'hi');
SELECT ig_upsert_participant_identity('17841400000000001', NULL, '{"id": "1000000000000101", "username": "jane.doe"}');
SELECT string_agg(t.relname || ':' || t.oid || ':' || t.columns, ',' ORDER BY t.relname) AS tables_before
  FROM (:tables_fp) t \gset
SELECT (:rows_fp) AS rows_before \gset

DROP EXTENSION ig_identity;
SELECT relname FROM pg_catalog.pg_class
 WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1;
SELECT (SELECT count(*) FROM instagram_user_cache) AS cache_rows,
       (SELECT count(*) FROM instagram_conversations) AS conversations,
       (SELECT count(*) FROM instagram_messages) AS messages;
SELECT count(*) AS ig_identity_schemas FROM pg_catalog.pg_namespace WHERE nspname = 'ig_identity';
SELECT count(*) AS functions_left FROM pg_catalog.pg_proc WHERE proname LIKE 'ig\_%';
SELECT username FROM instagram_user_cache;

CREATE EXTENSION ig_identity;
SELECT string_agg(t.relname || ':' || t.oid || ':' || t.columns, ',' ORDER BY t.relname) = :'tables_before'
       AS same_tables_and_columns
  FROM (:tables_fp) t;
SELECT (:rows_fp) = :'rows_before' AS same_rows;
SELECT * FROM ig_identity_check();
SELECT * FROM ig_identity_repair();
-- The extension's own state went with it: connect again.
SELECT count(*) AS accounts FROM ig_identity.accounts;

/*
 * (b) Tables the app had first (the legacy inbox, repaired at the first
 * install).
 */
\c :regress_db
CREATE DATABASE igid_drop_b;
\c igid_drop_b
\set ECHO none
\o /dev/null
\i :abs_srcdir/test/fixtures/legacy_seed.sql
\o
\set ECHO all
SET client_min_messages = error;
CREATE EXTENSION ig_identity;
RESET client_min_messages;
SELECT string_agg(t.relname || ':' || t.oid || ':' || t.columns, ',' ORDER BY t.relname) AS tables_before
  FROM (:tables_fp) t \gset
SELECT (:rows_fp) AS rows_before \gset

DROP EXTENSION ig_identity;
SELECT (SELECT count(*) FROM instagram_user_cache) AS cache_rows,
       (SELECT count(*) FROM instagram_conversations) AS conversations,
       (SELECT count(*) FROM instagram_messages) AS messages;
SELECT count(*) AS ig_identity_schemas FROM pg_catalog.pg_namespace WHERE nspname = 'ig_identity';
-- The app's column and index, and the repair's constraints, stay.
SELECT indexname FROM pg_catalog.pg_indexes WHERE tablename = 'instagram_user_cache' ORDER BY 1;
SELECT attname, attnotnull FROM pg_catalog.pg_attribute
 WHERE attrelid = 'instagram_user_cache'::regclass AND attname IN ('notes', 'ig_account_id', 'ig_user_id')
 ORDER BY 1;

CREATE EXTENSION ig_identity;
SELECT string_agg(t.relname || ':' || t.oid || ':' || t.columns, ',' ORDER BY t.relname) = :'tables_before'
       AS same_tables_and_columns
  FROM (:tables_fp) t;
SELECT (:rows_fp) = :'rows_before' AS same_rows;
SELECT * FROM ig_identity_check();
SELECT * FROM ig_identity_repair();

\c :regress_db
DROP DATABASE igid_drop_a;
DROP DATABASE igid_drop_b;
