-- install_legacy: CREATE EXTENSION on the corrupted inbox of
-- test/fixtures/legacy_seed.sql (its header lists every defect) repairs it
-- in place: lost accounts recovered, duplicates merged column by column,
-- what cannot be kept quarantined with its reason, constraints in force, and
-- the app's own column and index untouched. Then the cases it must refuse.
\set SHOW_CONTEXT never
\set regress_db :DBNAME
\getenv abs_srcdir PG_ABS_SRCDIR
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_legacy;
DROP DATABASE IF EXISTS igid_legacy_bad;
RESET client_min_messages;
CREATE DATABASE igid_legacy;
\c igid_legacy

-- The seed (not echoed) ends with the verification queries that exposed
-- the bug.
\set ECHO none
\i :abs_srcdir/test/fixtures/legacy_seed.sql
\set ECHO all

SELECT pg_catalog.pg_relation_filenode('instagram_user_cache') AS cache_file,
       pg_catalog.pg_relation_filenode('instagram_messages') AS messages_file,
       pg_catalog.pg_relation_filenode('instagram_conversations') AS conversations_file \gset

-- The repair reports what it set aside.
CREATE EXTENSION ig_identity;

-- Repaired in place: no table was rewritten (adding columns with constant
-- defaults, NOT NULL and the unique index leave the rows where they are).
SELECT pg_catalog.pg_relation_filenode('instagram_user_cache') = :cache_file AS cache_not_rewritten,
       pg_catalog.pg_relation_filenode('instagram_messages') = :messages_file AS messages_not_rewritten,
       pg_catalog.pg_relation_filenode('instagram_conversations') = :conversations_file AS conversations_not_rewritten;

-- What was set aside, and why. [5] (john.smith) had lost its account, got
-- it back and was then absorbed by [4]; [12] got its account back and
-- turned out to be the business account itself; [3] talks to both accounts
-- (the candidates are kept); [10] to none.
SELECT q.reason, q.source_table,
       q.row_data ->> 'id' AS row_id,
       q.row_data ->> 'ig_account_id' AS ig_account_id,
       q.row_data ->> 'ig_user_id' AS ig_user_id,
       q.row_data ->> 'username' AS username,
       q.row_data -> 'ig_identity_candidates' AS candidates
  FROM ig_identity.quarantine q
 ORDER BY q.reason COLLATE "C", q.source_table COLLATE "C", q.row_data ->> 'id' COLLATE "C";

-- A quarantined row is the whole row: every column of the table (the app's
-- notes and id included) plus, when ambiguous, the candidates.
SELECT string_agg(k, ', ' ORDER BY k COLLATE "C") AS keys
  FROM ig_identity.quarantine q, jsonb_object_keys(q.row_data) k
 WHERE q.reason = 'ambiguous_account';
SELECT q.row_data - 'created_at' - 'updated_at' AS absorbed_row_8
  FROM ig_identity.quarantine q
 WHERE q.reason = 'merged_duplicate' AND q.row_data ->> 'id' = '8';

-- What stays. Recovered: [13] (107, only in B's messages) and, merged into
-- [4], john.smith. Merged (A,103): the freshest row [7] stays with its
-- notes; username and last_fetched_at are its own, name 'Stories v1' and
-- profile_pic come from [6] (the freshest rows with a value: [7] has none,
-- [8] was never fetched); profile_pic_url then follows profile_pic.
-- [1]: the url that disagreed now equals profile_pic; [2]: the pic comes
-- from the url.
SELECT id, ig_account_id, ig_user_id, username, name, profile_pic, profile_pic_url,
       last_fetched_at, notes, fetch_status, fetch_attempts
  FROM instagram_user_cache
 ORDER BY id;

SELECT * FROM ig_identity_check();

-- Constraints in force: NOT NULL keys and the unique (account, user) pair
-- under the name the app knows, next to the app's own primary key.
SELECT attname, attnotnull
  FROM pg_catalog.pg_attribute
 WHERE attrelid = 'instagram_user_cache'::regclass AND attname IN ('ig_account_id', 'ig_user_id')
 ORDER BY attname;
SELECT conname, pg_catalog.pg_get_constraintdef(oid) AS definition
  FROM pg_catalog.pg_constraint
 WHERE conrelid = 'instagram_user_cache'::regclass
 ORDER BY conname;
\set VERBOSITY terse
INSERT INTO instagram_user_cache (ig_account_id, ig_user_id) VALUES (NULL, '1000000000000199');
INSERT INTO instagram_user_cache (ig_account_id, ig_user_id) VALUES ('17841400000000001', '1000000000000101');
\set VERBOSITY default

-- The app's own things are still there: its column, its key, its index.
SELECT indexname, indexdef FROM pg_catalog.pg_indexes
 WHERE tablename = 'instagram_user_cache' ORDER BY indexname;
SELECT attname FROM pg_catalog.pg_attribute
 WHERE attrelid = 'instagram_user_cache'::regclass AND attname IN ('notes', 'id') ORDER BY attname;

-- Missing columns were added to every table.
SELECT c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relname IN ('instagram_conversations', 'instagram_messages', 'instagram_user_cache')
   AND c.relnamespace = 'public'::regnamespace
   AND a.attname IN ('updated_time', 'is_echo', 'fetch_status', 'last_error_code',
                     'fetch_attempts', 'next_fetch_at')
 ORDER BY c.relname, a.attnum;

-- Messages: the redelivered m_A102_1 is there once, under a unique index;
-- the app data's NULLs are not forced.
SELECT id, count(*) FROM instagram_messages GROUP BY id HAVING count(*) > 1;
SELECT indexname, indexdef FROM pg_catalog.pg_indexes
 WHERE tablename IN ('instagram_messages', 'instagram_conversations') ORDER BY indexname;

-- Still not members of the extension.
SELECT count(*) AS inbox_tables_in_extension
  FROM pg_catalog.pg_depend d
 WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'e'
   AND d.objid IN ('instagram_user_cache'::regclass, 'instagram_messages'::regclass,
                   'instagram_conversations'::regclass);

-- Idempotent: nothing left to do.
SELECT * FROM ig_identity_repair();

-- The inbox now shows names where it can, a masked id where nobody knows.
SELECT c.participant_igsid, ig_display_name(c.ig_account_id, c.participant_igsid) AS shown_as
  FROM instagram_conversations c ORDER BY c.id;

/*
 * What the repair refuses, with a clear error and the database unchanged.
 */
CREATE DATABASE igid_legacy_bad;
\c igid_legacy_bad
CREATE FUNCTION pg_temp.try(p_sql text, OUT state text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE p_sql;
    state := 'none';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
END $$;
\x on

-- Ids stored as numbers: refuse rather than guess.
CREATE TABLE instagram_user_cache (ig_account_id bigint, ig_user_id text, username text);
SELECT * FROM pg_temp.try('CREATE EXTENSION ig_identity');
-- Nothing was created.
SELECT count(*) AS leftovers FROM pg_catalog.pg_class
 WHERE relname IN ('instagram_conversations', 'instagram_messages')
    OR relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'ig_identity');

-- The unique key's name already used for something else.
DROP TABLE instagram_user_cache;
CREATE TABLE instagram_user_cache (ig_account_id text, ig_user_id text, username text);
CREATE INDEX instagram_user_cache_ig_account_id_ig_user_id_unique ON instagram_user_cache (ig_user_id);
SELECT * FROM pg_temp.try('CREATE EXTENSION ig_identity');

-- A view under the table's name.
DROP TABLE instagram_user_cache;
CREATE VIEW instagram_user_cache AS SELECT '1'::text AS ig_account_id, '2'::text AS ig_user_id;
SELECT * FROM pg_temp.try('CREATE EXTENSION ig_identity');
DROP VIEW instagram_user_cache;

-- A table with no participant id is not an identity cache.
CREATE TABLE instagram_user_cache (ig_account_id text, username text);
SELECT * FROM pg_temp.try('CREATE EXTENSION ig_identity');
DROP TABLE instagram_user_cache;
\x off

-- An app that already has its own unique index on the pair (any name, any
-- column order) keeps it; no second one is built.
CREATE TABLE instagram_user_cache (ig_user_id text, ig_account_id text, username text);
CREATE UNIQUE INDEX app_pair_idx ON instagram_user_cache (ig_user_id, ig_account_id);
CREATE EXTENSION ig_identity;
SELECT indexname FROM pg_catalog.pg_indexes WHERE tablename = 'instagram_user_cache' ORDER BY 1;
SELECT ig_upsert_participant_identity('17841400000000001', NULL, '{"id": "1000000000000101", "username": "jane.doe"}');
SELECT ig_account_id, ig_user_id, username FROM instagram_user_cache;

\c :regress_db
DROP DATABASE igid_legacy;
DROP DATABASE igid_legacy_bad;
