/*
 * ig_identity--1.0--1.1.sql — updates an installed ig_identity 1.0 to 1.1.
 *
 * Every change to SQL objects between the two versions is written here as
 * well as in src/sql/ (which builds the full ig_identity--1.1.sql). The
 * upgrade test (test/t/014_upgrade.pl) installs 1.0, fills every table,
 * runs ALTER EXTENSION ig_identity UPDATE and compares the catalogs with a
 * fresh 1.1 install: the two must not differ.
 *
 * The sections below are one per change, in the order they were made.
 */

\echo Use "ALTER EXTENSION ig_identity UPDATE TO '1.1'" to load this file. \quit



-- ==== issue 11: release engineering ====
-- ==== end of issue 11 ====



-- ==== issue 12: security and integrity ====
-- The inbox tables are read as their owner, in a security-restricted
-- operation, as they are written: the guard that let the extension owner
-- read them (check_inbox_tables) could not see every object that runs the
-- owner's code on a read, so it goes, and each read becomes a reader
-- function that touches one inbox table (see src/sql/30_fetch.sql).
DROP FUNCTION ig_identity.check_inbox_tables();
DROP FUNCTION ig_identity.refresh_targets(text);
DROP FUNCTION ig_identity.enqueue_participants(text, text[], boolean[], text);
DROP FUNCTION ig_identity.cache_row(text, text);
DROP FUNCTION ig_identity._worker_queue_stale(interval, int);

CREATE FUNCTION ig_identity.read_conversation_participants(p_ig_account_id text)
RETURNS text[]
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT c.participant_igsid), '{}')
      FROM @extschema@.instagram_conversations c
     WHERE c.ig_account_id = p_ig_account_id
       AND c.participant_igsid IS NOT NULL
$$;

CREATE FUNCTION ig_identity.read_message_participants(p_ig_account_id text, p_since timestamptz)
RETURNS text[]
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT u.id), '{}')
      FROM @extschema@.instagram_messages m
     CROSS JOIN LATERAL (VALUES (m.from_id), (m.to_id)) AS u(id)
     WHERE m.ig_account_id = p_ig_account_id
       AND m.created_at >= p_since
       AND u.id IS NOT NULL
$$;

CREATE FUNCTION ig_identity.read_identities_wanted(p_ig_account_id text, p_ig_user_ids text[],
                                                   p_inbound boolean[])
RETURNS text[]
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT s.ig_user_id), '{}')
      FROM unnest(p_ig_user_ids, p_inbound) AS s(ig_user_id, inbound)
      LEFT JOIN @extschema@.instagram_user_cache c
             ON c.ig_account_id = p_ig_account_id AND c.ig_user_id = s.ig_user_id
     WHERE s.ig_user_id IS NOT NULL
       AND (c.ig_user_id IS NULL
            OR c.username IS NULL AND c.fetch_status IN ('ok', 'error')
            OR (s.inbound AND c.fetch_status = 'consent_required'))
$$;

CREATE FUNCTION ig_identity.enqueue_participants(p_ig_account_id text, p_ig_user_ids text[],
                                                 p_reason text)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH want AS (
        SELECT DISTINCT s.ig_user_id
          FROM unnest(p_ig_user_ids) AS s(ig_user_id)
          JOIN ig_identity.accounts a ON a.ig_account_id = p_ig_account_id
         WHERE s.ig_user_id IS NOT NULL
           AND s.ig_user_id <> a.ig_account_id AND s.ig_user_id <> a.self_igsid
    ), ins AS (
        INSERT INTO ig_identity.refresh_queue AS q (ig_account_id, ig_user_id, reason)
        SELECT p_ig_account_id, w.ig_user_id, p_reason FROM want w
        ON CONFLICT (ig_account_id, ig_user_id) DO UPDATE
           SET not_before = LEAST(q.not_before, pg_catalog.now())
         WHERE q.leased_until IS NULL OR q.leased_until < pg_catalog.now()
        RETURNING 1
    )
    SELECT count(*) FROM ins
$$;

CREATE FUNCTION ig_identity.cache_row(p_ig_account_id text, p_ig_user_id text)
RETURNS @extschema@.ig_identity_profile
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.ig_account_id, c.ig_user_id, c.username, c.name, c.profile_pic, c.fetch_status,
           c.last_error_code, c.last_fetched_at,
           COALESCE(NULLIF(c.username, ''), NULLIF(c.name, ''),
                    'user_******' || pg_catalog.right(COALESCE(c.ig_user_id, ''), 4))
      FROM @extschema@.instagram_user_cache c
     WHERE c.ig_account_id = p_ig_account_id AND c.ig_user_id = p_ig_user_id
     LIMIT 1
$$;

CREATE FUNCTION ig_identity._worker_stale_accounts()
RETURNS TABLE (ig_account_id text, self_igsid text, queued bigint)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.ig_account_id, a.self_igsid,
           (SELECT pg_catalog.count(*) FROM ig_identity.refresh_queue q
             WHERE q.ig_account_id = a.ig_account_id)
      FROM ig_identity.accounts a
     WHERE a.status IN ('active', 'paused')
       AND (a.paused_until IS NULL OR a.paused_until <= pg_catalog.now())
       AND (a.status = 'active' OR a.paused_until IS NOT NULL)
     ORDER BY a.ig_account_id
$$;

CREATE FUNCTION ig_identity.read_stale_identities(p_ig_account_ids text[], p_self_igsids text[],
                                                  p_stale_after_s int, p_limit int)
RETURNS text[]
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH due AS (
        SELECT c.ig_account_id, c.ig_user_id,
               CASE WHEN c.username IS NULL THEN 'new' ELSE 'stale' END AS reason,
               pg_catalog.row_number() OVER (ORDER BY c.last_fetched_at NULLS FIRST) AS ord
          FROM @extschema@.instagram_user_cache c
          JOIN unnest(p_ig_account_ids, p_self_igsids) AS a(ig_account_id, self_igsid)
            ON a.ig_account_id = c.ig_account_id
         WHERE c.ig_user_id <> a.ig_account_id
           AND c.ig_user_id IS DISTINCT FROM a.self_igsid
           AND c.fetch_status IS DISTINCT FROM 'consent_required'
           AND (c.next_fetch_at IS NULL OR c.next_fetch_at <= pg_catalog.now())
           AND (c.last_fetched_at IS NULL
                OR c.last_fetched_at < pg_catalog.now() - pg_catalog.make_interval(secs => p_stale_after_s)
                OR (c.username IS NULL AND c.fetch_status = 'ok'))
         ORDER BY c.last_fetched_at NULLS FIRST
         LIMIT p_limit
    )
    SELECT COALESCE(pg_catalog.array_agg(v.x ORDER BY d.ord, v.k), '{}')
      FROM due d
     CROSS JOIN LATERAL (VALUES (1, d.ig_account_id), (2, d.ig_user_id), (3, d.reason)) AS v(k, x)
$$;

CREATE FUNCTION ig_identity._worker_queue_stale(p_candidates text[], p_limit int)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH cand AS (
        SELECT p_candidates[3 * i - 2] AS ig_account_id, p_candidates[3 * i - 1] AS ig_user_id,
               p_candidates[3 * i] AS reason, i
          FROM pg_catalog.generate_series(1, COALESCE(pg_catalog.cardinality(p_candidates), 0) / 3) AS i
    ), due AS (
        SELECT c.ig_account_id, c.ig_user_id, c.reason
          FROM cand c
          JOIN ig_identity._worker_stale_accounts() a ON a.ig_account_id = c.ig_account_id
         WHERE c.ig_user_id IS NOT NULL
           AND c.ig_user_id <> a.ig_account_id
           AND c.ig_user_id IS DISTINCT FROM a.self_igsid
           AND c.reason IN ('new', 'stale')
           AND NOT EXISTS (SELECT 1 FROM ig_identity.refresh_queue q
                            WHERE q.ig_account_id = c.ig_account_id
                              AND q.ig_user_id = c.ig_user_id)
         ORDER BY c.i
         LIMIT p_limit
    ), ins AS (
        INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
        SELECT d.ig_account_id, d.ig_user_id, d.reason, pg_catalog.now() FROM due d
        ON CONFLICT (ig_account_id, ig_user_id) DO NOTHING
        RETURNING 1
    )
    SELECT count(*) FROM ins
$$;

REVOKE ALL ON FUNCTION ig_identity.read_conversation_participants(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.read_message_participants(text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.read_identities_wanted(text, text[], boolean[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.enqueue_participants(text, text[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.cache_row(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity._worker_stale_accounts() FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.read_stale_identities(text[], text[], int, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity._worker_queue_stale(text[], int) FROM PUBLIC;
-- An inbox table of the extension's schema, or NULL when absent. Anything
-- but a plain table under that name (a view, a partitioned table whose ctid
-- is not unique) is refused rather than guessed at, and so is a table with
-- inheritance children: a parent's rows and its children's share ctids.
CREATE OR REPLACE FUNCTION ig_identity.inbox_table(p_nsp oid, p_name name)
RETURNS regclass
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_oid     oid;
    v_relkind "char";
BEGIN
    SELECT c.oid, c.relkind INTO v_oid, v_relkind
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = p_nsp AND c.relname = p_name;
    IF v_oid IS NULL THEN
        RETURN NULL;
    END IF;
    IF v_relkind <> 'r' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'wrong_object_type',
            MESSAGE = pg_catalog.format('cannot repair %s: it is not a plain table',
                                        v_oid::pg_catalog.regclass),
            DETAIL  = pg_catalog.format('Its relkind is "%s"; ig_identity repairs ordinary tables only.',
                                        v_relkind),
            HINT    = 'Move it out of the way or convert it to an ordinary table, then install ig_identity again.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = v_oid) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'feature_not_supported',
            MESSAGE = pg_catalog.format('cannot repair %s: it has inheritance children',
                                        v_oid::pg_catalog.regclass),
            DETAIL  = 'Rows of a table and of its children share ctids, so the repair could not tell them apart.',
            HINT    = 'Detach the children with ALTER TABLE ... NO INHERIT, then install ig_identity again.';
    END IF;
    RETURN v_oid::pg_catalog.regclass;
END
$fn$;
-- ---- begin: the repair as the inbox tables' owners (generated from src/sql/20_repair.sql) ----
-- Runs one statement (written in this file; $1 is p_arg) as the owner of
-- p_rel in a security-restricted operation, so the app's triggers, defaults
-- and index expressions never run with the installer's rights; returns the
-- statement's first column (jsonb) of every row.  Its deferred constraint
-- triggers fire inside too (src/pg/sql_as_owner.cpp).  Anything that
-- touches ig_identity's own tables stays with the caller.
CREATE FUNCTION ig_identity.as_owner(p_rel regclass, p_sql text, p_arg jsonb DEFAULT NULL)
RETURNS jsonb[]
LANGUAGE C
VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_identity_as_owner';
-- An inbox table of the extension's schema, or NULL when absent. Anything
-- but a plain table under that name (a view, a foreign table) is refused
-- rather than guessed at, and so is a table with inheritance children: a
-- parent's rows and its children's share ctids. Messages may be
-- declaratively partitioned (by month is common): the repair tells their
-- rows apart by tableoid and ctid, and the writers keep ids unique across
-- partitions (36_partitioned_inbox.sql).
CREATE OR REPLACE FUNCTION ig_identity.inbox_table(p_nsp oid, p_name name)
RETURNS regclass
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_oid     oid;
    v_relkind "char";
BEGIN
    SELECT c.oid, c.relkind INTO v_oid, v_relkind
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = p_nsp AND c.relname = p_name;
    IF v_oid IS NULL THEN
        RETURN NULL;
    END IF;
    IF v_relkind = 'p' AND p_name = 'instagram_messages' THEN
        -- a partitioned table's children are all partitions
        RETURN v_oid::pg_catalog.regclass;
    END IF;
    IF v_relkind <> 'r' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'wrong_object_type',
            MESSAGE = pg_catalog.format('cannot repair %s: it is not a plain table',
                                        v_oid::pg_catalog.regclass),
            DETAIL  = pg_catalog.format('Its relkind is "%s"; ig_identity repairs ordinary tables (and a partitioned instagram_messages).',
                                        v_relkind),
            HINT    = 'Move it out of the way or convert it to an ordinary table, then install ig_identity again.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = v_oid) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'feature_not_supported',
            MESSAGE = pg_catalog.format('cannot repair %s: it has inheritance children',
                                        v_oid::pg_catalog.regclass),
            DETAIL  = 'Rows of a table and of its children share ctids, so the repair could not tell them apart.',
            HINT    = 'Detach the children with ALTER TABLE ... NO INHERIT, or use declarative partitioning, then install ig_identity again.';
    END IF;
    RETURN v_oid::pg_catalog.regclass;
END
$fn$;
-- The partition key columns of a partitioned table (empty for a plain
-- one); a key on an expression is refused: no unique index can hold it.
CREATE FUNCTION ig_identity.partition_key_columns(p_rel regclass)
RETURNS name[]
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_cols name[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_partitioned_table p WHERE p.partrelid = p_rel) THEN
        RETURN '{}';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_partitioned_table p
                WHERE p.partrelid = p_rel AND 0 = ANY (p.partattrs::pg_catalog.int2[])) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'feature_not_supported',
            MESSAGE = pg_catalog.format('cannot repair %s: it is partitioned on an expression', p_rel),
            DETAIL  = 'ig_identity needs a unique index on id and the partition key, which an expression key cannot be part of.',
            HINT    = 'Partition it on columns (created_at, for instance), then install ig_identity again.';
    END IF;
    SELECT pg_catalog.array_agg(a.attname ORDER BY k.n) INTO v_cols
      FROM pg_catalog.pg_partitioned_table p,
           pg_catalog.unnest(p.partattrs::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, n),
           pg_catalog.pg_attribute a
     WHERE p.partrelid = p_rel AND a.attrelid = p_rel AND a.attnum = k.attnum;
    RETURN v_cols;
END
$fn$;
-- p_columns is {{name, definition}, ...}, definitions written in this file.
-- Only fast ADD COLUMNs (constant or stable defaults): no table rewrite.
-- Columns the app added are never touched.
CREATE OR REPLACE FUNCTION ig_identity.add_missing_columns(p_rel regclass, p_columns text[])
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_added int := 0;
BEGIN
    FOR i IN 1 .. pg_catalog.array_length(p_columns, 1) LOOP
        IF NOT ig_identity.has_column(p_rel, p_columns[i][1]::name) THEN
            PERFORM ig_identity.as_owner(p_rel, pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s',
                                                                  p_rel, p_columns[i][1], p_columns[i][2]));
            v_added := v_added + 1;
        END IF;
    END LOOP;
    RETURN v_added;
END
$fn$;
-- Moves the rows matching p_where (a predicate written in this file, over
-- alias t; $1 is p_arg) to the quarantine. Returns how many. The DELETE
-- runs as the table's owner, the INSERT into the quarantine as the caller.
DROP FUNCTION ig_identity.quarantine_rows(regclass, text, text);
CREATE FUNCTION ig_identity.quarantine_rows(p_rel regclass, p_reason text, p_where text,
                                            p_arg jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_moved bigint;
BEGIN
    INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
    SELECT ig_identity.table_label(p_rel), p_reason, r.row_data
      FROM pg_catalog.unnest(ig_identity.as_owner(p_rel, pg_catalog.format(
               'DELETE FROM %s t WHERE %s RETURNING pg_catalog.to_jsonb(t)', p_rel, p_where),
               p_arg)) AS r(row_data);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    RETURN v_moved;
END
$fn$;
-- Conversations and messages are keyed by their Graph id; the webhook and
-- sync paths upsert on it. Webhook redeliveries in a legacy table without
-- that key are set aside (one row of each id stays), then the index is built.
-- A partitioned table cannot have a unique index on id alone: its index is
-- on id and the partition key, and the writers keep ids unique across the
-- partitions (store_messages_partitioned); the repair sets aside duplicate
-- ids every time, rows told apart by tableoid and ctid.
CREATE OR REPLACE FUNCTION ig_identity.ensure_unique_id(p_rel regclass, p_index name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_moved bigint;
    v_key   name[] := ARRAY['id']::name[];
    v_part  name[] := ig_identity.partition_key_columns(p_rel);
BEGIN
    IF pg_catalog.cardinality(v_part) = 0 AND ig_identity.has_unique_index(p_rel, v_key) THEN
        RETURN 0;
    END IF;
    v_key := v_key OPERATOR(pg_catalog.||) pg_catalog.array_remove(v_part, 'id'::name);
    -- Keep a row that knows its account, then the physically first one.
    -- As the table's owner; the quarantine is written as the caller.
    INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
    SELECT ig_identity.table_label(p_rel), 'duplicate_id', r.row_data
      FROM pg_catalog.unnest(ig_identity.as_owner(p_rel, pg_catalog.format(
        'WITH ranked AS (
             SELECT t.tableoid AS rel, t.ctid AS tid,
                    pg_catalog.row_number() OVER (PARTITION BY t.id
                                                  ORDER BY t.ig_account_id IS NULL, t.tableoid, t.ctid) AS n
               FROM %1$s t
              WHERE t.id IS NOT NULL)
         DELETE FROM %1$s t USING ranked r
          WHERE t.tableoid = r.rel AND t.ctid = r.tid AND r.n > 1
      RETURNING pg_catalog.to_jsonb(t)', p_rel))) AS r(row_data);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF NOT ig_identity.has_unique_index(p_rel, v_key) THEN
        PERFORM ig_identity.require_free_name(p_rel, p_index,
            '(' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(v_key, ', ') OPERATOR(pg_catalog.||) ')');
        PERFORM ig_identity.as_owner(p_rel, pg_catalog.format('CREATE UNIQUE INDEX %I ON %s (%s)', p_index, p_rel,
            (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') FROM pg_catalog.unnest(v_key) AS c)));
    END IF;
    RETURN v_moved;
END
$fn$;
CREATE OR REPLACE FUNCTION @extschema@.ig_identity_repair(
    OUT tables_created   int,
    OUT columns_added    int,
    OUT rows_recovered   bigint,
    OUT rows_merged      bigint,
    OUT rows_quarantined bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    -- '@extschema@' is the quoted schema name; regnamespace parses it back.
    v_nsp    oid := '@extschema@'::pg_catalog.regnamespace;
    v_schema name;
    v_rel    regclass;
    v_label  text;
    v_n      bigint;
    v_candidates text; -- the account-candidates CTE, shared by recovery and quarantine
    v_pairs  jsonb;    -- [participant, account] pairs of the conversations and messages
    v_selves jsonb;    -- {account: its own id}
    v_rows   jsonb[];
BEGIN
    tables_created := 0;
    columns_added := 0;
    rows_recovered := 0;
    rows_merged := 0;
    rows_quarantined := 0;
    SELECT n.nspname INTO v_schema FROM pg_catalog.pg_namespace n WHERE n.oid = v_nsp;

    /*
     * Conversations and messages first: the user cache's lost accounts are
     * recovered from them, after their duplicates are gone.
     */
    v_rel := ig_identity.inbox_table(v_nsp, 'instagram_conversations');
    IF v_rel IS NULL THEN
        EXECUTE pg_catalog.format(
            'CREATE TABLE %I.instagram_conversations (
                 id                text PRIMARY KEY,
                 ig_account_id     text NOT NULL,
                 location_id       text,
                 participant_igsid text,
                 updated_time      timestamptz,
                 created_at        timestamptz NOT NULL DEFAULT now())', v_schema);
        v_rel := ig_identity.inbox_table(v_nsp, 'instagram_conversations');
        EXECUTE pg_catalog.format(
            'CREATE INDEX instagram_conversations_location_id_idx ON %s (location_id)', v_rel);
        EXECUTE pg_catalog.format(
            'CREATE INDEX instagram_conversations_account_participant_idx
                 ON %s (ig_account_id, participant_igsid)', v_rel);
        PERFORM ig_identity.detach_from_extension(v_rel);
        tables_created := tables_created + 1;
    ELSE
        PERFORM ig_identity.require_text_columns(v_rel,
            ARRAY['id', 'ig_account_id', 'location_id', 'participant_igsid']::name[]);
        -- Added nullable: existing rows have no value, and their app data
        -- is not ours to force.
        columns_added := columns_added + ig_identity.add_missing_columns(v_rel, ARRAY[
            ['id',                'text'],
            ['ig_account_id',     'text'],
            ['location_id',       'text'],
            ['participant_igsid', 'text'],
            ['updated_time',      'timestamptz'],
            ['created_at',        'timestamptz NOT NULL DEFAULT now()']]);
        rows_quarantined := rows_quarantined
            + ig_identity.ensure_unique_id(v_rel, 'instagram_conversations_id_unique');
    END IF;

    v_rel := ig_identity.inbox_table(v_nsp, 'instagram_messages');
    IF v_rel IS NULL THEN
        EXECUTE pg_catalog.format(
            'CREATE TABLE %I.instagram_messages (
                 id              text PRIMARY KEY,
                 conversation_id text,
                 ig_account_id   text NOT NULL,
                 from_id         text,
                 to_id           text,
                 message         text,
                 created_at      timestamptz,
                 is_echo         boolean NOT NULL DEFAULT false)', v_schema);
        v_rel := ig_identity.inbox_table(v_nsp, 'instagram_messages');
        EXECUTE pg_catalog.format(
            'CREATE INDEX instagram_messages_account_created_idx ON %s (ig_account_id, created_at)',
            v_rel);
        PERFORM ig_identity.detach_from_extension(v_rel);
        tables_created := tables_created + 1;
    ELSE
        PERFORM ig_identity.require_text_columns(v_rel,
            ARRAY['id', 'conversation_id', 'ig_account_id', 'from_id', 'to_id']::name[]);
        columns_added := columns_added + ig_identity.add_missing_columns(v_rel, ARRAY[
            ['id',              'text'],
            ['conversation_id', 'text'],
            ['ig_account_id',   'text'],
            ['from_id',         'text'],
            ['to_id',           'text'],
            ['message',         'text'],
            ['created_at',      'timestamptz'],
            ['is_echo',         'boolean NOT NULL DEFAULT false']]);
        rows_quarantined := rows_quarantined
            + ig_identity.ensure_unique_id(v_rel, 'instagram_messages_id_unique');
    END IF;

    v_rel := ig_identity.inbox_table(v_nsp, 'instagram_user_cache');
    IF v_rel IS NULL THEN
        EXECUTE pg_catalog.format(
            'CREATE TABLE %I.instagram_user_cache (
                 ig_account_id   text NOT NULL,
                 ig_user_id      text NOT NULL,
                 username        text,
                 name            text,
                 profile_pic     text,
                 profile_pic_url text,
                 last_fetched_at timestamptz,
                 fetch_status    text NOT NULL DEFAULT ''ok''
                                 CHECK (fetch_status IN (''ok'', ''consent_required'', ''unavailable'', ''error'')),
                 last_error_code int,
                 fetch_attempts  int NOT NULL DEFAULT 0,
                 next_fetch_at   timestamptz,
                 created_at      timestamptz NOT NULL DEFAULT now(),
                 updated_at      timestamptz NOT NULL DEFAULT now(),
                 CONSTRAINT instagram_user_cache_ig_account_id_ig_user_id_unique
                     PRIMARY KEY (ig_account_id, ig_user_id))', v_schema);
        v_rel := ig_identity.inbox_table(v_nsp, 'instagram_user_cache');
        PERFORM ig_identity.detach_from_extension(v_rel);
        tables_created := tables_created + 1;
        RETURN;
    END IF;

    /*
     * A legacy identity cache: the table that held the bug.
     */
    v_label := ig_identity.table_label(v_rel);
    IF NOT ig_identity.has_column(v_rel, 'ig_user_id') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'undefined_column',
            MESSAGE = pg_catalog.format('cannot repair %s: it has no column ig_user_id', v_rel),
            DETAIL  = 'Without the participant id the rows cannot be identified.',
            HINT    = 'Rename the table if it is not the inbox identity cache, then install ig_identity again.';
    END IF;
    PERFORM ig_identity.require_text_columns(v_rel, ARRAY['ig_account_id', 'ig_user_id']::name[]);
    -- ig_account_id, when missing, is added nullable and recovered below
    -- like any other lost account.
    columns_added := columns_added + ig_identity.add_missing_columns(v_rel, ARRAY[
        ['ig_account_id',   'text'],
        ['username',        'text'],
        ['name',            'text'],
        ['profile_pic',     'text'],
        ['profile_pic_url', 'text'],
        ['last_fetched_at', 'timestamptz'],
        ['fetch_status',    'text NOT NULL DEFAULT ''ok'' CHECK (fetch_status IN (''ok'', ''consent_required'', ''unavailable'', ''error''))'],
        ['last_error_code', 'int'],
        ['fetch_attempts',  'int NOT NULL DEFAULT 0'],
        ['next_fetch_at',   'timestamptz'],
        ['created_at',      'timestamptz NOT NULL DEFAULT now()'],
        ['updated_at',      'timestamptz NOT NULL DEFAULT now()']]);

    -- A row without a participant id identifies nobody.
    rows_quarantined := rows_quarantined
        + ig_identity.quarantine_rows(v_rel, 'missing_user_id', 't.ig_user_id IS NULL');

    /*
     * Lost accounts. The accounts that talk to a participant are the ones
     * whose conversations name it or whose messages it sent or received.
     * Exactly one: that is its account. None or several: the row cannot be
     * attributed and goes to the quarantine, with the candidates. Each
     * table is read as its own owner; the pairs travel as $1.
     */
    SELECT COALESCE(pg_catalog.jsonb_agg(DISTINCT p.pair), '[]')
      INTO v_pairs
      FROM pg_catalog.unnest(
               ig_identity.as_owner(ig_identity.inbox_table(v_nsp, 'instagram_conversations'), pg_catalog.format(
                   'SELECT DISTINCT pg_catalog.jsonb_build_array(c.participant_igsid::text, c.ig_account_id::text)
                      FROM %s c
                     WHERE c.participant_igsid IS NOT NULL AND c.ig_account_id IS NOT NULL',
                   ig_identity.inbox_table(v_nsp, 'instagram_conversations')))
               OPERATOR(pg_catalog.||)
               ig_identity.as_owner(ig_identity.inbox_table(v_nsp, 'instagram_messages'), pg_catalog.format(
                   'SELECT DISTINCT pg_catalog.jsonb_build_array(u.id::text, m.ig_account_id::text)
                      FROM %s m CROSS JOIN LATERAL (VALUES (m.from_id), (m.to_id)) AS u(id)
                     WHERE u.id IS NOT NULL AND m.ig_account_id IS NOT NULL',
                   ig_identity.inbox_table(v_nsp, 'instagram_messages')))) AS p(pair);
    v_candidates := pg_catalog.format(
        'WITH pairs AS (
             SELECT p.pair ->> 0 AS uid, p.pair ->> 1 AS acc
               FROM pg_catalog.jsonb_array_elements($1) AS p(pair)),
         cand AS (
             SELECT u.ctid AS tid,
                    pg_catalog.array_agg(DISTINCT p.acc) FILTER (WHERE p.acc IS NOT NULL) AS accounts
               FROM %1$s u LEFT JOIN pairs p ON p.uid = u.ig_user_id::text
              WHERE u.ig_account_id IS NULL
              GROUP BY u.ctid)', v_rel);
    v_rows := ig_identity.as_owner(v_rel, v_candidates || pg_catalog.format('
         UPDATE %s u SET ig_account_id = c.accounts[1]
           FROM cand c
          WHERE u.ctid = c.tid AND pg_catalog.cardinality(c.accounts) = 1
      RETURNING pg_catalog.to_jsonb(1)', v_rel), v_pairs);
    rows_recovered := rows_recovered + pg_catalog.cardinality(v_rows);

    INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
    SELECT v_label,
           CASE WHEN m.r -> 'accounts' = 'null' THEN 'no_account_found' ELSE 'ambiguous_account' END,
           CASE WHEN m.r -> 'accounts' = 'null' THEN m.r -> 'row_data'
                ELSE (m.r -> 'row_data') || pg_catalog.jsonb_build_object('ig_identity_candidates',
                                                                          m.r -> 'accounts')
           END
      FROM pg_catalog.unnest(ig_identity.as_owner(v_rel, v_candidates || pg_catalog.format('
         DELETE FROM %1$s u USING cand c
          WHERE u.ctid = c.tid
      RETURNING pg_catalog.jsonb_build_object(''accounts'', pg_catalog.to_jsonb(c.accounts),
                                              ''row_data'', pg_catalog.to_jsonb(u))', v_rel),
             v_pairs)) AS m(r);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    rows_quarantined := rows_quarantined + v_n;

    -- The business account stored as its own participant: the trap that
    -- made inboxes show the shop's name for the customer. The accounts'
    -- own ids travel as $1 (the owner cannot read ig_identity.accounts).
    SELECT COALESCE(pg_catalog.jsonb_object_agg(a.ig_account_id, a.self_igsid), '{}')
      INTO v_selves
      FROM ig_identity.accounts a
     WHERE a.self_igsid IS NOT NULL;
    rows_quarantined := rows_quarantined + ig_identity.quarantine_rows(v_rel, 'self_identity',
        't.ig_user_id::text = t.ig_account_id::text
         OR t.ig_user_id::text = ($1 ->> t.ig_account_id::text)', v_selves);

    /*
     * Duplicate (ig_account_id, ig_user_id) rows. The freshest row stays
     * (it keeps the app's own columns and fetch state); each identity column
     * takes the freshest non-null value of the group. The absorbed rows go to
     * the quarantine as they were, so nothing is lost. One statement, as the
     * table's owner, so the ctids the CTEs computed are the ones the UPDATE
     * and DELETE see; it returns the absorbed rows.
     */
    v_rows := ig_identity.as_owner(v_rel, pg_catalog.format(
        'WITH g AS (
             SELECT u.ig_account_id AS k_account, u.ig_user_id AS k_user,
                    (pg_catalog.array_agg(u.ctid ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid))[1] AS keep,
                    (pg_catalog.array_agg(u.username ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                         FILTER (WHERE u.username IS NOT NULL))[1] AS username,
                    (pg_catalog.array_agg(u.name ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                         FILTER (WHERE u.name IS NOT NULL))[1] AS name,
                    (pg_catalog.array_agg(u.profile_pic ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                         FILTER (WHERE u.profile_pic IS NOT NULL))[1] AS profile_pic,
                    (pg_catalog.array_agg(u.profile_pic_url ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                         FILTER (WHERE u.profile_pic_url IS NOT NULL))[1] AS profile_pic_url,
                    (pg_catalog.array_agg(u.last_fetched_at ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                         FILTER (WHERE u.last_fetched_at IS NOT NULL))[1] AS last_fetched_at
               FROM %1$s u
              GROUP BY u.ig_account_id, u.ig_user_id
             HAVING pg_catalog.count(*) > 1),
         kept AS (
             UPDATE %1$s u
                SET username = g.username, name = g.name, profile_pic = g.profile_pic,
                    profile_pic_url = g.profile_pic_url, last_fetched_at = g.last_fetched_at
               FROM g
              WHERE u.ctid = g.keep
          RETURNING 1)
         DELETE FROM %1$s u USING g
          WHERE u.ig_account_id = g.k_account AND u.ig_user_id = g.k_user AND u.ctid <> g.keep
      RETURNING pg_catalog.to_jsonb(u)',
        v_rel));
    INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
    SELECT v_label, 'merged_duplicate', r.row_data
      FROM pg_catalog.unnest(v_rows) AS r(row_data);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    rows_quarantined := rows_quarantined + v_n;
    SELECT pg_catalog.count(*) INTO v_n
      FROM (SELECT DISTINCT r.row_data ->> 'ig_account_id', r.row_data ->> 'ig_user_id'
              FROM pg_catalog.unnest(v_rows) AS r(row_data)) AS d;
    rows_merged := rows_merged + v_n;

    -- profile_pic is what current code writes; profile_pic_url is kept
    -- equal for older readers.
    PERFORM ig_identity.as_owner(v_rel, pg_catalog.format(
        'UPDATE %s u
            SET profile_pic = COALESCE(u.profile_pic, u.profile_pic_url),
                profile_pic_url = COALESCE(u.profile_pic, u.profile_pic_url)
          WHERE u.profile_pic IS DISTINCT FROM u.profile_pic_url', v_rel));

    IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = v_rel AND a.attname IN ('ig_account_id', 'ig_user_id')
                  AND NOT a.attnotnull) THEN
        PERFORM ig_identity.as_owner(v_rel, pg_catalog.format(
            'ALTER TABLE %s ALTER COLUMN ig_account_id SET NOT NULL,
                            ALTER COLUMN ig_user_id SET NOT NULL', v_rel));
    END IF;

    -- A UNIQUE constraint, not a primary key: the app's table may already
    -- have one (an id column).
    IF NOT ig_identity.has_unique_index(v_rel, ARRAY['ig_account_id', 'ig_user_id']::name[]) THEN
        PERFORM ig_identity.require_free_name(v_rel,
            'instagram_user_cache_ig_account_id_ig_user_id_unique', '(ig_account_id, ig_user_id)');
        PERFORM ig_identity.as_owner(v_rel, pg_catalog.format(
            'ALTER TABLE %s ADD CONSTRAINT instagram_user_cache_ig_account_id_ig_user_id_unique
                 UNIQUE (ig_account_id, ig_user_id)', v_rel));
    END IF;
END
$fn$;
REVOKE ALL ON FUNCTION ig_identity.as_owner(regclass, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.quarantine_rows(regclass, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.partition_key_columns(regclass) FROM PUBLIC;
-- ---- end: the repair as the inbox tables' owners ----
-- ---- begin: ids of another account ----
-- (src/sql/35_tenant_ids.sql; the store upserts of 30_fetch.sql, which since the mixed-owners change read no other table)
/* ------------------------------------------------------------------------
 * Ids of another account (issue 12)
 *
 * Conversation and message ids are the Graph API's and the inbox tables are
 * keyed on them alone, so a write for account A can meet a row that account
 * B already stores under the same id (a webhook misrouted by the app, two
 * tenants of one database fed the same fixture, a buggy proxy). The upserts
 * (store_conversations, store_messages) never change such a row; once they
 * have run, the readers below tell which ids are stored for another
 * account, and A's copies of those rows go to ig_identity.quarantine with
 * reason 'id_of_another_account' (once per distinct copy), with a WARNING
 * naming how many. Both stay: B's row where it was, A's copy in the
 * quarantine.
 * ------------------------------------------------------------------------ */

-- Readers (run as the table's owner, like every inbox read): which of
-- p_ids the table stores for an account other than p_ig_account_id.
CREATE FUNCTION ig_identity.read_foreign_conversation_ids(p_ig_account_id text, p_ids text[])
RETURNS text[]
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT c.id::text), '{}')
      FROM @extschema@.instagram_conversations c
     WHERE c.id::text = ANY (p_ids)
       AND c.ig_account_id::text IS DISTINCT FROM p_ig_account_id
$$;

CREATE FUNCTION ig_identity.read_foreign_message_ids(p_ig_account_id text, p_ids text[])
RETURNS text[]
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT m.id::text), '{}')
      FROM @extschema@.instagram_messages m
     WHERE m.id::text = ANY (p_ids)
       AND m.ig_account_id::text IS DISTINCT FROM p_ig_account_id
$$;

-- Stores the copies (as the extension owner: the quarantine is private);
-- a copy already set aside is not stored again. Returns how many.
CREATE FUNCTION ig_identity.set_aside_foreign_ids(p_table text, p_ig_account_id text, p_rows jsonb)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_label text := ig_identity.table_label(
        pg_catalog.format('%s.%I', '@extschema@', p_table)::pg_catalog.regclass);
    v_n bigint;
BEGIN
    INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
    SELECT DISTINCT v_label, 'id_of_another_account', r.row_data
      FROM pg_catalog.jsonb_array_elements(p_rows) AS r(row_data)
     WHERE NOT EXISTS (SELECT 1 FROM ig_identity.quarantine q
                        WHERE q.reason OPERATOR(pg_catalog.=) 'id_of_another_account'
                          AND q.source_table OPERATOR(pg_catalog.=) v_label
                          AND q.row_data OPERATOR(pg_catalog.=) r.row_data);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n > 0 THEN
        RAISE WARNING USING
            MESSAGE = pg_catalog.format('ig_identity kept %s of account %s out of %s: another account stores %s',
                                        v_n OPERATOR(pg_catalog.||) CASE WHEN v_n OPERATOR(pg_catalog.=) 1 THEN ' row' ELSE ' rows' END,
                                        p_ig_account_id, v_label,
                                        CASE WHEN v_n OPERATOR(pg_catalog.=) 1 THEN 'its id' ELSE 'their ids' END),
            DETAIL  = 'The other account''s rows are unchanged; these copies are in ig_identity.quarantine with reason id_of_another_account.',
            HINT    = 'Check which account the app routes these webhooks or syncs to: one conversation or message belongs to one account.';
    END IF;
    RETURN v_n;
END
$fn$;

CREATE FUNCTION ig_identity.set_aside_foreign_conversations(
    p_ig_account_id text, p_location_id text, p_ids text[], p_participants text[],
    p_updated timestamptz[], p_foreign text[])
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ig_identity.set_aside_foreign_ids('instagram_conversations', p_ig_account_id,
        COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
            'id', s.id, 'ig_account_id', p_ig_account_id, 'location_id', p_location_id,
            'participant_igsid', s.participant, 'updated_time', s.updated)), '[]'))
      FROM unnest(p_ids, p_participants, p_updated) AS s(id, participant, updated)
     WHERE s.id OPERATOR(pg_catalog.=) ANY (p_foreign) -- (unnest of several arrays: the FROM form, unqualified)
$$;

CREATE FUNCTION ig_identity.set_aside_foreign_messages(
    p_ig_account_id text, p_ids text[], p_conversation_ids text[], p_from text[], p_to text[],
    p_texts text[], p_created timestamptz[], p_echo boolean[], p_foreign text[])
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ig_identity.set_aside_foreign_ids('instagram_messages', p_ig_account_id,
        COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
            'id', s.id, 'conversation_id', s.conversation_id, 'ig_account_id', p_ig_account_id,
            'from_id', s.from_id, 'to_id', s.to_id, 'message', s.message,
            'created_at', s.created_at, 'is_echo', s.is_echo)), '[]'))
      FROM unnest(p_ids, p_conversation_ids, p_from, p_to, p_texts, p_created, p_echo)
           AS s(id, conversation_id, from_id, to_id, message, created_at, is_echo)
     WHERE s.id OPERATOR(pg_catalog.=) ANY (p_foreign) -- (unnest of several arrays: the FROM form, unqualified)
$$;
-- Upserts one page of conversations from the Conversations API and returns
-- the ids of those that are new or changed since the last sync, whose
-- messages are worth storing (running a sync twice stores nothing twice).
-- Like store_messages, it touches only inbox tables and runs with its
-- caller's rights: the C code calls it as the table's owner (inbox.cpp).
CREATE OR REPLACE FUNCTION ig_identity.store_conversations(
    p_ig_account_id text, p_location_id text, p_ids text[], p_participants text[],
    p_updated timestamptz[])
RETURNS text[]
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH before AS (
        SELECT c.id, c.updated_time
          FROM @extschema@.instagram_conversations c
         WHERE c.id = ANY (p_ids)
    ), up AS (
        INSERT INTO @extschema@.instagram_conversations AS c
               (id, ig_account_id, location_id, participant_igsid, updated_time)
        SELECT s.id, p_ig_account_id, p_location_id, s.participant, s.updated
          FROM unnest(p_ids, p_participants, p_updated) AS s(id, participant, updated)
        ON CONFLICT (id) DO UPDATE
           SET participant_igsid = COALESCE(EXCLUDED.participant_igsid, c.participant_igsid),
               location_id = COALESCE(c.location_id, EXCLUDED.location_id),
               updated_time = GREATEST(c.updated_time, EXCLUDED.updated_time)
         WHERE c.ig_account_id = p_ig_account_id -- never another account's row (35_tenant_ids.sql)
           AND (c.participant_igsid IS DISTINCT FROM COALESCE(EXCLUDED.participant_igsid, c.participant_igsid)
                OR c.updated_time IS DISTINCT FROM GREATEST(c.updated_time, EXCLUDED.updated_time)
                OR c.location_id IS NULL)
        RETURNING c.id, c.updated_time
    )
    SELECT COALESCE(pg_catalog.array_agg(up.id ORDER BY up.id), '{}')
      FROM up LEFT JOIN before b ON b.id = up.id
     WHERE b.id IS NULL OR b.updated_time IS DISTINCT FROM up.updated_time
$$;
-- Stores messages (sync or webhook), deduplicated on the message id (mid);
-- a message first seen without its conversation gets it when one is known.
-- Returns how many were new.
CREATE OR REPLACE FUNCTION ig_identity.store_messages(
    p_ig_account_id text, p_ids text[], p_conversation_ids text[], p_from text[], p_to text[],
    p_texts text[], p_created timestamptz[], p_echo boolean[])
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH rows AS (
        SELECT s.*,
               -- the C code filled the conversations in, reading
               -- instagram_conversations as its own owner (37_mixed_owners.sql)
               s.conversation_id AS conv
          FROM unnest(p_ids, p_conversation_ids, p_from, p_to, p_texts, p_created, p_echo)
               AS s(id, conversation_id, from_id, to_id, message, created_at, is_echo)
    ), ins AS (
        INSERT INTO @extschema@.instagram_messages AS m
               (id, conversation_id, ig_account_id, from_id, to_id, message, created_at, is_echo)
        SELECT DISTINCT ON (r.id) r.id, r.conv, p_ig_account_id, r.from_id, r.to_id, r.message,
               r.created_at, r.is_echo
          FROM rows r
        ON CONFLICT (id) DO UPDATE
           SET conversation_id = EXCLUDED.conversation_id
         WHERE m.conversation_id IS NULL AND EXCLUDED.conversation_id IS NOT NULL
           AND m.ig_account_id = p_ig_account_id -- never another account's row (35_tenant_ids.sql)
        RETURNING (xmax = 0) AS inserted
    )
    SELECT count(*) FILTER (WHERE inserted) FROM ins
$$;
REVOKE ALL ON FUNCTION ig_identity.read_foreign_conversation_ids(text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.read_foreign_message_ids(text, text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.set_aside_foreign_ids(text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.set_aside_foreign_conversations(text, text, text[], text[], timestamptz[], text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.set_aside_foreign_messages(text, text[], text[], text[], text[], text[], timestamptz[], boolean[], text[]) FROM PUBLIC;
-- ---- end: ids of another account ----
-- ---- begin: a partitioned instagram_messages ----
-- (src/sql/36_partitioned_inbox.sql)
/* ------------------------------------------------------------------------
 * A declaratively partitioned instagram_messages (issue 12)
 *
 * Messages partitioned by month are common. PostgreSQL cannot hold a unique
 * index on id alone across partitions (every unique index of a partitioned
 * table includes the partition key), so ON CONFLICT (id) has nothing to
 * infer from. For such a table the C code (inbox.cpp) calls this writer
 * instead of store_messages: it takes a transaction-scoped advisory lock per
 * message id, in id order, then, each statement with a fresh snapshot (a
 * volatile SQL function), completes a known message's conversation and
 * inserts the ids not yet stored. Concurrent writers of one id therefore
 * wait for each other and the second sees the first's row (READ COMMITTED,
 * the default; under REPEATABLE READ the repair's unique index on id and
 * the partition key is what stops an exact duplicate). Same arguments and
 * result as store_messages; runs as the table's owner.
 * ------------------------------------------------------------------------ */
CREATE FUNCTION ig_identity.store_messages_partitioned(
    p_ig_account_id text, p_ids text[], p_conversation_ids text[], p_from text[], p_to text[],
    p_texts text[], p_created timestamptz[], p_echo boolean[])
RETURNS bigint
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.count(pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('ig_identity.instagram_messages'),
                                                             pg_catalog.hashtext(l.id)))
      FROM (SELECT DISTINCT u.id FROM unnest(p_ids) AS u(id) WHERE u.id IS NOT NULL ORDER BY u.id) AS l;

    WITH rows AS (
        SELECT s.id,
               -- the C code filled the conversations in, reading
               -- instagram_conversations as its own owner (37_mixed_owners.sql)
               s.conversation_id AS conv
          FROM unnest(p_ids, p_conversation_ids, p_from, p_to, p_echo)
               AS s(id, conversation_id, from_id, to_id, is_echo)
    )
    UPDATE @extschema@.instagram_messages m
       SET conversation_id = r.conv
      FROM (SELECT DISTINCT ON (rows.id) rows.id, rows.conv FROM rows ORDER BY rows.id) AS r
     WHERE m.id = r.id AND m.conversation_id IS NULL AND r.conv IS NOT NULL
       AND m.ig_account_id = p_ig_account_id; -- never another account's row (35_tenant_ids.sql)

    WITH rows AS (
        SELECT s.*,
               -- the C code filled the conversations in, reading
               -- instagram_conversations as its own owner (37_mixed_owners.sql)
               s.conversation_id AS conv
          FROM unnest(p_ids, p_conversation_ids, p_from, p_to, p_texts, p_created, p_echo)
               AS s(id, conversation_id, from_id, to_id, message, created_at, is_echo)
    ), ins AS (
        INSERT INTO @extschema@.instagram_messages
               (id, conversation_id, ig_account_id, from_id, to_id, message, created_at, is_echo)
        SELECT DISTINCT ON (r.id) r.id, r.conv, p_ig_account_id, r.from_id, r.to_id, r.message,
               r.created_at, r.is_echo
          FROM rows r
         WHERE r.id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM @extschema@.instagram_messages m WHERE m.id = r.id)
         ORDER BY r.id
        RETURNING 1
    )
    SELECT pg_catalog.count(*) FROM ins
$$;
REVOKE ALL ON FUNCTION ig_identity.store_messages_partitioned(text, text[], text[], text[], text[], text[], timestamptz[], boolean[]) FROM PUBLIC;
-- ---- end: a partitioned instagram_messages ----
-- ---- begin: inbox tables with different owners ----
-- (src/sql/37_mixed_owners.sql)
/* ------------------------------------------------------------------------
 * Inbox tables with different owners (issue 12)
 *
 * Each inbox table is read and written as its own owner. A message stored
 * without its conversation id takes the account's newest conversation with
 * that participant: this reader finds it, as the owner of
 * instagram_conversations, and the C code (inbox.cpp) passes the filled
 * array to store_messages, which runs as the owner of instagram_messages
 * and reads no other table. Neither owner needs a grant on the other's
 * table, and the conversations owner's policies never run as the messages
 * owner.
 * ------------------------------------------------------------------------ */
CREATE FUNCTION ig_identity.read_message_conversations(p_ig_account_id text, p_conversation_ids text[],
                                                       p_from text[], p_to text[], p_echo boolean[])
RETURNS text[]
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.array_agg(
               COALESCE(s.conversation_id,
                        (SELECT c.id::text FROM @extschema@.instagram_conversations c
                          WHERE c.ig_account_id = p_ig_account_id
                            AND c.participant_igsid = CASE WHEN s.is_echo THEN s.to_id ELSE s.from_id END
                          ORDER BY c.updated_time DESC NULLS LAST LIMIT 1))
               ORDER BY s.n), '{}')
      FROM unnest(p_conversation_ids, p_from, p_to, p_echo) WITH ORDINALITY
           AS s(conversation_id, from_id, to_id, is_echo, n)
$$;
REVOKE ALL ON FUNCTION ig_identity.read_message_conversations(text, text[], text[], text[], boolean[]) FROM PUBLIC;
-- ---- end: inbox tables with different owners ----
-- Review of issue 12 (TAP 018_repair_side_effects): the repair's owner
-- section no longer runs SET CONSTRAINTS ALL IMMEDIATE (C code only); a
-- partition with another owner and an owner without CREATE on the schema
-- get clear errors; the partitioned writer's per-id lock is a row of a
-- private table instead of an advisory lock anyone can take.
CREATE OR REPLACE FUNCTION ig_identity.inbox_table(p_nsp oid, p_name name)
RETURNS regclass
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_oid     oid;
    v_relkind "char";
    v_other   name;
BEGIN
    SELECT c.oid, c.relkind INTO v_oid, v_relkind
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = p_nsp AND c.relname = p_name;
    IF v_oid IS NULL THEN
        RETURN NULL;
    END IF;
    IF v_relkind = 'p' AND p_name = 'instagram_messages' THEN
        -- a partitioned table's children are all partitions; the repair
        -- works on them as the parent's owner, so each must have it
        -- (the same check as the C code's, src/pg/privilege.cpp)
        SELECT c.relname INTO v_other
          FROM pg_catalog.pg_partition_tree(v_oid) t
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
         WHERE c.relowner OPERATOR(pg_catalog.<>) (SELECT p.relowner FROM pg_catalog.pg_class p
                                                    WHERE p.oid OPERATOR(pg_catalog.=) v_oid)
         ORDER BY c.relname
         LIMIT 1;
        IF v_other IS NOT NULL THEN
            RAISE EXCEPTION USING
                ERRCODE = 'insufficient_privilege',
                MESSAGE = pg_catalog.format('partition "%s" of inbox table "%s.%s" has another owner',
                                            v_other,
                                            (SELECT n.nspname FROM pg_catalog.pg_namespace n
                                              WHERE n.oid OPERATOR(pg_catalog.=) p_nsp),
                                            p_name),
                DETAIL  = 'ig_identity works on a partitioned table as its owner, so every partition must have that owner.',
                HINT    = 'Run ALTER TABLE ... OWNER TO the partitioned table''s owner, then install ig_identity again.';
        END IF;
        RETURN v_oid::pg_catalog.regclass;
    END IF;
    IF v_relkind <> 'r' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'wrong_object_type',
            MESSAGE = pg_catalog.format('cannot repair %s: it is not a plain table',
                                        v_oid::pg_catalog.regclass),
            DETAIL  = pg_catalog.format('Its relkind is "%s"; ig_identity repairs ordinary tables (and a partitioned instagram_messages).',
                                        v_relkind),
            HINT    = 'Move it out of the way or convert it to an ordinary table, then install ig_identity again.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhparent = v_oid) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'feature_not_supported',
            MESSAGE = pg_catalog.format('cannot repair %s: it has inheritance children',
                                        v_oid::pg_catalog.regclass),
            DETAIL  = 'Rows of a table and of its children share ctids, so the repair could not tell them apart.',
            HINT    = 'Detach the children with ALTER TABLE ... NO INHERIT, or use declarative partitioning, then install ig_identity again.';
    END IF;
    RETURN v_oid::pg_catalog.regclass;
END
$fn$;

CREATE FUNCTION ig_identity.require_owner_create(p_rel regclass)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT DISTINCT n.nspname, pg_catalog.pg_get_userbyid(o.relowner) AS owner
          FROM (SELECT p_rel::pg_catalog.oid AS relid
                UNION SELECT t.relid FROM pg_catalog.pg_partition_tree(p_rel) t) AS t
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
          JOIN pg_catalog.pg_class o ON o.oid OPERATOR(pg_catalog.=) p_rel
         WHERE NOT pg_catalog.has_schema_privilege(o.relowner, c.relnamespace, 'CREATE')
         ORDER BY 1
    LOOP
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('cannot repair %s: its owner %s has no CREATE privilege on schema %s',
                                        p_rel, r.owner, r.nspname),
            DETAIL  = 'The repair builds the unique index ig_identity needs as the table''s owner, and PostgreSQL requires that role''s CREATE privilege on the schema for a new index.',
            HINT    = pg_catalog.format('Run GRANT CREATE ON SCHEMA %I TO %I; then CREATE EXTENSION ig_identity (or SELECT * FROM ig_identity_repair()) again. The grant may be revoked after the repair.',
                                        r.nspname, r.owner);
    END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION ig_identity.ensure_unique_id(p_rel regclass, p_index name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_moved bigint;
    v_key   name[] := ARRAY['id']::name[];
    v_part  name[] := ig_identity.partition_key_columns(p_rel);
BEGIN
    IF pg_catalog.cardinality(v_part) = 0 AND ig_identity.has_unique_index(p_rel, v_key) THEN
        RETURN 0;
    END IF;
    v_key := v_key OPERATOR(pg_catalog.||) pg_catalog.array_remove(v_part, 'id'::name);
    -- Keep a row that knows its account, then the physically first one.
    -- As the table's owner; the quarantine is written as the caller.
    INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
    SELECT ig_identity.table_label(p_rel), 'duplicate_id', r.row_data
      FROM pg_catalog.unnest(ig_identity.as_owner(p_rel, pg_catalog.format(
        'WITH ranked AS (
             SELECT t.tableoid AS rel, t.ctid AS tid,
                    pg_catalog.row_number() OVER (PARTITION BY t.id
                                                  ORDER BY t.ig_account_id IS NULL, t.tableoid, t.ctid) AS n
               FROM %1$s t
              WHERE t.id IS NOT NULL)
         DELETE FROM %1$s t USING ranked r
          WHERE t.tableoid = r.rel AND t.ctid = r.tid AND r.n > 1
      RETURNING pg_catalog.to_jsonb(t)', p_rel))) AS r(row_data);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF NOT ig_identity.has_unique_index(p_rel, v_key) THEN
        PERFORM ig_identity.require_free_name(p_rel, p_index,
            '(' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(v_key, ', ') OPERATOR(pg_catalog.||) ')');
        PERFORM ig_identity.require_owner_create(p_rel);
        PERFORM ig_identity.as_owner(p_rel, pg_catalog.format('CREATE UNIQUE INDEX %I ON %s (%s)', p_index, p_rel,
            (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') FROM pg_catalog.unnest(v_key) AS c)));
    END IF;
    RETURN v_moved;
END
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.ig_identity_repair(
    OUT tables_created   int,
    OUT columns_added    int,
    OUT rows_recovered   bigint,
    OUT rows_merged      bigint,
    OUT rows_quarantined bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    -- '@extschema@' is the quoted schema name; regnamespace parses it back.
    v_nsp    oid := '@extschema@'::pg_catalog.regnamespace;
    v_schema name;
    v_rel    regclass;
    v_label  text;
    v_n      bigint;
    v_candidates text; -- the account-candidates CTE, shared by recovery and quarantine
    v_pairs  jsonb;    -- [participant, account] pairs of the conversations and messages
    v_selves jsonb;    -- {account: its own id}
    v_rows   jsonb[];
BEGIN
    tables_created := 0;
    columns_added := 0;
    rows_recovered := 0;
    rows_merged := 0;
    rows_quarantined := 0;
    SELECT n.nspname INTO v_schema FROM pg_catalog.pg_namespace n WHERE n.oid = v_nsp;

    /*
     * Conversations and messages first: the user cache's lost accounts are
     * recovered from them, after their duplicates are gone.
     */
    v_rel := ig_identity.inbox_table(v_nsp, 'instagram_conversations');
    IF v_rel IS NULL THEN
        EXECUTE pg_catalog.format(
            'CREATE TABLE %I.instagram_conversations (
                 id                text PRIMARY KEY,
                 ig_account_id     text NOT NULL,
                 location_id       text,
                 participant_igsid text,
                 updated_time      timestamptz,
                 created_at        timestamptz NOT NULL DEFAULT now())', v_schema);
        v_rel := ig_identity.inbox_table(v_nsp, 'instagram_conversations');
        EXECUTE pg_catalog.format(
            'CREATE INDEX instagram_conversations_location_id_idx ON %s (location_id)', v_rel);
        EXECUTE pg_catalog.format(
            'CREATE INDEX instagram_conversations_account_participant_idx
                 ON %s (ig_account_id, participant_igsid)', v_rel);
        PERFORM ig_identity.detach_from_extension(v_rel);
        tables_created := tables_created + 1;
    ELSE
        PERFORM ig_identity.require_text_columns(v_rel,
            ARRAY['id', 'ig_account_id', 'location_id', 'participant_igsid']::name[]);
        -- Added nullable: existing rows have no value, and their app data
        -- is not ours to force.
        columns_added := columns_added + ig_identity.add_missing_columns(v_rel, ARRAY[
            ['id',                'text'],
            ['ig_account_id',     'text'],
            ['location_id',       'text'],
            ['participant_igsid', 'text'],
            ['updated_time',      'timestamptz'],
            ['created_at',        'timestamptz NOT NULL DEFAULT now()']]);
        rows_quarantined := rows_quarantined
            + ig_identity.ensure_unique_id(v_rel, 'instagram_conversations_id_unique');
    END IF;

    v_rel := ig_identity.inbox_table(v_nsp, 'instagram_messages');
    IF v_rel IS NULL THEN
        EXECUTE pg_catalog.format(
            'CREATE TABLE %I.instagram_messages (
                 id              text PRIMARY KEY,
                 conversation_id text,
                 ig_account_id   text NOT NULL,
                 from_id         text,
                 to_id           text,
                 message         text,
                 created_at      timestamptz,
                 is_echo         boolean NOT NULL DEFAULT false)', v_schema);
        v_rel := ig_identity.inbox_table(v_nsp, 'instagram_messages');
        EXECUTE pg_catalog.format(
            'CREATE INDEX instagram_messages_account_created_idx ON %s (ig_account_id, created_at)',
            v_rel);
        PERFORM ig_identity.detach_from_extension(v_rel);
        tables_created := tables_created + 1;
    ELSE
        PERFORM ig_identity.require_text_columns(v_rel,
            ARRAY['id', 'conversation_id', 'ig_account_id', 'from_id', 'to_id']::name[]);
        columns_added := columns_added + ig_identity.add_missing_columns(v_rel, ARRAY[
            ['id',              'text'],
            ['conversation_id', 'text'],
            ['ig_account_id',   'text'],
            ['from_id',         'text'],
            ['to_id',           'text'],
            ['message',         'text'],
            ['created_at',      'timestamptz'],
            ['is_echo',         'boolean NOT NULL DEFAULT false']]);
        rows_quarantined := rows_quarantined
            + ig_identity.ensure_unique_id(v_rel, 'instagram_messages_id_unique');
    END IF;

    v_rel := ig_identity.inbox_table(v_nsp, 'instagram_user_cache');
    IF v_rel IS NULL THEN
        EXECUTE pg_catalog.format(
            'CREATE TABLE %I.instagram_user_cache (
                 ig_account_id   text NOT NULL,
                 ig_user_id      text NOT NULL,
                 username        text,
                 name            text,
                 profile_pic     text,
                 profile_pic_url text,
                 last_fetched_at timestamptz,
                 fetch_status    text NOT NULL DEFAULT ''ok''
                                 CHECK (fetch_status IN (''ok'', ''consent_required'', ''unavailable'', ''error'')),
                 last_error_code int,
                 fetch_attempts  int NOT NULL DEFAULT 0,
                 next_fetch_at   timestamptz,
                 created_at      timestamptz NOT NULL DEFAULT now(),
                 updated_at      timestamptz NOT NULL DEFAULT now(),
                 CONSTRAINT instagram_user_cache_ig_account_id_ig_user_id_unique
                     PRIMARY KEY (ig_account_id, ig_user_id))', v_schema);
        v_rel := ig_identity.inbox_table(v_nsp, 'instagram_user_cache');
        PERFORM ig_identity.detach_from_extension(v_rel);
        tables_created := tables_created + 1;
        RETURN;
    END IF;

    /*
     * A legacy identity cache: the table that held the bug.
     */
    v_label := ig_identity.table_label(v_rel);
    IF NOT ig_identity.has_column(v_rel, 'ig_user_id') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'undefined_column',
            MESSAGE = pg_catalog.format('cannot repair %s: it has no column ig_user_id', v_rel),
            DETAIL  = 'Without the participant id the rows cannot be identified.',
            HINT    = 'Rename the table if it is not the inbox identity cache, then install ig_identity again.';
    END IF;
    PERFORM ig_identity.require_text_columns(v_rel, ARRAY['ig_account_id', 'ig_user_id']::name[]);
    -- ig_account_id, when missing, is added nullable and recovered below
    -- like any other lost account.
    columns_added := columns_added + ig_identity.add_missing_columns(v_rel, ARRAY[
        ['ig_account_id',   'text'],
        ['username',        'text'],
        ['name',            'text'],
        ['profile_pic',     'text'],
        ['profile_pic_url', 'text'],
        ['last_fetched_at', 'timestamptz'],
        ['fetch_status',    'text NOT NULL DEFAULT ''ok'' CHECK (fetch_status IN (''ok'', ''consent_required'', ''unavailable'', ''error''))'],
        ['last_error_code', 'int'],
        ['fetch_attempts',  'int NOT NULL DEFAULT 0'],
        ['next_fetch_at',   'timestamptz'],
        ['created_at',      'timestamptz NOT NULL DEFAULT now()'],
        ['updated_at',      'timestamptz NOT NULL DEFAULT now()']]);

    -- A row without a participant id identifies nobody.
    rows_quarantined := rows_quarantined
        + ig_identity.quarantine_rows(v_rel, 'missing_user_id', 't.ig_user_id IS NULL');

    /*
     * Lost accounts. The accounts that talk to a participant are the ones
     * whose conversations name it or whose messages it sent or received.
     * Exactly one: that is its account. None or several: the row cannot be
     * attributed and goes to the quarantine, with the candidates. Each
     * table is read as its own owner; the pairs travel as $1.
     */
    SELECT COALESCE(pg_catalog.jsonb_agg(DISTINCT p.pair), '[]')
      INTO v_pairs
      FROM pg_catalog.unnest(
               ig_identity.as_owner(ig_identity.inbox_table(v_nsp, 'instagram_conversations'), pg_catalog.format(
                   'SELECT DISTINCT pg_catalog.jsonb_build_array(c.participant_igsid::text, c.ig_account_id::text)
                      FROM %s c
                     WHERE c.participant_igsid IS NOT NULL AND c.ig_account_id IS NOT NULL',
                   ig_identity.inbox_table(v_nsp, 'instagram_conversations')))
               OPERATOR(pg_catalog.||)
               ig_identity.as_owner(ig_identity.inbox_table(v_nsp, 'instagram_messages'), pg_catalog.format(
                   'SELECT DISTINCT pg_catalog.jsonb_build_array(u.id::text, m.ig_account_id::text)
                      FROM %s m CROSS JOIN LATERAL (VALUES (m.from_id), (m.to_id)) AS u(id)
                     WHERE u.id IS NOT NULL AND m.ig_account_id IS NOT NULL',
                   ig_identity.inbox_table(v_nsp, 'instagram_messages')))) AS p(pair);
    v_candidates := pg_catalog.format(
        'WITH pairs AS (
             SELECT p.pair ->> 0 AS uid, p.pair ->> 1 AS acc
               FROM pg_catalog.jsonb_array_elements($1) AS p(pair)),
         cand AS (
             SELECT u.ctid AS tid,
                    pg_catalog.array_agg(DISTINCT p.acc) FILTER (WHERE p.acc IS NOT NULL) AS accounts
               FROM %1$s u LEFT JOIN pairs p ON p.uid = u.ig_user_id::text
              WHERE u.ig_account_id IS NULL
              GROUP BY u.ctid)', v_rel);
    v_rows := ig_identity.as_owner(v_rel, v_candidates || pg_catalog.format('
         UPDATE %s u SET ig_account_id = c.accounts[1]
           FROM cand c
          WHERE u.ctid = c.tid AND pg_catalog.cardinality(c.accounts) = 1
      RETURNING pg_catalog.to_jsonb(1)', v_rel), v_pairs);
    rows_recovered := rows_recovered + pg_catalog.cardinality(v_rows);

    INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
    SELECT v_label,
           CASE WHEN m.r -> 'accounts' = 'null' THEN 'no_account_found' ELSE 'ambiguous_account' END,
           CASE WHEN m.r -> 'accounts' = 'null' THEN m.r -> 'row_data'
                ELSE (m.r -> 'row_data') || pg_catalog.jsonb_build_object('ig_identity_candidates',
                                                                          m.r -> 'accounts')
           END
      FROM pg_catalog.unnest(ig_identity.as_owner(v_rel, v_candidates || pg_catalog.format('
         DELETE FROM %1$s u USING cand c
          WHERE u.ctid = c.tid
      RETURNING pg_catalog.jsonb_build_object(''accounts'', pg_catalog.to_jsonb(c.accounts),
                                              ''row_data'', pg_catalog.to_jsonb(u))', v_rel),
             v_pairs)) AS m(r);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    rows_quarantined := rows_quarantined + v_n;

    -- The business account stored as its own participant: the trap that
    -- made inboxes show the shop's name for the customer. The accounts'
    -- own ids travel as $1 (the owner cannot read ig_identity.accounts).
    SELECT COALESCE(pg_catalog.jsonb_object_agg(a.ig_account_id, a.self_igsid), '{}')
      INTO v_selves
      FROM ig_identity.accounts a
     WHERE a.self_igsid IS NOT NULL;
    rows_quarantined := rows_quarantined + ig_identity.quarantine_rows(v_rel, 'self_identity',
        't.ig_user_id::text = t.ig_account_id::text
         OR t.ig_user_id::text = ($1 ->> t.ig_account_id::text)', v_selves);

    /*
     * Duplicate (ig_account_id, ig_user_id) rows. The freshest row stays
     * (it keeps the app's own columns and fetch state); each identity column
     * takes the freshest non-null value of the group. The absorbed rows go to
     * the quarantine as they were, so nothing is lost. One statement, as the
     * table's owner, so the ctids the CTEs computed are the ones the UPDATE
     * and DELETE see; it returns the absorbed rows.
     */
    v_rows := ig_identity.as_owner(v_rel, pg_catalog.format(
        'WITH g AS (
             SELECT u.ig_account_id AS k_account, u.ig_user_id AS k_user,
                    (pg_catalog.array_agg(u.ctid ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid))[1] AS keep,
                    (pg_catalog.array_agg(u.username ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                         FILTER (WHERE u.username IS NOT NULL))[1] AS username,
                    (pg_catalog.array_agg(u.name ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                         FILTER (WHERE u.name IS NOT NULL))[1] AS name,
                    (pg_catalog.array_agg(u.profile_pic ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                         FILTER (WHERE u.profile_pic IS NOT NULL))[1] AS profile_pic,
                    (pg_catalog.array_agg(u.profile_pic_url ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                         FILTER (WHERE u.profile_pic_url IS NOT NULL))[1] AS profile_pic_url,
                    (pg_catalog.array_agg(u.last_fetched_at ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                         FILTER (WHERE u.last_fetched_at IS NOT NULL))[1] AS last_fetched_at
               FROM %1$s u
              GROUP BY u.ig_account_id, u.ig_user_id
             HAVING pg_catalog.count(*) > 1),
         kept AS (
             UPDATE %1$s u
                SET username = g.username, name = g.name, profile_pic = g.profile_pic,
                    profile_pic_url = g.profile_pic_url, last_fetched_at = g.last_fetched_at
               FROM g
              WHERE u.ctid = g.keep
          RETURNING 1)
         DELETE FROM %1$s u USING g
          WHERE u.ig_account_id = g.k_account AND u.ig_user_id = g.k_user AND u.ctid <> g.keep
      RETURNING pg_catalog.to_jsonb(u)',
        v_rel));
    INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
    SELECT v_label, 'merged_duplicate', r.row_data
      FROM pg_catalog.unnest(v_rows) AS r(row_data);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    rows_quarantined := rows_quarantined + v_n;
    SELECT pg_catalog.count(*) INTO v_n
      FROM (SELECT DISTINCT r.row_data ->> 'ig_account_id', r.row_data ->> 'ig_user_id'
              FROM pg_catalog.unnest(v_rows) AS r(row_data)) AS d;
    rows_merged := rows_merged + v_n;

    -- profile_pic is what current code writes; profile_pic_url is kept
    -- equal for older readers.
    PERFORM ig_identity.as_owner(v_rel, pg_catalog.format(
        'UPDATE %s u
            SET profile_pic = COALESCE(u.profile_pic, u.profile_pic_url),
                profile_pic_url = COALESCE(u.profile_pic, u.profile_pic_url)
          WHERE u.profile_pic IS DISTINCT FROM u.profile_pic_url', v_rel));

    IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = v_rel AND a.attname IN ('ig_account_id', 'ig_user_id')
                  AND NOT a.attnotnull) THEN
        PERFORM ig_identity.as_owner(v_rel, pg_catalog.format(
            'ALTER TABLE %s ALTER COLUMN ig_account_id SET NOT NULL,
                            ALTER COLUMN ig_user_id SET NOT NULL', v_rel));
    END IF;

    -- A UNIQUE constraint, not a primary key: the app's table may already
    -- have one (an id column).
    IF NOT ig_identity.has_unique_index(v_rel, ARRAY['ig_account_id', 'ig_user_id']::name[]) THEN
        PERFORM ig_identity.require_free_name(v_rel,
            'instagram_user_cache_ig_account_id_ig_user_id_unique', '(ig_account_id, ig_user_id)');
        PERFORM ig_identity.require_owner_create(v_rel);
        PERFORM ig_identity.as_owner(v_rel, pg_catalog.format(
            'ALTER TABLE %s ADD CONSTRAINT instagram_user_cache_ig_account_id_ig_user_id_unique
                 UNIQUE (ig_account_id, ig_user_id)', v_rel));
    END IF;
END
$fn$;

CREATE TABLE ig_identity.message_id_locks (slot int PRIMARY KEY);
INSERT INTO ig_identity.message_id_locks (slot) SELECT pg_catalog.generate_series(0, 1023);

CREATE FUNCTION ig_identity.lock_message_ids(p_ids text[])
RETURNS bigint
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.count(*)
      FROM (SELECT l.slot
              FROM ig_identity.message_id_locks l
             WHERE l.slot OPERATOR(pg_catalog.=) ANY (ARRAY(
                       SELECT pg_catalog.hashtext(u.id) OPERATOR(pg_catalog.&) 1023
                         FROM pg_catalog.unnest(p_ids) AS u(id)
                        WHERE u.id IS NOT NULL))
             ORDER BY l.slot
               FOR UPDATE) AS s
$$;

CREATE OR REPLACE FUNCTION ig_identity.store_messages_partitioned(
    p_ig_account_id text, p_ids text[], p_conversation_ids text[], p_from text[], p_to text[],
    p_texts text[], p_created timestamptz[], p_echo boolean[])
RETURNS bigint
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH rows AS (
        SELECT s.id,
               -- the C code filled the conversations in, reading
               -- instagram_conversations as its own owner (37_mixed_owners.sql)
               s.conversation_id AS conv
          FROM unnest(p_ids, p_conversation_ids, p_from, p_to, p_echo)
               AS s(id, conversation_id, from_id, to_id, is_echo)
    )
    UPDATE @extschema@.instagram_messages m
       SET conversation_id = r.conv
      FROM (SELECT DISTINCT ON (rows.id) rows.id, rows.conv FROM rows ORDER BY rows.id) AS r
     WHERE m.id = r.id AND m.conversation_id IS NULL AND r.conv IS NOT NULL
       AND m.ig_account_id = p_ig_account_id; -- never another account's row (35_tenant_ids.sql)

    WITH rows AS (
        SELECT s.*,
               -- the C code filled the conversations in, reading
               -- instagram_conversations as its own owner (37_mixed_owners.sql)
               s.conversation_id AS conv
          FROM unnest(p_ids, p_conversation_ids, p_from, p_to, p_texts, p_created, p_echo)
               AS s(id, conversation_id, from_id, to_id, message, created_at, is_echo)
    ), ins AS (
        INSERT INTO @extschema@.instagram_messages
               (id, conversation_id, ig_account_id, from_id, to_id, message, created_at, is_echo)
        SELECT DISTINCT ON (r.id) r.id, r.conv, p_ig_account_id, r.from_id, r.to_id, r.message,
               r.created_at, r.is_echo
          FROM rows r
         WHERE r.id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM @extschema@.instagram_messages m WHERE m.id = r.id)
         ORDER BY r.id
        RETURNING 1
    )
    SELECT pg_catalog.count(*) FROM ins
$$;

REVOKE ALL ON FUNCTION ig_identity.require_owner_create(regclass) FROM PUBLIC;
REVOKE ALL ON TABLE ig_identity.message_id_locks FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.lock_message_ids(text[]) FROM PUBLIC;

-- ==== end of issue 12 ====



-- ==== issue 13: worker lifecycle ====
-- ==== end of issue 13 ====



-- ==== issue 14: the real Graph API ====
-- Facebook Login accounts keep the Page id /me answered at connect time.
ALTER TABLE ig_identity.accounts
    ADD COLUMN page_id text CHECK (page_id ~ '^[0-9]{1,32}$');

-- The /me check ig_connect_account makes before storing anything.
CREATE FUNCTION ig_identity.check_account_token(p_api_host text, p_access_token text,
                                                p_ig_account_id text)
RETURNS text
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_check_account_token';
REVOKE ALL ON FUNCTION ig_identity.check_account_token(text, text, text) FROM PUBLIC;

-- ig_connect_account: same signature, owner, ACL and comment; it now makes
-- the /me check and stores the Page id.
CREATE OR REPLACE FUNCTION @extschema@.ig_connect_account(
    location_id   text,
    ig_account_id text,
    self_igsid    text,
    access_token  text,
    api_host      text DEFAULT 'graph.facebook.com')
RETURNS ig_identity.connected_account
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    v_result ig_identity.connected_account;
    v_page_id text;
BEGIN
    IF ig_connect_account.location_id IS NULL OR ig_connect_account.location_id = '' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'location_id must not be empty',
            HINT    = 'Pass the id of the location (sub-account) that owns this Instagram account.';
    END IF;
    IF pg_catalog.length(ig_connect_account.location_id) > 200 THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'location_id is too long',
            DETAIL  = pg_catalog.format('It has %s characters; the limit is 200.',
                                        pg_catalog.length(ig_connect_account.location_id));
    END IF;
    IF ig_connect_account.ig_account_id IS NULL
       OR ig_connect_account.ig_account_id !~ '^[0-9]{1,32}$' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'ig_account_id must be 1 to 32 digits',
            DETAIL  = 'Instagram account ids are decimal strings such as 17841400000000001.';
    END IF;
    IF ig_connect_account.self_igsid IS NULL
       OR ig_connect_account.self_igsid !~ '^[0-9]{1,32}$' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'self_igsid must be 1 to 32 digits',
            DETAIL  = 'The self IGSID is the business account''s own id in its conversations, a decimal string.';
    END IF;
    IF ig_connect_account.access_token IS NULL OR ig_connect_account.access_token = '' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'access_token must not be empty';
    END IF;
    IF pg_catalog.length(ig_connect_account.access_token) > 4096 THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'access_token is too long',
            DETAIL  = pg_catalog.format('It has %s characters; the limit is 4096.',
                                        pg_catalog.length(ig_connect_account.access_token));
    END IF;
    -- Printable ASCII without spaces: what Meta issues. Anything else is a
    -- copy-paste accident (a trailing newline) that would fail every call.
    IF ig_connect_account.access_token !~ '^[!-~]+$' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'access_token contains whitespace, control or non-ASCII characters',
            DETAIL  = 'Access tokens are printable ASCII without spaces.',
            HINT    = 'Copy the token again without surrounding spaces or line breaks.';
    END IF;
    IF ig_connect_account.api_host IS NULL
       OR ig_connect_account.api_host NOT IN ('graph.facebook.com', 'graph.instagram.com') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'unsupported api_host',
            DETAIL  = 'The host decides which kind of token the account uses.',
            HINT    = 'Use graph.facebook.com (Facebook Login, Page token) or graph.instagram.com (Instagram Login, Instagram user token).';
    END IF;

    -- One /me call: the token is alive, of this host's login flavour, and
    -- speaks for this account (Facebook Login: the Page linked to it).
    v_page_id := ig_identity.check_account_token(ig_connect_account.api_host,
                                                 ig_connect_account.access_token,
                                                 ig_connect_account.ig_account_id);

    -- Rows held back while the account was stopped or paused are due again
    -- with the new token (otherwise they would wait out the old pause, up
    -- to 15 minutes). Queue rows before the account row: the lock order of
    -- the worker's saves, so the two never deadlock.
    UPDATE ig_identity.refresh_queue q
       SET not_before = pg_catalog.now()
     WHERE q.ig_account_id = ig_connect_account.ig_account_id
       AND q.not_before > pg_catalog.now()
       AND (q.leased_until IS NULL OR q.leased_until < pg_catalog.now());

    -- Connecting again is how credentials are rotated: it also clears the
    -- state that stopped the account (reauth_required, a pause, last error).
    INSERT INTO ig_identity.accounts AS a (ig_account_id, location_id, self_igsid, api_host, page_id)
    VALUES (ig_connect_account.ig_account_id, ig_connect_account.location_id,
            ig_connect_account.self_igsid, ig_connect_account.api_host, v_page_id)
    ON CONFLICT (ig_account_id) DO UPDATE
       SET location_id = EXCLUDED.location_id,
           self_igsid = EXCLUDED.self_igsid,
           api_host = EXCLUDED.api_host,
           page_id = EXCLUDED.page_id,
           status = 'active',
           paused_until = NULL,
           consecutive_throttles = 0,
           last_error = NULL,
           last_error_code = NULL,
           updated_at = pg_catalog.now()
    RETURNING a.ig_account_id, a.location_id, a.status INTO v_result;

    INSERT INTO ig_identity.account_tokens AS t (ig_account_id, access_token)
    VALUES (ig_connect_account.ig_account_id, ig_connect_account.access_token)
    ON CONFLICT (ig_account_id) DO UPDATE
       SET access_token = EXCLUDED.access_token,
           rotated_at = pg_catalog.now();

    RETURN v_result;
END
$fn$;
-- Checks Meta's X-Hub-Signature-256 header against the raw request body
-- (HMAC-SHA256 with the app secret, constant-time compare).  Pure function of
-- its arguments; it reads no table, so PUBLIC may call it.
CREATE FUNCTION @extschema@.ig_verify_webhook_signature(raw_body bytea, signature_header text, app_secret text)
RETURNS boolean
LANGUAGE c IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_verify_webhook_signature';
COMMENT ON FUNCTION @extschema@.ig_verify_webhook_signature(bytea, text, text) IS
    'true when signature_header is sha256=<hex HMAC-SHA256(app_secret, raw_body)>; verify the raw body before parsing it';
-- Webhooks, every shape: standby events, unsends, attachments and
-- replies, postbacks and referrals, and dead letters (src/sql/35_webhooks.sql).
CREATE TABLE ig_identity.message_details (
    ig_account_id text NOT NULL,
    mid           text NOT NULL,
    kind          text NOT NULL
                  CHECK (kind IN ('text', 'attachment', 'unsupported', 'deleted', 'empty')),
    attachments   jsonb CHECK (pg_catalog.jsonb_typeof(attachments) = 'array'),
    reply_to      jsonb CHECK (pg_catalog.jsonb_typeof(reply_to) = 'object'),
    deleted_at    timestamptz,
    received_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (ig_account_id, mid)
);

CREATE TABLE ig_identity.webhook_events (
    id            bigserial PRIMARY KEY,
    ig_account_id text NOT NULL,
    ig_user_id    text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('postback', 'referral')),
    mid           text,
    occurred_at   timestamptz NOT NULL,
    payload       jsonb NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
-- A delivery Meta sends again stores nothing twice.
CREATE UNIQUE INDEX webhook_events_once
    ON ig_identity.webhook_events (ig_account_id, ig_user_id, kind, occurred_at,
                                   pg_catalog.md5(payload::pg_catalog.text));

CREATE TABLE ig_identity.webhook_dead_letters (
    id            bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ig_account_id text,
    reason        text NOT NULL,
    raw           jsonb NOT NULL
);
CREATE INDEX webhook_dead_letters_account ON ig_identity.webhook_dead_letters (ig_account_id);

REVOKE ALL ON ig_identity.message_details, ig_identity.webhook_events,
              ig_identity.webhook_dead_letters FROM PUBLIC;
REVOKE ALL ON SEQUENCE ig_identity.webhook_events_id_seq,
                       ig_identity.webhook_dead_letters_id_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('ig_identity.message_details', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.webhook_events', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.webhook_events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.webhook_dead_letters', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.webhook_dead_letters_id_seq', '');

-- A message's details: its kind (what it was, also once unsent), its
-- attachments and reply_to; a later delivery of the same mid keeps what is
-- known. A plain text message has no row (so most messages cost nothing
-- here) until it is unsent: kind 'deleted' is a message unsent while plain
-- text or never seen. Runs as the extension owner.
CREATE FUNCTION ig_identity.store_message_details(p_ig_account_id text, p_mids text[], p_kinds text[],
                                                  p_attachments text[], p_reply_to text[])
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH ins AS (
        INSERT INTO ig_identity.message_details AS d (ig_account_id, mid, kind, attachments, reply_to)
        SELECT DISTINCT ON (s.mid) p_ig_account_id, s.mid, s.kind, s.att::jsonb, s.rep::jsonb
          FROM unnest(p_mids, p_kinds, p_attachments, p_reply_to) WITH ORDINALITY AS s(mid, kind, att, rep, n)
         ORDER BY s.mid, s.n DESC
        ON CONFLICT (ig_account_id, mid) DO UPDATE
           SET attachments = COALESCE(d.attachments, EXCLUDED.attachments),
               reply_to = COALESCE(d.reply_to, EXCLUDED.reply_to),
               kind = EXCLUDED.kind
        RETURNING 1
    )
    SELECT count(*) FROM ins
$$;

-- Unsends, extension owner's half: the message is marked deleted (a row
-- is kept even when the message itself was never seen, so a later copy of
-- it is known to be unsent).
CREATE FUNCTION ig_identity.record_unsends(p_ig_account_id text, p_mids text[])
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO ig_identity.message_details AS d (ig_account_id, mid, kind, deleted_at)
    SELECT DISTINCT p_ig_account_id, s.mid, 'deleted', pg_catalog.now()
      FROM unnest(p_mids) AS s(mid)
    ON CONFLICT (ig_account_id, mid) DO UPDATE
       SET deleted_at = COALESCE(d.deleted_at, EXCLUDED.deleted_at)
$$;

-- Of these mids, those already unsent: their text must never be shown.
CREATE FUNCTION ig_identity.unsent_mids(p_ig_account_id text, p_mids text[])
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.array_agg(d.mid), '{}')
      FROM ig_identity.message_details d
     WHERE d.ig_account_id = p_ig_account_id AND d.mid = ANY (p_mids) AND d.deleted_at IS NOT NULL
$$;

-- Unsends, inbox half (runs as instagram_messages' owner, like
-- store_messages): the row stays, its text goes. Returns the rows cleared.
CREATE FUNCTION ig_identity.clear_unsent_messages(p_ig_account_id text, p_mids text[])
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH up AS (
        UPDATE @extschema@.instagram_messages m
           SET message = NULL
         WHERE m.ig_account_id = p_ig_account_id AND m.id = ANY (p_mids) AND m.message IS NOT NULL
        RETURNING 1
    )
    SELECT count(*) FROM up
$$;

-- Postbacks and referrals. Returns how many were new.
CREATE FUNCTION ig_identity.store_webhook_events(p_ig_account_id text, p_kinds text[], p_users text[],
                                                 p_mids text[], p_occurred timestamptz[], p_payloads text[])
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH ins AS (
        INSERT INTO ig_identity.webhook_events (ig_account_id, ig_user_id, kind, mid, occurred_at, payload)
        SELECT p_ig_account_id, s.uid, s.kind, s.mid, s.at, s.payload::jsonb
          FROM unnest(p_kinds, p_users, p_mids, p_occurred, p_payloads) AS s(kind, uid, mid, at, payload)
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT count(*) FROM ins
$$;

-- Dead letters: each one a delivery of a single entry or event.
CREATE FUNCTION ig_identity.store_dead_letters(p_accounts text[], p_reasons text[], p_raw text[])
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH ins AS (
        INSERT INTO ig_identity.webhook_dead_letters (ig_account_id, reason, raw)
        SELECT s.acc, s.reason, s.raw::jsonb
          FROM unnest(p_accounts, p_reasons, p_raw) WITH ORDINALITY AS s(acc, reason, raw, n)
         ORDER BY s.n
        RETURNING 1
    )
    SELECT count(*) FROM ins
$$;

-- ig_ingest_webhook returns three more counts: a new row type, so the
-- function is dropped and created again; the EXECUTE grants roles had on
-- it are given back.
DO $do$
DECLARE
    v_acl   aclitem[];
    v_owner oid;
    v_init  aclitem[];
    v_regranted boolean := false;
    r       record;
BEGIN
    SELECT p.proacl, p.proowner INTO v_acl, v_owner
      FROM pg_catalog.pg_proc p
     WHERE p.oid = '@extschema@.ig_ingest_webhook(jsonb)'::pg_catalog.regprocedure;
    DROP FUNCTION @extschema@.ig_ingest_webhook(jsonb);
    CREATE FUNCTION @extschema@.ig_ingest_webhook(payload jsonb)
    RETURNS TABLE (messages_stored int, duplicates int, events_skipped int, participants_queued int,
                   messages_deleted int, events_stored int, dead_letters int)
    LANGUAGE c VOLATILE
    SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'ig_ingest_webhook';
    REVOKE ALL ON FUNCTION @extschema@.ig_ingest_webhook(jsonb) FROM PUBLIC;
    SELECT p.proacl INTO v_init
      FROM pg_catalog.pg_proc p
     WHERE p.oid = '@extschema@.ig_ingest_webhook(jsonb)'::pg_catalog.regprocedure;
    FOR r IN
        -- grantee 0 is PUBLIC (a GRANT ... TO PUBLIC the administrator gave)
        SELECT CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                    ELSE pg_catalog.quote_ident(g.rolname::pg_catalog.text) END AS grantee,
               pg_catalog.bool_or(a.is_grantable) AS grantable
          FROM pg_catalog.aclexplode(v_acl) a
          LEFT JOIN pg_catalog.pg_roles g ON g.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE a.grantee OPERATOR(pg_catalog.<>) v_owner AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
           AND (a.grantee OPERATOR(pg_catalog.=) 0 OR g.oid IS NOT NULL)
         GROUP BY 1
    LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.ig_ingest_webhook(jsonb) TO %s%s',
                                  r.grantee, CASE WHEN r.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        v_regranted := true;
    END LOOP;
    -- A GRANT inside an extension script is recorded as one of the
    -- extension's initial privileges, which pg_dump leaves out: the
    -- initial privileges go back to what a fresh install has, so a dump
    -- of the updated database still carries the grants given back.
    IF v_regranted THEN
        UPDATE pg_catalog.pg_init_privs i
           SET initprivs = v_init
         WHERE i.objoid OPERATOR(pg_catalog.=) '@extschema@.ig_ingest_webhook(jsonb)'::pg_catalog.regprocedure
           AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
           AND i.objsubid OPERATOR(pg_catalog.=) 0;
    END IF;
END
$do$;

-- Parses every dead letter again (after an upgrade taught the parser a new
-- shape): those that now read are stored as a delivery would be, and
-- removed; the others stay, with the reason of this attempt.
CREATE FUNCTION @extschema@.ig_identity_replay_dead_letters()
RETURNS TABLE (replayed int, still_dead int)
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_identity_replay_dead_letters';
REVOKE ALL ON FUNCTION @extschema@.ig_identity_replay_dead_letters() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.ig_identity_replay_dead_letters() IS
    'Stores the webhook dead letters that parse now and removes them; the rest stay in ig_identity.webhook_dead_letters';
REVOKE ALL ON FUNCTION ig_identity.store_message_details(text, text[], text[], text[], text[]),
                       ig_identity.record_unsends(text, text[]),
                       ig_identity.unsent_mids(text, text[]),
                       ig_identity.clear_unsent_messages(text, text[]),
                       ig_identity.store_webhook_events(text, text[], text[], text[], timestamptz[], text[]),
                       ig_identity.store_dead_letters(text[], text[], text[])
    FROM PUBLIC;

-- The status view gains the dead-letter count, at the end.
CREATE OR REPLACE VIEW @extschema@.ig_identity_status AS
SELECT a.ig_account_id,
       a.location_id,
       a.status,
       COALESCE(q.queue_depth, 0) AS queue_depth,
       COALESCE(q.in_flight, 0) AS in_flight,
       q.next_due,
       a.last_success_at,
       a.last_error,
       a.last_error_code,
       a.paused_until,
       a.last_usage,
       w.pid AS worker_pid,
       w.last_cycle_start AS worker_last_cycle_start,
       w.last_cycle_end AS worker_last_cycle_end,
       w.cycles AS worker_cycles,
       w.identities_refreshed AS worker_identities_refreshed,
       w.failures AS worker_failures,
       w.last_error AS worker_last_error,
       (SELECT count(*) FROM ig_identity.webhook_dead_letters d
         WHERE d.ig_account_id = a.ig_account_id OR d.ig_account_id IS NULL) AS webhook_dead_letters
  FROM ig_identity.accounts a
  LEFT JOIN LATERAL (
        SELECT count(*) AS queue_depth,
               count(*) FILTER (WHERE r.leased_until >= pg_catalog.now()) AS in_flight,
               min(r.not_before) AS next_due
          FROM ig_identity.refresh_queue r
         WHERE r.ig_account_id = a.ig_account_id) q ON true
 CROSS JOIN @extschema@.ig_identity_worker_state() w;
-- ==== end of issue 14 ====



-- ==== issue 14b: API versions, app secret, token refresh ====
-- app_secret: the Meta app's secret when the app requires appsecret_proof
-- (NULL: it does not); a credential like the token, so it lives beside it,
-- where no role but the extension's owner reads, sealed like the token
-- (ig_identity.seal_secret, bound to 'app_secret:' || the account id).
-- Written only by ig_identity.connect_account, read only through
-- ig_identity.account_secrets.
-- expires_at: when an Instagram Login token stops working, known once the
-- worker has refreshed it (NULL: unknown, or a Page token that does not
-- expire by itself). refresh_failed_at: the last failed refresh, so that a
-- failing account is tried again an hour later, not every cycle.
ALTER TABLE ig_identity.account_tokens
    ADD COLUMN app_secret bytea,
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN refresh_failed_at timestamptz;
ALTER TABLE ig_identity.account_tokens ALTER COLUMN app_secret SET STATISTICS 0;

-- The /me check with the app secret's proof (p_sealed_app_secret: the
-- stored, sealed secret; NULL: none); same C function, which opens it.
CREATE FUNCTION ig_identity.check_account_token(p_api_host text, p_access_token text,
                                                p_ig_account_id text, p_sealed_app_secret bytea)
RETURNS text
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_check_account_token';
REVOKE ALL ON FUNCTION ig_identity.check_account_token(text, text, text, bytea) FROM PUBLIC;

/*
 * Registers an account or rotates its credentials, with the app secret of a
 * Meta app that has "Require App Secret" on (NULL: the app does not, and a
 * stored secret is forgotten). Every Graph call for the account then carries
 * appsecret_proof. Call it with bind parameters: log_statement would log
 * literals.
 */
CREATE FUNCTION @extschema@.ig_connect_account(
    location_id   text,
    ig_account_id text,
    self_igsid    text,
    access_token  text,
    api_host      text,
    app_secret    text)
RETURNS ig_identity.connected_account
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT * FROM ig_identity.connect_account($1, $2, $3, $4, $5, $6, false)
$fn$;
REVOKE ALL ON FUNCTION @extschema@.ig_connect_account(text, text, text, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.ig_connect_account(text, text, text, text, text, text) IS
    'Registers an Instagram account or rotates its token and app secret (superusers and roles granted EXECUTE)';

-- The app secrets of connected accounts, for the fetcher: the one place a
-- secret is read (sealed, as hex; the fetcher opens it).
CREATE FUNCTION ig_identity.account_secrets(p_location_id text, p_ig_account_id text)
RETURNS TABLE (ig_account_id text, app_secret text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.ig_account_id, pg_catalog.encode(t.app_secret, 'hex')
      FROM ig_identity.accounts a
      JOIN ig_identity.account_tokens t ON t.ig_account_id = a.ig_account_id
     WHERE (p_location_id IS NULL OR a.location_id = p_location_id)
       AND (p_ig_account_id IS NULL OR a.ig_account_id = p_ig_account_id)
       AND t.app_secret IS NOT NULL
$$;
REVOKE ALL ON FUNCTION ig_identity.account_secrets(text, text) FROM PUBLIC;

-- Instagram Login accounts whose token the worker refreshes now: older than
-- p_age (set or last refreshed that long ago; Meta refreshes a token only
-- once it is 24 hours old), not known to have expired, not stopped for
-- reauthentication, and not failed within the last hour.
CREATE FUNCTION ig_identity._tokens_due_for_refresh(p_age interval, p_limit int)
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.ig_account_id
      FROM ig_identity.accounts a
      JOIN ig_identity.account_tokens t ON t.ig_account_id = a.ig_account_id
     WHERE a.api_host = 'graph.instagram.com'
       AND a.status IN ('active', 'paused')
       AND t.rotated_at <= pg_catalog.now() - p_age
       AND (t.expires_at IS NULL OR t.expires_at > pg_catalog.now())
       AND (t.refresh_failed_at IS NULL
            OR t.refresh_failed_at <= pg_catalog.now() - interval '1 hour')
     ORDER BY t.rotated_at, a.ig_account_id COLLATE "C"
     LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION ig_identity._tokens_due_for_refresh(interval, int) FROM PUBLIC;

-- Stores a refreshed token and its expiry in one statement, unless the token
-- was rotated since the worker read it (p_rotated_at): ig_connect_account's
-- newer token wins. The worker seals the token before the call (bound to
-- 'access_token:' || the account id): a plain token as an argument would be
-- printed by auto_explain (log_verbose), its plans holding the values.
-- The account row is locked first, as on every path that touches both.
-- Returns whether it was stored.
CREATE FUNCTION ig_identity._store_refreshed_token(p_ig_account_id text, p_rotated_at timestamptz,
                                                   p_sealed_token bytea, p_expires_in bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM 1 FROM ig_identity.accounts a WHERE a.ig_account_id = p_ig_account_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false; -- disconnected meanwhile
    END IF;
    UPDATE ig_identity.account_tokens t
       SET access_token = p_sealed_token,
           rotated_at = pg_catalog.now(),
           expires_at = pg_catalog.now() + pg_catalog.make_interval(secs => p_expires_in),
           refresh_failed_at = NULL
     WHERE t.ig_account_id = p_ig_account_id
       AND t.rotated_at = p_rotated_at;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- a refresh failure shown before is over
    UPDATE ig_identity.accounts a
       SET last_error = NULL, last_error_code = NULL, updated_at = pg_catalog.now()
     WHERE a.ig_account_id = p_ig_account_id
       AND a.last_error LIKE 'token refresh failed%';
    RETURN true;
END
$fn$;
REVOKE ALL ON FUNCTION ig_identity._store_refreshed_token(text, timestamptz, bytea, bigint) FROM PUBLIC;

-- A failed refresh: the old token stays; the account shows the error (and is
-- stopped for reauthentication when Meta says the token is dead, 190), and
-- the next try waits an hour. Void when the token was rotated meanwhile.
CREATE FUNCTION ig_identity._record_token_refresh_failure(p_ig_account_id text, p_rotated_at timestamptz,
                                                          p_error_code int, p_error text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM 1 FROM ig_identity.accounts a WHERE a.ig_account_id = p_ig_account_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE ig_identity.account_tokens t
       SET refresh_failed_at = pg_catalog.now()
     WHERE t.ig_account_id = p_ig_account_id
       AND t.rotated_at = p_rotated_at;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM ig_identity.record_account_event(
        p_ig_account_id,
        CASE WHEN p_error_code = 190 THEN 'reauth_required' ELSE 'active' END,
        NULL, p_error_code, 'token refresh failed: ' || p_error, NULL, false, p_rotated_at);
END
$fn$;
REVOKE ALL ON FUNCTION ig_identity._record_token_refresh_failure(text, timestamptz, int, text) FROM PUBLIC;

/*
 * Registers an account or rotates its credentials. Everything is validated
 * before any row is written, and no message repeats an argument, so the
 * token cannot come back in an error (a failed INSERT would echo its row; a
 * token passed in the wrong position would be echoed by a message quoting
 * that argument). Call it with a bind parameter: log_statement would log a
 * literal token.
 *
 * Both ig_connect_account signatures land here: the released five-argument
 * one keeps the account's app secret (keep_app_secret), the six-argument one
 * sets it (NULL: the app requires no appsecret_proof). The one place that
 * writes an app secret. Private: the callers run as the extension's owner.
 */
CREATE FUNCTION ig_identity.connect_account(
    location_id     text,
    ig_account_id   text,
    self_igsid      text,
    access_token    text,
    api_host        text,
    app_secret      text,
    keep_app_secret boolean)
RETURNS ig_identity.connected_account
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    v_result ig_identity.connected_account;
    v_page_id text;
    v_app_secret bytea;
    v_sealed bytea;
BEGIN
    IF connect_account.location_id IS NULL OR connect_account.location_id = '' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'location_id must not be empty',
            HINT    = 'Pass the id of the location (sub-account) that owns this Instagram account.';
    END IF;
    IF pg_catalog.length(connect_account.location_id) > 200 THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'location_id is too long',
            DETAIL  = pg_catalog.format('It has %s characters; the limit is 200.',
                                        pg_catalog.length(connect_account.location_id));
    END IF;
    IF connect_account.ig_account_id IS NULL
       OR connect_account.ig_account_id !~ '^[0-9]{1,32}$' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'ig_account_id must be 1 to 32 digits',
            DETAIL  = 'Instagram account ids are decimal strings such as 17841400000000001.';
    END IF;
    IF connect_account.self_igsid IS NULL
       OR connect_account.self_igsid !~ '^[0-9]{1,32}$' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'self_igsid must be 1 to 32 digits',
            DETAIL  = 'The self IGSID is the business account''s own id in its conversations, a decimal string.';
    END IF;
    IF connect_account.access_token IS NULL OR connect_account.access_token = '' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'access_token must not be empty';
    END IF;
    IF pg_catalog.length(connect_account.access_token) > 4096 THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'access_token is too long',
            DETAIL  = pg_catalog.format('It has %s characters; the limit is 4096.',
                                        pg_catalog.length(connect_account.access_token));
    END IF;
    -- Printable ASCII without spaces: what Meta issues. Anything else is a
    -- copy-paste accident (a trailing newline) that would fail every call.
    IF connect_account.access_token !~ '^[!-~]+$' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'access_token contains whitespace, control or non-ASCII characters',
            DETAIL  = 'Access tokens are printable ASCII without spaces.',
            HINT    = 'Copy the token again without surrounding spaces or line breaks.';
    END IF;
    IF connect_account.api_host IS NULL
       OR connect_account.api_host NOT IN ('graph.facebook.com', 'graph.instagram.com') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'unsupported api_host',
            DETAIL  = 'The host decides which kind of token the account uses.',
            HINT    = 'Use graph.facebook.com (Facebook Login, Page token) or graph.instagram.com (Instagram Login, Instagram user token).';
    END IF;

    IF NOT connect_account.keep_app_secret AND connect_account.app_secret IS NOT NULL THEN
        IF connect_account.app_secret = ''
           OR pg_catalog.length(connect_account.app_secret) > 256
           OR connect_account.app_secret !~ '^[!-~]+$' THEN
            RAISE EXCEPTION USING
                ERRCODE = 'invalid_parameter_value',
                MESSAGE = 'app_secret must be 1 to 256 printable ASCII characters without spaces',
                DETAIL  = 'Meta app secrets are hexadecimal strings.',
                HINT    = 'Copy the App Secret from the app''s Basic settings again, or pass NULL when the app does not require appsecret_proof.';
        END IF;
    END IF;
    -- The token and the app secret are stored sealed, each bound to this
    -- account's row; without a key this refuses (55000) before anything is
    -- sent or written.
    v_sealed := ig_identity.seal_secret(connect_account.access_token,
                                        'access_token:' OPERATOR(pg_catalog.||) connect_account.ig_account_id);
    IF connect_account.keep_app_secret THEN
        SELECT t.app_secret INTO v_app_secret
          FROM ig_identity.account_tokens t
         WHERE t.ig_account_id = connect_account.ig_account_id;
    ELSIF connect_account.app_secret IS NOT NULL THEN
        v_app_secret := ig_identity.seal_secret(connect_account.app_secret,
                                                'app_secret:' OPERATOR(pg_catalog.||) connect_account.ig_account_id);
    END IF;

    -- One /me call: the token is alive, of this host's login flavour, and
    -- speaks for this account (Facebook Login: the Page linked to it); with
    -- the app secret's proof when there is one.
    v_page_id := ig_identity.check_account_token(connect_account.api_host,
                                                 connect_account.access_token,
                                                 connect_account.ig_account_id,
                                                 v_app_secret);

    -- Rows held back while the account was stopped or paused are due again
    -- with the new token (otherwise they would wait out the old pause, up
    -- to 15 minutes). Queue rows before the account row: the lock order of
    -- the worker's saves, so the two never deadlock.
    UPDATE ig_identity.refresh_queue q
       SET not_before = pg_catalog.now()
     WHERE q.ig_account_id = connect_account.ig_account_id
       AND q.not_before > pg_catalog.now()
       AND (q.leased_until IS NULL OR q.leased_until < pg_catalog.now());

    -- Connecting again is how credentials are rotated: it also clears the
    -- state that stopped the account (reauth_required, a pause, last error).
    INSERT INTO ig_identity.accounts AS a (ig_account_id, location_id, self_igsid, api_host, page_id)
    VALUES (connect_account.ig_account_id, connect_account.location_id,
            connect_account.self_igsid, connect_account.api_host, v_page_id)
    ON CONFLICT (ig_account_id) DO UPDATE
       SET location_id = EXCLUDED.location_id,
           self_igsid = EXCLUDED.self_igsid,
           api_host = EXCLUDED.api_host,
           page_id = EXCLUDED.page_id,
           status = 'active',
           paused_until = NULL,
           consecutive_throttles = 0,
           last_error = NULL,
           last_error_code = NULL,
           updated_at = pg_catalog.now()
    RETURNING a.ig_account_id, a.location_id, a.status INTO v_result;

    -- A new token's expiry is unknown until the worker refreshes it.
    INSERT INTO ig_identity.account_tokens AS t (ig_account_id, access_token, app_secret)
    VALUES (connect_account.ig_account_id, v_sealed, v_app_secret)
    ON CONFLICT (ig_account_id) DO UPDATE
       SET access_token = EXCLUDED.access_token,
           app_secret = EXCLUDED.app_secret,
           expires_at = NULL,
           refresh_failed_at = NULL,
           rotated_at = pg_catalog.now();

    RETURN v_result;
END
$fn$;
REVOKE ALL ON FUNCTION ig_identity.connect_account(text, text, text, text, text, text, boolean) FROM PUBLIC;

-- ig_connect_account (five arguments): same signature, owner, ACL and
-- comment; it keeps the app secret stored by the six-argument form.
/*
 * Registers an account or rotates its token (see ig_identity.connect_account);
 * an app secret stored by the six-argument form stays.
 */
CREATE OR REPLACE FUNCTION @extschema@.ig_connect_account(
    location_id   text,
    ig_account_id text,
    self_igsid    text,
    access_token  text,
    api_host      text DEFAULT 'graph.facebook.com')
RETURNS ig_identity.connected_account
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT * FROM ig_identity.connect_account($1, $2, $3, $4, $5, NULL, true)
$fn$;

-- ig_identity_status: token_expires_at appended.
CREATE OR REPLACE VIEW @extschema@.ig_identity_status AS
SELECT a.ig_account_id,
       a.location_id,
       a.status,
       COALESCE(q.queue_depth, 0) AS queue_depth,
       COALESCE(q.in_flight, 0) AS in_flight,
       q.next_due,
       a.last_success_at,
       a.last_error,
       a.last_error_code,
       a.paused_until,
       a.last_usage,
       w.pid AS worker_pid,
       w.last_cycle_start AS worker_last_cycle_start,
       w.last_cycle_end AS worker_last_cycle_end,
       w.cycles AS worker_cycles,
       w.identities_refreshed AS worker_identities_refreshed,
       w.failures AS worker_failures,
       w.last_error AS worker_last_error,
       (SELECT count(*) FROM ig_identity.webhook_dead_letters d
         WHERE d.ig_account_id = a.ig_account_id OR d.ig_account_id IS NULL) AS webhook_dead_letters,
       -- Instagram Login: when the token stops working, once known (issue 14b)
       (SELECT t.expires_at FROM ig_identity.account_tokens t
         WHERE t.ig_account_id = a.ig_account_id) AS token_expires_at
  FROM ig_identity.accounts a
  LEFT JOIN LATERAL (
        SELECT count(*) AS queue_depth,
               count(*) FILTER (WHERE r.leased_until >= pg_catalog.now()) AS in_flight,
               min(r.not_before) AS next_due
          FROM ig_identity.refresh_queue r
         WHERE r.ig_account_id = a.ig_account_id) q ON true
 CROSS JOIN @extschema@.ig_identity_worker_state() w;
-- ==== end of issue 14b ====



-- ==== issue 15: many accounts ====
-- ---------------------------------------------------------------------------
-- The scheduler across accounts (issue 15): a fair claim for the worker.
--
-- The worker claims as it goes (src/pg/worker.cpp): while its fetch runs it
-- tops its pipeline up with this function, so transfer slots stay busy while
-- any account has due work, and a quiet account's new row is claimed within
-- about a tenth of a second of its commit waking the worker.
-- ---------------------------------------------------------------------------

-- Claims up to p_limit due rows, at most p_per_account of them held per
-- account: rows this backend already holds under a live lease count against
-- the account's share, so one account's backlog never grows past what its
-- pace can use while its lease runs.  Accounts take turns: every account's
-- oldest row comes before any account's second, so a big account's
-- thousands of rows cannot crowd out a small one.  Rows someone waits for
-- (reason webhook or manual) come first, within the share, across accounts
-- and in their own account's turns: otherwise a new webhook participant,
-- the newest row, sorts after the oldest row of every backlogged account
-- and waits until nearly every backlog has drained.  Which rows are claimable,
-- and for which accounts, is exactly as in _worker_claim (paused accounts'
-- rows, and stopped accounts' rows, take no slot).  p_skip_accounts names
-- accounts the worker's running fetch has seen paused or stopped, whose
-- new state it records only when the fetch ends: their rows stay put.
CREATE FUNCTION ig_identity._worker_claim_fair(p_limit int, p_per_account int, p_lease interval,
                                               p_skip_accounts text[])
RETURNS TABLE (ig_account_id text, ig_user_id text, reason text, attempts int)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH callable AS (
        SELECT a.ig_account_id
          FROM ig_identity.accounts a
         WHERE a.status IN ('active', 'paused')
           AND (a.paused_until IS NULL OR a.paused_until <= pg_catalog.now())
           AND (a.status = 'active' OR a.paused_until IS NOT NULL)
           AND a.ig_account_id <> ALL (COALESCE(p_skip_accounts, '{}'))
    ), held AS (
        SELECT r.ig_account_id, pg_catalog.count(*) AS n
          FROM ig_identity.refresh_queue r
         WHERE r.leased_by = pg_catalog.pg_backend_pid()
           AND r.leased_until >= pg_catalog.now()
         GROUP BY r.ig_account_id
    ), due AS (
        SELECT r.ig_account_id, r.ig_user_id,
               pg_catalog.row_number() OVER (PARTITION BY r.ig_account_id
                                             ORDER BY r.reason IN ('webhook', 'manual') DESC,
                                                      r.not_before, r.ig_user_id) AS turn
          FROM ig_identity.refresh_queue r
          JOIN callable c ON c.ig_account_id = r.ig_account_id
         WHERE r.not_before <= pg_catalog.now()
           AND (r.leased_until IS NULL
                OR r.leased_until < pg_catalog.now()
                OR (r.leased_by IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_activity(r.leased_by) s
                                     WHERE s.pid = r.leased_by)))
    ), chosen AS (
        SELECT d.ig_account_id, d.ig_user_id, d.turn
          FROM due d
          LEFT JOIN held h ON h.ig_account_id = d.ig_account_id
         WHERE d.turn <= GREATEST(0, p_per_account - COALESCE(h.n, 0))
    ), locked AS (
        SELECT r.ig_account_id, r.ig_user_id
          FROM ig_identity.refresh_queue r
          JOIN chosen ch ON ch.ig_account_id = r.ig_account_id AND ch.ig_user_id = r.ig_user_id
         WHERE r.not_before <= pg_catalog.now()
           AND (r.leased_until IS NULL
                OR r.leased_until < pg_catalog.now()
                OR (r.leased_by IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_activity(r.leased_by) s
                                     WHERE s.pid = r.leased_by)))
         ORDER BY r.reason IN ('webhook', 'manual') DESC, ch.turn, r.not_before,
                  r.ig_account_id, r.ig_user_id
         LIMIT GREATEST(0, p_limit)
           FOR UPDATE OF r SKIP LOCKED
    )
    UPDATE ig_identity.refresh_queue q
       SET leased_until = pg_catalog.now() + p_lease,
           leased_by = pg_catalog.pg_backend_pid(),
           attempts = q.attempts + 1
      FROM locked l
     WHERE q.ig_account_id = l.ig_account_id AND q.ig_user_id = l.ig_user_id
    RETURNING q.ig_account_id, q.ig_user_id, q.reason, q.attempts
$$;

REVOKE ALL ON FUNCTION ig_identity._worker_claim_fair(int, int, interval, text[]) FROM PUBLIC;

-- The worker's history row of one cycle, kept current by every save of the
-- cycle in the same transaction as the results it counts: the first save
-- inserts it (p_run_id NULL; its id is returned), later ones set the
-- figures so far.  A worker that dies mid-cycle leaves a row that counts
-- exactly what it saved.  Other sessions see a running cycle's progress in
-- it; finished_at is the time of its latest save.  Keeps the newest 1,000
-- runs, as record_run does.
CREATE FUNCTION ig_identity._worker_run_save(p_run_id bigint, p_started timestamptz, p_refreshed int,
                                             p_failed int, p_total int, p_errors jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint;
BEGIN
    IF p_run_id IS NOT NULL THEN
        UPDATE ig_identity.refresh_runs r
           SET finished_at = pg_catalog.clock_timestamp(), refreshed = p_refreshed, failed = p_failed,
               total = p_total, errors = p_errors
         WHERE r.id OPERATOR(pg_catalog.=) p_run_id AND r.source OPERATOR(pg_catalog.=) 'worker'
        RETURNING r.id INTO v_id;
        IF v_id IS NOT NULL THEN
            RETURN v_id;
        END IF;
    END IF;
    INSERT INTO ig_identity.refresh_runs (source, location_id, started_at, finished_at,
                                          refreshed, failed, total, errors)
    VALUES ('worker', NULL, p_started, pg_catalog.clock_timestamp(), p_refreshed, p_failed, p_total, p_errors)
    RETURNING id INTO v_id;
    DELETE FROM ig_identity.refresh_runs
     WHERE id IN (SELECT d.id FROM ig_identity.refresh_runs d
                   WHERE d.id OPERATOR(pg_catalog.<=) (SELECT pg_catalog.max(id) OPERATOR(pg_catalog.-) 1000
                                                         FROM ig_identity.refresh_runs)
                     FOR UPDATE SKIP LOCKED);
    RETURN v_id;
END
$$;

REVOKE ALL ON FUNCTION ig_identity._worker_run_save(bigint, timestamptz, int, int, int, jsonb) FROM PUBLIC;

-- The worker's current cycle as other sessions see it: its history row,
-- which every mid-cycle save keeps current (the figures are what has been
-- saved so far), with a rate and an estimate of the time left for the
-- rows it has claimed.  `running` is false once the cycle has ended (the
-- row then shows the last cycle).  No token, no identity.
CREATE VIEW @extschema@.ig_identity_worker_progress AS
SELECT r.id AS run_id,
       w.pid AS worker_pid,
       (w.pid IS NOT NULL
        AND w.last_cycle_start IS NOT NULL
        AND (w.last_cycle_end IS NULL OR w.last_cycle_end < w.last_cycle_start)
        AND r.started_at >= w.last_cycle_start) AS running,
       r.started_at,
       r.finished_at AS last_save_at,
       r.refreshed + r.failed AS done,
       r.failed,
       r.total AS claimed,
       p.rate AS per_second,
       CASE WHEN p.rate > 0 AND r.total > r.refreshed + r.failed
            THEN pg_catalog.make_interval(secs => (r.total - r.refreshed - r.failed) / p.rate)
       END AS time_left
  FROM (SELECT * FROM ig_identity.refresh_runs
         WHERE source OPERATOR(pg_catalog.=) 'worker'
         ORDER BY id DESC LIMIT 1) r
 CROSS JOIN @extschema@.ig_identity_worker_state() w
 CROSS JOIN LATERAL (
        SELECT CASE WHEN r.finished_at > r.started_at
                    THEN ((r.refreshed + r.failed)
                          / EXTRACT(epoch FROM r.finished_at - r.started_at))::double precision
               END AS rate) p;

REVOKE ALL ON @extschema@.ig_identity_worker_progress FROM PUBLIC;
GRANT SELECT ON @extschema@.ig_identity_worker_progress TO pg_monitor;
-- review15: the history's trims skip rows another transaction holds (an
-- open transaction that recorded a run stalled the worker's saves)
CREATE OR REPLACE FUNCTION ig_identity.trim_refresh_runs()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    -- rows another transaction is trimming (or updating) are skipped: an
    -- open transaction that recorded a run must not stall every other
    -- writer of the history, the worker's mid-cycle saves among them
    DELETE FROM ig_identity.refresh_runs r
     WHERE r.id IN (SELECT d.id FROM ig_identity.refresh_runs d
                     WHERE d.id < (SELECT k.id FROM ig_identity.refresh_runs k
                                    ORDER BY k.id DESC OFFSET 999 LIMIT 1)
                       FOR UPDATE SKIP LOCKED);
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION ig_identity.record_run(p_source text, p_location_id text, p_started timestamptz,
                                       p_refreshed int, p_failed int, p_total int, p_errors jsonb)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO ig_identity.refresh_runs (source, location_id, started_at, finished_at,
                                          refreshed, failed, total, errors)
    VALUES (p_source, p_location_id, p_started, pg_catalog.clock_timestamp(),
            p_refreshed, p_failed, p_total, p_errors);
    DELETE FROM ig_identity.refresh_runs
     WHERE id IN (SELECT d.id FROM ig_identity.refresh_runs d
                   WHERE d.id <= (SELECT max(id) - 1000 FROM ig_identity.refresh_runs)
                     FOR UPDATE SKIP LOCKED);
$$;
-- ==== end of issue 15 ====



-- ==== issue 16: a DBA's first hour ====
-- Item 2, tokens encrypted at rest.
-- Access tokens are stored sealed: AES-256-GCM with the key that the server
-- setting ig_identity.key_file names, bound to their row (the associated
-- data is 'access_token:' || ig_account_id), so a dump holds ciphertext
-- only and a value copied to another row does not open.  Only the library
-- opens them, where it reads credentials; no SQL function returns a token.
-- Without a key this refuses (SQLSTATE 55000), unless
-- ig_identity.allow_unencrypted_tokens is on.  Private.
CREATE FUNCTION ig_identity.seal_secret(p_plain text, p_context text)
RETURNS bytea
LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_seal_secret';
REVOKE ALL ON FUNCTION ig_identity.seal_secret(text, text) FROM PUBLIC;

-- After the DBA has pointed ig_identity.previous_key_file at the old key and
-- ig_identity.key_file at the new one: seals every stored secret that is not
-- under the current key (the old key's, or unencrypted ones) again with it,
-- and returns how many.  Superuser only; one value that does not open stops
-- it, and nothing changes.
CREATE FUNCTION @extschema@.ig_identity_rotate_key()
RETURNS bigint
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_rotate_key';
REVOKE ALL ON FUNCTION @extschema@.ig_identity_rotate_key() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.ig_identity_rotate_key() IS
    'Encrypts every stored access token again with the key of ig_identity.key_file (superuser)';

-- Whether a stored value opens to p_candidate: how a superuser (or a test)
-- checks which token is stored, without a function that returns one.  A
-- value that does not open raises the error its use would.  Private.
CREATE FUNCTION ig_identity.secret_matches(p_column text, p_row_key text, p_stored bytea,
                                           p_candidate text)
RETURNS boolean
LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_secret_matches';
REVOKE ALL ON FUNCTION ig_identity.secret_matches(text, text, bytea, text) FROM PUBLIC;

-- Existing tokens are sealed in place.  Without a key (and without
-- ig_identity.allow_unencrypted_tokens) seal_secret refuses with a hint
-- naming ig_identity.key_file, and the whole update is rolled back: no
-- token is lost.  With allow_unencrypted_tokens on they are kept unsealed
-- until ig_identity_rotate_key() seals them.  No token, no key needed.
ALTER TABLE ig_identity.account_tokens
    ALTER COLUMN access_token TYPE bytea
    USING ig_identity.seal_secret(access_token, pg_catalog.concat('access_token:', ig_account_id));
ALTER TABLE ig_identity.account_tokens ALTER COLUMN access_token SET STATISTICS 0;

CREATE OR REPLACE FUNCTION ig_identity.account_credentials(p_location_id text, p_ig_account_id text)
RETURNS TABLE (ig_account_id text, self_igsid text, api_host text, access_token text,
               status text, paused_until timestamptz, token_rotated_at timestamptz,
               consecutive_throttles int)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.ig_account_id, a.self_igsid, a.api_host, pg_catalog.encode(t.access_token, 'hex'), a.status, a.paused_until,
           t.rotated_at, a.consecutive_throttles
      FROM ig_identity.accounts a
      JOIN ig_identity.account_tokens t ON t.ig_account_id = a.ig_account_id
     WHERE (p_location_id IS NULL OR a.location_id = p_location_id)
       AND (p_ig_account_id IS NULL OR a.ig_account_id = p_ig_account_id)
     ORDER BY a.ig_account_id COLLATE "C"
$$;

-- ig_connect_account seals the token through ig_identity.connect_account
-- (defined above, with the app secret).

-- Items 1, 3, 4, 12 (src/sql/50_dba.sql): the status view and the check work
-- with plain grants, the staged connect, the owner of created inbox tables.
-- (The refusal of inbox tables in another schema is a CREATE EXTENSION check
-- and creates nothing.)
/* ------------------------------------------------------------------------
 * A DBA's first hour (issue 16): plain grants for the app and monitoring
 * roles, connecting an account without the token in any statement, who owns
 * the inbox tables the extension creates, and app tables in another schema.
 * ------------------------------------------------------------------------ */

-- The worker's state for ig_identity_status.  A view runs the functions it
-- calls with the reader's rights, so a monitoring role granted SELECT on the
-- view still failed on ig_identity_worker_state (closed to PUBLIC).  This is
-- the same C function under a private name, executable by PUBLIC but in
-- schema ig_identity, where PUBLIC has no USAGE: no role but the extension's
-- owner can name it, so it is reached only through the view, whose SELECT
-- is the grant that decides.  It reads shared memory only (the worker's
-- counters and last error, never a token) and is not SECURITY DEFINER.
CREATE FUNCTION ig_identity.status_worker_state(
    OUT pid int, OUT last_cycle_start timestamptz, OUT last_cycle_end timestamptz,
    OUT cycles bigint, OUT identities_refreshed bigint, OUT failures bigint,
    OUT last_error text, OUT errors bigint, OUT in_flight int, OUT wakeups bigint,
    OUT last_error_at timestamptz, OUT started_at timestamptz)
RETURNS record
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_identity_worker_state';
REVOKE ALL ON FUNCTION ig_identity.status_worker_state() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ig_identity.status_worker_state() TO PUBLIC;

-- The same columns as before (webhook_dead_letters, then 14b's token_expires_at, last); only the source
-- of the worker's columns changes.
CREATE OR REPLACE VIEW @extschema@.ig_identity_status AS
SELECT a.ig_account_id,
       a.location_id,
       a.status,
       COALESCE(q.queue_depth, 0) AS queue_depth,
       COALESCE(q.in_flight, 0) AS in_flight,
       q.next_due,
       a.last_success_at,
       a.last_error,
       a.last_error_code,
       a.paused_until,
       a.last_usage,
       w.pid AS worker_pid,
       w.last_cycle_start AS worker_last_cycle_start,
       w.last_cycle_end AS worker_last_cycle_end,
       w.cycles AS worker_cycles,
       w.identities_refreshed AS worker_identities_refreshed,
       w.failures AS worker_failures,
       w.last_error AS worker_last_error,
       (SELECT count(*) FROM ig_identity.webhook_dead_letters d
         WHERE d.ig_account_id = a.ig_account_id OR d.ig_account_id IS NULL) AS webhook_dead_letters,
       (SELECT t.expires_at FROM ig_identity.account_tokens t
         WHERE t.ig_account_id = a.ig_account_id) AS token_expires_at
  FROM ig_identity.accounts a
  LEFT JOIN LATERAL (
        SELECT count(*) AS queue_depth,
               count(*) FILTER (WHERE r.leased_until >= pg_catalog.now()) AS in_flight,
               min(r.not_before) AS next_due
          FROM ig_identity.refresh_queue r
         WHERE r.ig_account_id = a.ig_account_id) q ON true
 CROSS JOIN ig_identity.status_worker_state() w;

-- The rows the repair set aside are the app's data: readable by the roles
-- granted SELECT on this view (the README's GRANT block grants it to the app
-- role and the monitoring role), never by PUBLIC.
CREATE VIEW @extschema@.ig_identity_quarantine AS
SELECT q.id, q.source_table, q.reason, q.row_data, q.quarantined_at
  FROM ig_identity.quarantine q;
REVOKE ALL ON @extschema@.ig_identity_quarantine FROM PUBLIC;
COMMENT ON VIEW @extschema@.ig_identity_quarantine IS
    'Rows the repair set aside, each with its reason (grant SELECT to the roles that review them)';

-- The check counts the quarantine through the view: a role granted SELECT
-- on it (and reading the cache) runs the check without any access to schema
-- ig_identity.
CREATE OR REPLACE FUNCTION @extschema@.ig_identity_check(
    OUT total_rows        bigint,
    OUT null_account_rows bigint,
    OUT distinct_pairs    bigint,
    OUT quarantined_rows  bigint)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT pg_catalog.count(*),
           pg_catalog.count(*) FILTER (WHERE c.ig_account_id IS NULL),
           pg_catalog.count(DISTINCT (c.ig_account_id, c.ig_user_id)),
           (SELECT pg_catalog.count(*) FROM @extschema@.ig_identity_quarantine)
      FROM @extschema@.instagram_user_cache c
$fn$;

/*
 * Connects an account with the token read from the caller's own temporary
 * table pg_temp.ig_identity_token_stage (one row, column access_token),
 * filled by COPY ... FROM STDIN: COPY's data is never logged, and the token
 * is then in no statement, no bind parameter and no plan (it reaches
 * ig_connect_account through a sub-select, never as a constant).  The
 * staged row is deleted once the account is connected.  SECURITY INVOKER:
 * the caller reads its own table and needs EXECUTE on the five-argument
 * ig_connect_account as well; the stored app secret stays, as with that
 * form.
 */
CREATE FUNCTION @extschema@.ig_connect_account_staged(
    location_id   text,
    ig_account_id text,
    self_igsid    text,
    api_host      text DEFAULT 'graph.facebook.com')
RETURNS ig_identity.connected_account
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_stage  regclass := pg_catalog.to_regclass('pg_temp.ig_identity_token_stage');
    v_rows   bigint;
    -- record, not ig_identity.connected_account: the caller cannot name schema ig_identity
    v_result record;
BEGIN
    IF v_stage IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'undefined_table',
            MESSAGE = 'no staged token: pg_temp.ig_identity_token_stage does not exist in this session',
            HINT    = 'CREATE TEMP TABLE ig_identity_token_stage (access_token text), fill it with COPY ig_identity_token_stage FROM STDIN, then call ig_connect_account_staged in the same session.';
    END IF;
    SELECT pg_catalog.count(*) INTO v_rows FROM pg_temp.ig_identity_token_stage;
    IF v_rows OPERATOR(pg_catalog.<>) 1 THEN
        RAISE EXCEPTION USING
            ERRCODE = 'cardinality_violation',
            MESSAGE = 'pg_temp.ig_identity_token_stage must hold exactly one token',
            DETAIL  = pg_catalog.format('It holds %s rows.', v_rows),
            HINT    = 'DELETE FROM ig_identity_token_stage, then COPY one token into it.';
    END IF;

    SELECT * INTO v_result
      FROM @extschema@.ig_connect_account(
                ig_connect_account_staged.location_id,
                ig_connect_account_staged.ig_account_id,
                ig_connect_account_staged.self_igsid,
                (SELECT s.access_token FROM pg_temp.ig_identity_token_stage s),
                ig_connect_account_staged.api_host);

    DELETE FROM pg_temp.ig_identity_token_stage;
    RETURN v_result;
END
$fn$;
REVOKE ALL ON FUNCTION @extschema@.ig_connect_account_staged(text, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.ig_connect_account_staged(text, text, text, text) IS
    'ig_connect_account with the token read from pg_temp.ig_identity_token_stage (filled by COPY FROM STDIN, never logged)';

/*
 * An inbox table the extension creates belongs to the role named by
 * ig_identity.inbox_owner, else to the database's owner: not to the
 * superuser running CREATE EXTENSION, whose rights the app would otherwise
 * need.  The repair calls this right after creating each absent table and
 * its indexes, before any row is written, so the rest of the repair already
 * runs as the new owner.
 */
CREATE OR REPLACE FUNCTION ig_identity.detach_from_extension(p_rel regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_named  text := NULLIF(pg_catalog.current_setting('ig_identity.inbox_owner', true), '');
    v_target oid;
    v_owner  oid;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                  AND d.objid = p_rel AND d.objsubid = 0
                  AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
                  AND d.deptype = 'e') THEN
        EXECUTE pg_catalog.format('ALTER EXTENSION ig_identity DROP TABLE %s', p_rel);
    END IF;

    IF v_named IS NOT NULL THEN
        v_target := pg_catalog.to_regrole(pg_catalog.quote_ident(v_named));
        IF v_target IS NULL THEN
            RAISE EXCEPTION USING
                ERRCODE = 'undefined_object',
                MESSAGE = pg_catalog.format('ig_identity.inbox_owner names role "%s", which does not exist', v_named),
                HINT    = 'Create the role, or SET ig_identity.inbox_owner = '''' to give the inbox tables to the database''s owner.';
        END IF;
    ELSE
        SELECT d.datdba INTO v_target FROM pg_catalog.pg_database d
         WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database();
    END IF;
    SELECT c.relowner INTO v_owner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) p_rel;
    IF v_owner OPERATOR(pg_catalog.<>) v_target THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s OWNER TO %I', p_rel,
                                  (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) v_target));
    END IF;
END
$fn$;

-- Item 10: DROP EXTENSION keeps the quarantine (src/sql/50_dba.sql).
/*
 * DROP EXTENSION keeps the quarantine.  The rows the repair set aside are
 * the app's data, but they live in ig_identity.quarantine, which goes with
 * the extension.  At the start of DROP EXTENSION (before anything is
 * dropped) this copies them into @extschema@.ig_identity_quarantine_kept, an
 * ordinary table of the app (never an extension member, so the drop leaves
 * it), created on first use and owned by the owner of instagram_user_cache
 * (else the database's owner).  A row already kept is not copied twice.
 * The rows are written as that owner in a security-restricted operation
 * (ig_identity.as_owner), so the app's code on the kept table never runs
 * with the dropping superuser's rights.  ddl_command_start does not say
 * which extension is being dropped: any DROP EXTENSION by a superuser copies
 * (the copy is idempotent); other roles cannot drop ig_identity and pass.
 */
CREATE FUNCTION ig_identity.keep_quarantine()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_nsp     oid := '@extschema@'::pg_catalog.regnamespace;
    v_kept    regclass;
    v_owner   oid;
    v_rows    jsonb;
    v_skipped bigint;
BEGIN
    IF NOT COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r
                      WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER), false) THEN
        RETURN;
    END IF;
    -- Whatever goes wrong here is a WARNING: this runs for every extension's
    -- drop, and must never stop one (nor hand rows to the wrong role).
    BEGIN
        -- The kept table belongs to the cache's owner (else the database's).
        SELECT c.relowner INTO v_owner FROM pg_catalog.pg_class c
         WHERE c.relnamespace OPERATOR(pg_catalog.=) v_nsp
           AND c.relname OPERATOR(pg_catalog.=) 'instagram_user_cache';
        IF v_owner IS NULL THEN
            SELECT d.datdba INTO v_owner FROM pg_catalog.pg_database d
             WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database();
        END IF;
        -- Only rows of tables that owner owns: with mixed owners, neither
        -- owner may read the other's rows (37_mixed_owners.sql).
        SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(q) ORDER BY q.id)
                   FILTER (WHERE o.relowner OPERATOR(pg_catalog.=) v_owner),
               pg_catalog.count(*) FILTER (WHERE o.relowner IS DISTINCT FROM v_owner)
          INTO v_rows, v_skipped
          FROM ig_identity.quarantine q
          LEFT JOIN pg_catalog.pg_class o ON o.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(q.source_table);
        IF v_skipped OPERATOR(pg_catalog.>) 0 THEN
            RAISE WARNING USING
                MESSAGE = pg_catalog.format('%s quarantined rows of tables with another owner than instagram_user_cache''s are not kept', v_skipped),
                HINT    = 'Copy them from ig_identity.quarantine before dropping ig_identity if they are needed.';
        END IF;
        IF v_rows IS NULL THEN
            RETURN;
        END IF;

        SELECT c.oid INTO v_kept FROM pg_catalog.pg_class c
         WHERE c.relnamespace OPERATOR(pg_catalog.=) v_nsp
           AND c.relname OPERATOR(pg_catalog.=) 'ig_identity_quarantine_kept';
        IF v_kept IS NOT NULL THEN
            -- someone else's object of that name gets nothing
            IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                            WHERE c.oid OPERATOR(pg_catalog.=) v_kept
                              AND c.relkind OPERATOR(pg_catalog.=) 'r'
                              AND c.relowner OPERATOR(pg_catalog.=) v_owner) THEN
                RAISE WARNING USING
                    MESSAGE = pg_catalog.format('the quarantine is not kept: %s is not a table owned by %s',
                                                v_kept, pg_catalog.pg_get_userbyid(v_owner)),
                    HINT    = 'Drop or rename that object, or copy ig_identity.quarantine before dropping ig_identity.';
                RETURN;
            END IF;
        ELSE
            EXECUTE pg_catalog.format(
                'CREATE TABLE %I.ig_identity_quarantine_kept (
                     quarantine_id  bigint NOT NULL,
                     source_table   text NOT NULL,
                     reason         text NOT NULL,
                     row_data       jsonb NOT NULL,
                     quarantined_at timestamptz NOT NULL,
                     kept_at        timestamptz NOT NULL DEFAULT pg_catalog.now())',
                (SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid OPERATOR(pg_catalog.=) v_nsp));
            SELECT c.oid INTO v_kept FROM pg_catalog.pg_class c
             WHERE c.relnamespace OPERATOR(pg_catalog.=) v_nsp
               AND c.relname OPERATOR(pg_catalog.=) 'ig_identity_quarantine_kept';
            EXECUTE pg_catalog.format('ALTER TABLE %s OWNER TO %I', v_kept, pg_catalog.pg_get_userbyid(v_owner));
        END IF;

        PERFORM ig_identity.as_owner(v_kept, pg_catalog.format(
            'INSERT INTO %s AS k (quarantine_id, source_table, reason, row_data, quarantined_at)
             SELECT (r.value OPERATOR(pg_catalog.->>) ''id'')::pg_catalog.int8,
                    r.value OPERATOR(pg_catalog.->>) ''source_table'',
                    r.value OPERATOR(pg_catalog.->>) ''reason'',
                    r.value OPERATOR(pg_catalog.->) ''row_data'',
                    (r.value OPERATOR(pg_catalog.->>) ''quarantined_at'')::pg_catalog.timestamptz
               FROM pg_catalog.jsonb_array_elements($1) AS r
              WHERE NOT EXISTS (
                    SELECT 1 FROM %s AS o
                     WHERE o.source_table OPERATOR(pg_catalog.=) (r.value OPERATOR(pg_catalog.->>) ''source_table'')
                       AND o.reason OPERATOR(pg_catalog.=) (r.value OPERATOR(pg_catalog.->>) ''reason'')
                       AND o.row_data OPERATOR(pg_catalog.=) (r.value OPERATOR(pg_catalog.->) ''row_data'')
                       AND o.quarantined_at OPERATOR(pg_catalog.=)
                           (r.value OPERATOR(pg_catalog.->>) ''quarantined_at'')::pg_catalog.timestamptz)',
            v_kept, v_kept), v_rows);
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING USING
            MESSAGE = 'the quarantine could not be kept: ' OPERATOR(pg_catalog.||) SQLERRM,
            HINT    = 'Copy ig_identity.quarantine before dropping ig_identity if its rows are needed.';
    END;
END
$fn$;

CREATE EVENT TRIGGER ig_identity_keep_quarantine ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION ig_identity.keep_quarantine();
REVOKE ALL ON FUNCTION ig_identity.keep_quarantine() FROM PUBLIC;

-- Item 9: one log line per distinct cause of an account failure.
/*
 * One server log line per distinct cause of an account's failure: whenever
 * an account's last_error changes to a new text (a refused token, a
 * throttle, "Could not resolve host", a 5xx after the retries), whoever
 * recorded it (the worker, a SQL caller), the log says which account and
 * why; the same error again is not logged again.  The status view shows it
 * per account.  last_error never holds a token (the fetcher scrubs every
 * error text).
 */
CREATE FUNCTION ig_identity.log_account_error()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF NEW.last_error IS NOT NULL AND NEW.last_error IS DISTINCT FROM OLD.last_error THEN
        RAISE LOG 'ig_identity: account % (location %) failed: %',
            NEW.ig_account_id, NEW.location_id,
            pg_catalog.left(NEW.last_error, 500) OPERATOR(pg_catalog.||)
            CASE WHEN NEW.last_error_code IS NULL THEN ''
                 ELSE pg_catalog.format(' (code %s)', NEW.last_error_code) END
            USING DETAIL = pg_catalog.format('The account is %s; see ig_identity_status.', NEW.status);
    END IF;
    RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION ig_identity.log_account_error() FROM PUBLIC;

CREATE TRIGGER accounts_log_error
    AFTER UPDATE OF last_error ON ig_identity.accounts
    FOR EACH ROW EXECUTE FUNCTION ig_identity.log_account_error();
-- ig_identity_worker_progress: the same columns, its worker state from
-- status_worker_state() as the status view's, so that GRANT SELECT on the
-- view is enough (no pg_monitor).
CREATE OR REPLACE VIEW @extschema@.ig_identity_worker_progress AS
SELECT r.id AS run_id,
       w.pid AS worker_pid,
       (w.pid IS NOT NULL
        AND w.last_cycle_start IS NOT NULL
        AND (w.last_cycle_end IS NULL OR w.last_cycle_end < w.last_cycle_start)
        AND r.started_at >= w.last_cycle_start) AS running,
       r.started_at,
       r.finished_at AS last_save_at,
       r.refreshed + r.failed AS done,
       r.failed,
       r.total AS claimed,
       p.rate AS per_second,
       CASE WHEN p.rate > 0 AND r.total > r.refreshed + r.failed
            THEN pg_catalog.make_interval(secs => (r.total - r.refreshed - r.failed) / p.rate)
       END AS time_left
  FROM (SELECT * FROM ig_identity.refresh_runs
         WHERE source OPERATOR(pg_catalog.=) 'worker'
         ORDER BY id DESC LIMIT 1) r
 CROSS JOIN ig_identity.status_worker_state() w
 CROSS JOIN LATERAL (
        SELECT CASE WHEN r.finished_at > r.started_at
                    THEN ((r.refreshed + r.failed)
                          / EXTRACT(epoch FROM r.finished_at - r.started_at))::double precision
               END AS rate) p;

GRANT SELECT ON @extschema@.ig_identity_worker_progress TO pg_monitor;
-- ==== end of issue 16 ====



-- ==== issue 17: scale-out ====
-- Citus: the helpers of 60_citus.sql and ig_identity_distribute(); the
-- repair, readers and upserts in the forms Citus runs (same results on one
-- node). See "Scale-out with Citus" in the README.

CREATE FUNCTION ig_identity.citus_active()
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'citus')
$fn$;

CREATE FUNCTION ig_identity.citus_worker_node()
RETURNS boolean
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_worker boolean;
BEGIN
    IF NOT ig_identity.citus_active() THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_local_group g
                             WHERE g.groupid OPERATOR(pg_catalog.<>) 0)'
       INTO v_worker;
    RETURN v_worker;
END
$fn$;

CREATE FUNCTION ig_identity.is_distributed(p_rel regclass)
RETURNS boolean
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_dist boolean;
BEGIN
    IF p_rel IS NULL OR NOT ig_identity.citus_active() THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                             WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1
                               AND p.partmethod OPERATOR(pg_catalog.=) ''h'')'
       INTO v_dist USING p_rel;
    RETURN v_dist;
END
$fn$;

CREATE FUNCTION ig_identity.account_shard_reachable(p_ig_account_id text)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_cache regclass := pg_catalog.to_regclass('@extschema@.instagram_user_cache');
    v_ok    boolean;
BEGIN
    IF NOT ig_identity.is_distributed(v_cache) THEN
        RETURN true;
    END IF;
    EXECUTE 'SELECT pg_catalog.bool_and(pg_catalog.citus_check_connection_to_node(p.nodename, p.nodeport))
               FROM pg_catalog.pg_dist_shard_placement p
              WHERE p.shardid OPERATOR(pg_catalog.=)
                    pg_catalog.get_shard_id_for_distribution_column($1, $2)'
       INTO v_ok USING v_cache, p_ig_account_id;
    RETURN COALESCE(v_ok, true);
END
$fn$;

CREATE FUNCTION ig_identity.citus_unreachable_accounts()
RETURNS text[]
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_cache regclass := pg_catalog.to_regclass('@extschema@.instagram_user_cache');
    v_down  text[];
BEGIN
    IF NOT ig_identity.is_distributed(v_cache) THEN
        RETURN '{}';
    END IF;
    EXECUTE 'WITH down AS MATERIALIZED (
                 SELECT n.nodename, n.nodeport
                   FROM pg_catalog.pg_dist_node n
                  WHERE n.isactive AND n.groupid OPERATOR(pg_catalog.<>) 0
                    AND NOT pg_catalog.citus_check_connection_to_node(n.nodename, n.nodeport))
             SELECT pg_catalog.array_agg(a.ig_account_id)
               FROM ig_identity.accounts a
              WHERE EXISTS (SELECT 1 FROM down)
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_dist_shard_placement p, down d
                             WHERE p.shardid OPERATOR(pg_catalog.=)
                                   pg_catalog.get_shard_id_for_distribution_column($1, a.ig_account_id)
                               AND p.nodename OPERATOR(pg_catalog.=) d.nodename
                               AND p.nodeport OPERATOR(pg_catalog.=) d.nodeport)'
       INTO v_down USING v_cache;
    RETURN COALESCE(v_down, '{}');
END
$fn$;

CREATE FUNCTION ig_identity.ensure_account_unique_id(p_rel regclass, p_index name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_moved bigint;
    v_group jsonb;
BEGIN
    IF ig_identity.has_unique_index(p_rel, ARRAY['ig_account_id', 'id']::name[]) THEN
        RETURN 0;
    END IF;
    PERFORM ig_identity.require_free_name(p_rel, p_index, '(ig_account_id, id)');
    PERFORM ig_identity.require_owner_create(p_rel);
    IF ig_identity.is_distributed(p_rel) THEN
        -- Citus runs no DELETE that names ctids on a distributed table: each
        -- group of copies is deleted by its key and its first copy written
        -- back (the others go to the quarantine, as on one node). The rows
        -- become jsonb after the read, not in a DELETE's RETURNING.
        v_moved := 0;
        FOREACH v_group IN ARRAY COALESCE(ig_identity.as_owner(p_rel, pg_catalog.format(
            'SELECT pg_catalog.jsonb_build_object(''acc'', g.acc, ''mid'', g.mid, ''copies'', pg_catalog.to_jsonb(g.copies))
               FROM (SELECT t.ig_account_id::text AS acc, t.id::text AS mid,
                            pg_catalog.array_agg(pg_catalog.to_jsonb(t) ORDER BY t.ctid) AS copies
                       FROM %s t
                      WHERE t.id IS NOT NULL
                      GROUP BY t.ig_account_id, t.id
                     HAVING pg_catalog.count(*) > 1) AS g', p_rel)), '{}')
        LOOP
            PERFORM ig_identity.as_owner(p_rel, pg_catalog.format(
                'DELETE FROM %s t WHERE t.ig_account_id::text OPERATOR(pg_catalog.=) ($1 ->> ''acc'')
                                    AND t.id::text OPERATOR(pg_catalog.=) ($1 ->> ''mid'')', p_rel),
                v_group);
            PERFORM ig_identity.as_owner(p_rel, pg_catalog.format(
                'INSERT INTO %1$s SELECT (pg_catalog.jsonb_populate_record(NULL::%1$s, $1)).*', p_rel),
                v_group -> 'copies' -> 0);
            INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
            SELECT ig_identity.table_label(p_rel), 'duplicate_id', c.row_data
              FROM pg_catalog.jsonb_array_elements(v_group -> 'copies') WITH ORDINALITY AS c(row_data, n)
             WHERE c.n > 1;
            v_moved := v_moved + pg_catalog.jsonb_array_length(v_group -> 'copies') - 1;
        END LOOP;
    ELSE
        INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
        SELECT ig_identity.table_label(p_rel), 'duplicate_id', r.row_data
          FROM pg_catalog.unnest(ig_identity.as_owner(p_rel, pg_catalog.format(
            'WITH ranked AS (
                 SELECT t.ig_account_id AS acc, t.ctid AS tid,
                        pg_catalog.row_number() OVER (PARTITION BY t.ig_account_id, t.id
                                                      ORDER BY t.ctid) AS n
                   FROM %1$s t
                  WHERE t.id IS NOT NULL AND t.ig_account_id IS NOT NULL),
             moved AS (
                 DELETE FROM %1$s t USING ranked r
                  WHERE t.ig_account_id OPERATOR(pg_catalog.=) r.acc
                    AND t.ctid OPERATOR(pg_catalog.=) r.tid AND r.n > 1
              RETURNING t.*)
             SELECT pg_catalog.to_jsonb(m) FROM moved m', p_rel))) AS r(row_data);
        GET DIAGNOSTICS v_moved = ROW_COUNT;
    END IF;
    PERFORM ig_identity.as_owner(p_rel, pg_catalog.format(
        'CREATE UNIQUE INDEX %I ON %s (ig_account_id, id)', p_index, p_rel));
    RETURN v_moved;
END
$fn$;

CREATE FUNCTION @extschema@.ig_identity_distribute(
    OUT table_name regclass, OUT action text)
RETURNS SETOF record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_nsp   oid := '@extschema@'::pg_catalog.regnamespace;
    v_cache regclass;
    v_rel   regclass;
    v_name  name;
    v_con   name;
    v_idx   regclass;
    v_null  boolean;
BEGIN
    IF NOT ig_identity.citus_active() THEN
        RAISE EXCEPTION USING
            ERRCODE = 'feature_not_supported',
            MESSAGE = 'ig_identity_distribute() needs Citus',
            DETAIL  = 'The citus extension is not installed in this database.',
            HINT    = 'Run it on a Citus coordinator after CREATE EXTENSION citus and citus_add_node() for the workers.';
    END IF;
    FOREACH v_name IN ARRAY ARRAY['instagram_user_cache', 'instagram_conversations',
                                  'instagram_messages']::name[] LOOP
        v_rel := ig_identity.inbox_table(v_nsp, v_name);
        IF v_rel IS NULL THEN
            RAISE EXCEPTION USING
                ERRCODE = 'undefined_table',
                MESSAGE = pg_catalog.format('cannot distribute %I: the table does not exist', v_name),
                HINT    = 'Run SELECT * FROM ig_identity_repair() first: it creates the missing inbox tables.';
        END IF;
        IF v_name = 'instagram_user_cache' THEN
            v_cache := v_rel;
        END IF;
        table_name := v_rel;
        IF ig_identity.is_distributed(v_rel) THEN
            action := 'already distributed';
            RETURN NEXT;
            CONTINUE;
        END IF;
        -- every statement on the table as its owner (as_owner, 20_repair.sql)
        v_null := (ig_identity.as_owner(v_rel, pg_catalog.format(
            'SELECT pg_catalog.to_jsonb(EXISTS (SELECT 1 FROM %s t WHERE t.ig_account_id IS NULL))',
            v_rel)))[1] OPERATOR(pg_catalog.=) 'true'::jsonb;
        IF v_null THEN
            RAISE EXCEPTION USING
                ERRCODE = 'not_null_violation',
                MESSAGE = pg_catalog.format('cannot distribute %s: some rows have no ig_account_id', v_rel),
                DETAIL  = 'A distributed table cannot hold a NULL distribution column.',
                HINT    = 'Run SELECT * FROM ig_identity_repair() and ig_identity_check(), then distribute again.';
        END IF;
        IF v_name <> 'instagram_user_cache'
           AND NOT ig_identity.has_unique_index(v_rel, ARRAY['ig_account_id', 'id']::name[]) THEN
            -- Only an (id) key ig_identity made itself is replaced.
            SELECT k.conname, NULL INTO v_con, v_idx
              FROM pg_catalog.pg_constraint k
             WHERE k.conrelid = v_rel AND k.contype = 'p'
               AND k.conname = v_name || '_pkey'
               AND ig_identity.has_unique_index(v_rel, ARRAY['id']::name[]);
            IF v_con IS NULL THEN
                SELECT i.indexrelid::pg_catalog.regclass INTO v_idx
                  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
                 WHERE i.indrelid = v_rel AND c.relname = v_name || '_id_unique';
            END IF;
            IF EXISTS (SELECT 1 FROM pg_catalog.pg_constraint f
                        WHERE f.contype = 'f' AND f.confrelid = v_rel) THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'dependent_objects_still_exist',
                    MESSAGE = pg_catalog.format('cannot distribute %s: a foreign key references it', v_rel),
                    DETAIL  = 'Its key must become (ig_account_id, id), and a foreign key on id alone would no longer have a unique key to point at.',
                    HINT    = 'Make the foreign key (ig_account_id, conversation_id) or drop it, then distribute again.';
            END IF;
            PERFORM ig_identity.as_owner(v_rel, pg_catalog.format(
                'ALTER TABLE %s ALTER COLUMN ig_account_id SET NOT NULL', v_rel));
            IF v_con IS NOT NULL THEN
                PERFORM ig_identity.require_owner_create(v_rel);
                PERFORM ig_identity.as_owner(v_rel, pg_catalog.format(
                    'ALTER TABLE %s DROP CONSTRAINT %I', v_rel, v_con));
                PERFORM ig_identity.as_owner(v_rel, pg_catalog.format(
                    'ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (ig_account_id, id)', v_rel, v_con));
            ELSE
                IF v_idx IS NOT NULL THEN
                    PERFORM ig_identity.as_owner(v_rel, pg_catalog.format('DROP INDEX %s', v_idx));
                END IF;
                PERFORM ig_identity.ensure_account_unique_id(v_rel, (v_name || '_id_unique')::name);
            END IF;
        END IF;
        -- As the owner too: Citus builds the shards' indexes (expressions
        -- included) over connections as the current user. The restricted
        -- operation does not stop Citus (TAP 024).
        PERFORM ig_identity.as_owner(v_rel, pg_catalog.format(
            'SELECT NULL::jsonb FROM pg_catalog.create_distributed_table(%L::pg_catalog.regclass, ''ig_account_id''%s)',
            v_rel::text,
            CASE WHEN v_rel = v_cache THEN ''
                 ELSE pg_catalog.format(', colocate_with => %L', v_cache::text) END));
        -- the rows are in the shards now; Citus leaves their local copy on
        -- disk, where a later CREATE UNIQUE INDEX would still see it
        PERFORM ig_identity.as_owner(v_rel, pg_catalog.format(
            'SELECT NULL::jsonb FROM pg_catalog.truncate_local_data_after_distributing_table(%L::pg_catalog.regclass)',
            v_rel::text));
        action := 'distributed';
        RETURN NEXT;
    END LOOP;
END
$fn$;

REVOKE ALL ON FUNCTION ig_identity.citus_active() FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.citus_worker_node() FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.is_distributed(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.account_shard_reachable(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.citus_unreachable_accounts() FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.ensure_account_unique_id(regclass, name) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.ig_identity_distribute() IS
    'On a Citus coordinator: distributes the inbox tables by ig_account_id, co-located with the identity cache (idempotent)';
REVOKE ALL ON FUNCTION @extschema@.ig_identity_distribute() FROM PUBLIC;

CREATE OR REPLACE FUNCTION ig_identity.quarantine_rows(p_rel regclass, p_reason text, p_where text,
                                            p_arg jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_moved bigint;
BEGIN
    INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
    SELECT ig_identity.table_label(p_rel), p_reason, r.row_data
      FROM pg_catalog.unnest(ig_identity.as_owner(p_rel, pg_catalog.format(
               'WITH moved AS (DELETE FROM %s t WHERE %s RETURNING t.*)
                SELECT pg_catalog.to_jsonb(m) FROM moved m', p_rel, p_where),
               p_arg)) AS r(row_data);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    RETURN v_moved;
END
$fn$;

CREATE OR REPLACE FUNCTION ig_identity.ensure_unique_id(p_rel regclass, p_index name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_moved bigint;
    v_key   name[] := ARRAY['id']::name[];
    v_part  name[] := ig_identity.partition_key_columns(p_rel);
BEGIN
    IF pg_catalog.cardinality(v_part) = 0 AND ig_identity.has_unique_index(p_rel, v_key) THEN
        RETURN 0;
    END IF;
    -- On a Citus coordinator the key is (ig_account_id, id) (60_citus.sql).
    IF ig_identity.citus_active() THEN
        RETURN ig_identity.ensure_account_unique_id(p_rel, p_index);
    END IF;
    v_key := v_key OPERATOR(pg_catalog.||) pg_catalog.array_remove(v_part, 'id'::name);
    -- Keep a row that knows its account, then the physically first one.
    -- As the table's owner; the quarantine is written as the caller.
    INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
    SELECT ig_identity.table_label(p_rel), 'duplicate_id', r.row_data
      FROM pg_catalog.unnest(ig_identity.as_owner(p_rel, pg_catalog.format(
        'WITH ranked AS (
             SELECT t.tableoid AS rel, t.ctid AS tid,
                    pg_catalog.row_number() OVER (PARTITION BY t.id
                                                  ORDER BY t.ig_account_id IS NULL, t.tableoid, t.ctid) AS n
               FROM %1$s t
              WHERE t.id IS NOT NULL)
         DELETE FROM %1$s t USING ranked r
          WHERE t.tableoid = r.rel AND t.ctid = r.tid AND r.n > 1
      RETURNING pg_catalog.to_jsonb(t)', p_rel))) AS r(row_data);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    IF NOT ig_identity.has_unique_index(p_rel, v_key) THEN
        PERFORM ig_identity.require_free_name(p_rel, p_index,
            '(' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(v_key, ', ') OPERATOR(pg_catalog.||) ')');
        PERFORM ig_identity.require_owner_create(p_rel);
        PERFORM ig_identity.as_owner(p_rel, pg_catalog.format('CREATE UNIQUE INDEX %I ON %s (%s)', p_index, p_rel,
            (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') FROM pg_catalog.unnest(v_key) AS c)));
    END IF;
    RETURN v_moved;
END
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.ig_identity_repair(
    OUT tables_created   int,
    OUT columns_added    int,
    OUT rows_recovered   bigint,
    OUT rows_merged      bigint,
    OUT rows_quarantined bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    -- '@extschema@' is the quoted schema name; regnamespace parses it back.
    v_nsp    oid := '@extschema@'::pg_catalog.regnamespace;
    v_schema name;
    v_rel    regclass;
    v_label  text;
    v_n      bigint;
    v_candidates text; -- the account-candidates CTE, shared by recovery and quarantine
    v_lost   jsonb;    -- {participant: true} for the rows that lost their account
    v_pairs  jsonb;    -- [participant, account] pairs of the conversations and messages
    v_selves jsonb;    -- {account: its own id}
    v_rows   jsonb[];
    -- The key of created conversation and message tables: (id), or on a
    -- Citus coordinator (ig_account_id, id), which a distributed table can
    -- have (then SELECT * FROM ig_identity_distribute()).
    v_key    text := CASE WHEN ig_identity.citus_active() THEN 'ig_account_id, id' ELSE 'id' END;
BEGIN
    tables_created := 0;
    columns_added := 0;
    rows_recovered := 0;
    rows_merged := 0;
    rows_quarantined := 0;
    SELECT n.nspname INTO v_schema FROM pg_catalog.pg_namespace n WHERE n.oid = v_nsp;
    -- On a Citus worker node (where Citus propagates CREATE EXTENSION) the
    -- inbox tables are the coordinator's: it repairs them, not the workers.
    IF ig_identity.citus_worker_node() THEN
        RETURN;
    END IF;

    /*
     * Conversations and messages first: the user cache's lost accounts are
     * recovered from them, after their duplicates are gone.
     */
    v_rel := ig_identity.inbox_table(v_nsp, 'instagram_conversations');
    IF v_rel IS NULL THEN
        EXECUTE pg_catalog.format(
            'CREATE TABLE %I.instagram_conversations (
                 id                text NOT NULL,
                 ig_account_id     text NOT NULL,
                 location_id       text,
                 participant_igsid text,
                 updated_time      timestamptz,
                 created_at        timestamptz NOT NULL DEFAULT now(),
                 PRIMARY KEY (%s))', v_schema, v_key);
        v_rel := ig_identity.inbox_table(v_nsp, 'instagram_conversations');
        EXECUTE pg_catalog.format(
            'CREATE INDEX instagram_conversations_location_id_idx ON %s (location_id)', v_rel);
        EXECUTE pg_catalog.format(
            'CREATE INDEX instagram_conversations_account_participant_idx
                 ON %s (ig_account_id, participant_igsid)', v_rel);
        PERFORM ig_identity.detach_from_extension(v_rel);
        tables_created := tables_created + 1;
    ELSE
        PERFORM ig_identity.require_text_columns(v_rel,
            ARRAY['id', 'ig_account_id', 'location_id', 'participant_igsid']::name[]);
        -- Added nullable: existing rows have no value, and their app data
        -- is not ours to force.
        columns_added := columns_added + ig_identity.add_missing_columns(v_rel, ARRAY[
            ['id',                'text'],
            ['ig_account_id',     'text'],
            ['location_id',       'text'],
            ['participant_igsid', 'text'],
            ['updated_time',      'timestamptz'],
            ['created_at',        'timestamptz NOT NULL DEFAULT now()']]);
        rows_quarantined := rows_quarantined
            + ig_identity.ensure_unique_id(v_rel, 'instagram_conversations_id_unique');
    END IF;

    v_rel := ig_identity.inbox_table(v_nsp, 'instagram_messages');
    IF v_rel IS NULL THEN
        EXECUTE pg_catalog.format(
            'CREATE TABLE %I.instagram_messages (
                 id              text NOT NULL,
                 conversation_id text,
                 ig_account_id   text NOT NULL,
                 from_id         text,
                 to_id           text,
                 message         text,
                 created_at      timestamptz,
                 is_echo         boolean NOT NULL DEFAULT false,
                 PRIMARY KEY (%s))', v_schema, v_key);
        v_rel := ig_identity.inbox_table(v_nsp, 'instagram_messages');
        EXECUTE pg_catalog.format(
            'CREATE INDEX instagram_messages_account_created_idx ON %s (ig_account_id, created_at)',
            v_rel);
        PERFORM ig_identity.detach_from_extension(v_rel);
        tables_created := tables_created + 1;
    ELSE
        PERFORM ig_identity.require_text_columns(v_rel,
            ARRAY['id', 'conversation_id', 'ig_account_id', 'from_id', 'to_id']::name[]);
        columns_added := columns_added + ig_identity.add_missing_columns(v_rel, ARRAY[
            ['id',              'text'],
            ['conversation_id', 'text'],
            ['ig_account_id',   'text'],
            ['from_id',         'text'],
            ['to_id',           'text'],
            ['message',         'text'],
            ['created_at',      'timestamptz'],
            ['is_echo',         'boolean NOT NULL DEFAULT false']]);
        rows_quarantined := rows_quarantined
            + ig_identity.ensure_unique_id(v_rel, 'instagram_messages_id_unique');
    END IF;

    v_rel := ig_identity.inbox_table(v_nsp, 'instagram_user_cache');
    IF v_rel IS NULL THEN
        EXECUTE pg_catalog.format(
            'CREATE TABLE %I.instagram_user_cache (
                 ig_account_id   text NOT NULL,
                 ig_user_id      text NOT NULL,
                 username        text,
                 name            text,
                 profile_pic     text,
                 profile_pic_url text,
                 last_fetched_at timestamptz,
                 fetch_status    text NOT NULL DEFAULT ''ok''
                                 CHECK (fetch_status IN (''ok'', ''consent_required'', ''unavailable'', ''error'')),
                 last_error_code int,
                 fetch_attempts  int NOT NULL DEFAULT 0,
                 next_fetch_at   timestamptz,
                 created_at      timestamptz NOT NULL DEFAULT now(),
                 updated_at      timestamptz NOT NULL DEFAULT now(),
                 CONSTRAINT instagram_user_cache_ig_account_id_ig_user_id_unique
                     PRIMARY KEY (ig_account_id, ig_user_id))', v_schema);
        v_rel := ig_identity.inbox_table(v_nsp, 'instagram_user_cache');
        PERFORM ig_identity.detach_from_extension(v_rel);
        tables_created := tables_created + 1;
        RETURN;
    END IF;

    /*
     * A legacy identity cache: the table that held the bug.
     */
    v_label := ig_identity.table_label(v_rel);
    IF NOT ig_identity.has_column(v_rel, 'ig_user_id') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'undefined_column',
            MESSAGE = pg_catalog.format('cannot repair %s: it has no column ig_user_id', v_rel),
            DETAIL  = 'Without the participant id the rows cannot be identified.',
            HINT    = 'Rename the table if it is not the inbox identity cache, then install ig_identity again.';
    END IF;
    PERFORM ig_identity.require_text_columns(v_rel, ARRAY['ig_account_id', 'ig_user_id']::name[]);
    -- ig_account_id, when missing, is added nullable and recovered below
    -- like any other lost account.
    columns_added := columns_added + ig_identity.add_missing_columns(v_rel, ARRAY[
        ['ig_account_id',   'text'],
        ['username',        'text'],
        ['name',            'text'],
        ['profile_pic',     'text'],
        ['profile_pic_url', 'text'],
        ['last_fetched_at', 'timestamptz'],
        -- the name PostgreSQL would give it, written out: Citus adds a
        -- column with a constraint only when the constraint is named
        ['fetch_status',    'text NOT NULL DEFAULT ''ok'' CONSTRAINT instagram_user_cache_fetch_status_check CHECK (fetch_status IN (''ok'', ''consent_required'', ''unavailable'', ''error''))'],
        ['last_error_code', 'int'],
        ['fetch_attempts',  'int NOT NULL DEFAULT 0'],
        ['next_fetch_at',   'timestamptz'],
        ['created_at',      'timestamptz NOT NULL DEFAULT now()'],
        ['updated_at',      'timestamptz NOT NULL DEFAULT now()']]);

    -- A row without a participant id identifies nobody.
    rows_quarantined := rows_quarantined
        + ig_identity.quarantine_rows(v_rel, 'missing_user_id', 't.ig_user_id IS NULL');

    /*
     * Lost accounts. The accounts that talk to a participant are the ones
     * whose conversations name it or whose messages it sent or received.
     * Exactly one: that is its account. None or several: the row cannot be
     * attributed and goes to the quarantine, with the candidates. Each
     * table is read as its own owner; the pairs travel as $1.
     */
    -- Only when some row lost its account: the statements below find
    -- nothing otherwise, and a distributed cache (which cannot hold a NULL
    -- account) need not run them. The participants that lost their account
    -- are read first, then only their (participant, account) pairs, each
    -- table as its own owner; the statements on the cache get the pairs as
    -- $1: on Citus, with distributed conversations and messages next to a
    -- local cache, those statements then touch no distributed table (Citus
    -- refuses a distributed plan of an UPDATE or DELETE by ctid), and the
    -- reads of the distributed tables test membership with the jsonb ?
    -- operator, which Citus pushes to every shard (no correlated subquery).
    v_lost := (ig_identity.as_owner(v_rel, pg_catalog.format(
        'SELECT pg_catalog.jsonb_object_agg(d.uid, true)
           FROM (SELECT DISTINCT t.ig_user_id::text AS uid FROM %s t
                  WHERE t.ig_account_id IS NULL AND t.ig_user_id IS NOT NULL) AS d', v_rel)))[1];
    IF v_lost IS NOT NULL THEN
        SELECT COALESCE(pg_catalog.jsonb_agg(DISTINCT p.pair), '[]')
          INTO v_pairs
          FROM pg_catalog.unnest(
                   ig_identity.as_owner(ig_identity.inbox_table(v_nsp, 'instagram_conversations'), pg_catalog.format(
                       'SELECT DISTINCT pg_catalog.jsonb_build_array(c.participant_igsid::text, c.ig_account_id::text)
                          FROM %s c
                         WHERE c.participant_igsid IS NOT NULL AND c.ig_account_id IS NOT NULL
                           AND $1 OPERATOR(pg_catalog.?) c.participant_igsid::text',
                       ig_identity.inbox_table(v_nsp, 'instagram_conversations')), v_lost)
                   OPERATOR(pg_catalog.||)
                   ig_identity.as_owner(ig_identity.inbox_table(v_nsp, 'instagram_messages'), pg_catalog.format(
                       'SELECT DISTINCT pg_catalog.jsonb_build_array(m.from_id::text, m.ig_account_id::text)
                          FROM %1$s m
                         WHERE m.from_id IS NOT NULL AND m.ig_account_id IS NOT NULL
                           AND $1 OPERATOR(pg_catalog.?) m.from_id::text
                        UNION
                        SELECT DISTINCT pg_catalog.jsonb_build_array(m.to_id::text, m.ig_account_id::text)
                          FROM %1$s m
                         WHERE m.to_id IS NOT NULL AND m.ig_account_id IS NOT NULL
                           AND $1 OPERATOR(pg_catalog.?) m.to_id::text',
                       ig_identity.inbox_table(v_nsp, 'instagram_messages')), v_lost)) AS p(pair);
        v_candidates := pg_catalog.format(
            'WITH pairs AS (
                 SELECT p.pair ->> 0 AS uid, p.pair ->> 1 AS acc
                   FROM pg_catalog.jsonb_array_elements($1) AS p(pair)),
             cand AS (
                 SELECT u.ctid AS tid,
                        pg_catalog.array_agg(DISTINCT p.acc) FILTER (WHERE p.acc IS NOT NULL) AS accounts
                   FROM %1$s u LEFT JOIN pairs p ON p.uid = u.ig_user_id::text
                  WHERE u.ig_account_id IS NULL
                  GROUP BY u.ctid)', v_rel);
        v_rows := ig_identity.as_owner(v_rel, v_candidates || pg_catalog.format('
             UPDATE %s u SET ig_account_id = c.accounts[1]
               FROM cand c
              WHERE u.ctid = c.tid AND pg_catalog.cardinality(c.accounts) = 1
          RETURNING pg_catalog.to_jsonb(1)', v_rel), v_pairs);
        rows_recovered := rows_recovered + pg_catalog.cardinality(v_rows);

        INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
        SELECT v_label,
               CASE WHEN m.r -> 'accounts' = 'null' THEN 'no_account_found' ELSE 'ambiguous_account' END,
               CASE WHEN m.r -> 'accounts' = 'null' THEN m.r -> 'row_data'
                    ELSE (m.r -> 'row_data') || pg_catalog.jsonb_build_object('ig_identity_candidates',
                                                                              m.r -> 'accounts')
               END
          FROM pg_catalog.unnest(ig_identity.as_owner(v_rel, v_candidates || pg_catalog.format(',
             moved AS (
                 DELETE FROM %1$s u USING cand c
                  WHERE u.ctid = c.tid
              RETURNING c.accounts AS accounts, u AS row_data)
             SELECT pg_catalog.jsonb_build_object(''accounts'', pg_catalog.to_jsonb(m.accounts),
                                                  ''row_data'', pg_catalog.to_jsonb(m.row_data))
               FROM moved m', v_rel),
                 v_pairs)) AS m(r);
        GET DIAGNOSTICS v_n = ROW_COUNT;
        rows_quarantined := rows_quarantined + v_n;
    END IF;

    -- The business account stored as its own participant: the trap that
    -- made inboxes show the shop's name for the customer. The accounts'
    -- own ids travel as $1 (the owner cannot read ig_identity.accounts).
    SELECT COALESCE(pg_catalog.jsonb_object_agg(a.ig_account_id, a.self_igsid), '{}')
      INTO v_selves
      FROM ig_identity.accounts a
     WHERE a.self_igsid IS NOT NULL;
    rows_quarantined := rows_quarantined + ig_identity.quarantine_rows(v_rel, 'self_identity',
        -- an expression on $1, not a correlated EXISTS: Citus runs it on
        -- every shard of a distributed cache (the accounts are local)
        't.ig_user_id::text = t.ig_account_id::text
         OR t.ig_user_id::text = ($1 ->> t.ig_account_id::text)', v_selves);

    /*
     * Duplicate (ig_account_id, ig_user_id) rows. The freshest row stays
     * (it keeps the app's own columns and fetch state); each identity column
     * takes the freshest non-null value of the group. The absorbed rows go to
     * the quarantine as they were, so nothing is lost. One statement, as the
     * table's owner, so the ctids the CTEs computed are the ones the UPDATE
     * and DELETE see; it returns the absorbed rows.
     */
    -- With the unique key in place there is nothing to merge (the NULL
    -- accounts and users are gone by now): skipped, which also spares a
    -- distributed cache a statement Citus cannot run (ctids).
    IF NOT ig_identity.has_unique_index(v_rel, ARRAY['ig_account_id', 'ig_user_id']::name[]) THEN
        IF ig_identity.is_distributed(v_rel) THEN
            RAISE EXCEPTION USING
                ERRCODE = 'feature_not_supported',
                MESSAGE = pg_catalog.format('cannot repair %s: it is distributed without a unique key on (ig_account_id, ig_user_id)', v_rel),
                DETAIL  = 'Merging duplicate identities needs row ids (ctid), which Citus does not allow across shards.',
                HINT    = pg_catalog.format('Run SELECT undistribute_table(%L), install ig_identity (or SELECT * FROM ig_identity_repair()), then SELECT * FROM ig_identity_distribute().', v_rel::text);
        END IF;
        v_rows := ig_identity.as_owner(v_rel, pg_catalog.format(
            'WITH g AS (
                 SELECT u.ig_account_id AS k_account, u.ig_user_id AS k_user,
                        (pg_catalog.array_agg(u.ctid ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid))[1] AS keep,
                        (pg_catalog.array_agg(u.username ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                             FILTER (WHERE u.username IS NOT NULL))[1] AS username,
                        (pg_catalog.array_agg(u.name ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                             FILTER (WHERE u.name IS NOT NULL))[1] AS name,
                        (pg_catalog.array_agg(u.profile_pic ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                             FILTER (WHERE u.profile_pic IS NOT NULL))[1] AS profile_pic,
                        (pg_catalog.array_agg(u.profile_pic_url ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                             FILTER (WHERE u.profile_pic_url IS NOT NULL))[1] AS profile_pic_url,
                        (pg_catalog.array_agg(u.last_fetched_at ORDER BY u.last_fetched_at DESC NULLS LAST, u.ctid)
                             FILTER (WHERE u.last_fetched_at IS NOT NULL))[1] AS last_fetched_at
                   FROM %1$s u
                  GROUP BY u.ig_account_id, u.ig_user_id
                 HAVING pg_catalog.count(*) > 1),
             kept AS (
                 UPDATE %1$s u
                    SET username = g.username, name = g.name, profile_pic = g.profile_pic,
                        profile_pic_url = g.profile_pic_url, last_fetched_at = g.last_fetched_at
                   FROM g
                  WHERE u.ig_account_id = g.k_account AND u.ctid = g.keep
              RETURNING 1),
             moved AS (
                 DELETE FROM %1$s u USING g
                  WHERE u.ig_account_id = g.k_account AND u.ig_user_id = g.k_user AND u.ctid <> g.keep
              RETURNING u.*)
             SELECT pg_catalog.to_jsonb(m) FROM moved m',
            v_rel));
        INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
        SELECT v_label, 'merged_duplicate', r.row_data
          FROM pg_catalog.unnest(v_rows) AS r(row_data);
        GET DIAGNOSTICS v_n = ROW_COUNT;
        rows_quarantined := rows_quarantined + v_n;
        SELECT pg_catalog.count(*) INTO v_n
          FROM (SELECT DISTINCT r.row_data ->> 'ig_account_id', r.row_data ->> 'ig_user_id'
                  FROM pg_catalog.unnest(v_rows) AS r(row_data)) AS d;
        rows_merged := rows_merged + v_n;
    END IF;

    -- profile_pic is what current code writes; profile_pic_url is kept
    -- equal for older readers.
    PERFORM ig_identity.as_owner(v_rel, pg_catalog.format(
        'UPDATE %s u
            SET profile_pic = COALESCE(u.profile_pic, u.profile_pic_url),
                profile_pic_url = COALESCE(u.profile_pic, u.profile_pic_url)
          WHERE u.profile_pic IS DISTINCT FROM u.profile_pic_url', v_rel));

    IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = v_rel AND a.attname IN ('ig_account_id', 'ig_user_id')
                  AND NOT a.attnotnull) THEN
        PERFORM ig_identity.as_owner(v_rel, pg_catalog.format(
            'ALTER TABLE %s ALTER COLUMN ig_account_id SET NOT NULL,
                            ALTER COLUMN ig_user_id SET NOT NULL', v_rel));
    END IF;

    -- A UNIQUE constraint, not a primary key: the app's table may already
    -- have one (an id column).
    IF NOT ig_identity.has_unique_index(v_rel, ARRAY['ig_account_id', 'ig_user_id']::name[]) THEN
        PERFORM ig_identity.require_free_name(v_rel,
            'instagram_user_cache_ig_account_id_ig_user_id_unique', '(ig_account_id, ig_user_id)');
        PERFORM ig_identity.require_owner_create(v_rel);
        PERFORM ig_identity.as_owner(v_rel, pg_catalog.format(
            'ALTER TABLE %s ADD CONSTRAINT instagram_user_cache_ig_account_id_ig_user_id_unique
                 UNIQUE (ig_account_id, ig_user_id)', v_rel));
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.ig_display_name(ig_account_id text, ig_user_id text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
-- plpgsql, not sql: Citus plans a SQL function's parameterised statement
-- without the values and cannot route it to a shard
BEGIN
    RETURN COALESCE(
        (SELECT COALESCE(NULLIF(c.username, ''), NULLIF(c.name, ''))
           FROM @extschema@.instagram_user_cache c
          WHERE c.ig_account_id = ig_display_name.ig_account_id
            AND c.ig_user_id = ig_display_name.ig_user_id
          LIMIT 1),
        'user_******' || pg_catalog.right(COALESCE(ig_display_name.ig_user_id, ''), 4));
END
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.ig_identity_check(
    OUT total_rows        bigint,
    OUT null_account_rows bigint,
    OUT distinct_pairs    bigint,
    OUT quarantined_rows  bigint)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
-- Two statements (one snapshot, the function being STABLE): Citus cannot
-- push a subquery on a local table down next to the aggregates of a
-- distributed cache.
BEGIN
    SELECT pg_catalog.count(*),
           pg_catalog.count(*) FILTER (WHERE c.ig_account_id IS NULL),
           pg_catalog.count(DISTINCT (c.ig_account_id, c.ig_user_id))
      INTO total_rows, null_account_rows, distinct_pairs
      FROM @extschema@.instagram_user_cache c;
    SELECT pg_catalog.count(*) INTO quarantined_rows FROM @extschema@.ig_identity_quarantine;
END
$fn$;

CREATE OR REPLACE FUNCTION ig_identity.store_conversations(
    p_ig_account_id text, p_location_id text, p_ids text[], p_participants text[],
    p_updated timestamptz[])
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_changed text[];
    -- (id) where a unique index on id alone exists (one node, as before),
    -- else (ig_account_id, id), the key a distributed table has. Read here
    -- from the catalog: this runs as the table's owner, who may not use
    -- schema ig_identity.
    v_key text := CASE WHEN EXISTS (
            SELECT 1 FROM pg_catalog.pg_index i
             WHERE i.indrelid = '@extschema@.instagram_conversations'::pg_catalog.regclass
               AND i.indisunique AND i.indisvalid AND i.indimmediate
               AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = 1
               AND i.indkey[0] = (SELECT a.attnum FROM pg_catalog.pg_attribute a
                                   WHERE a.attrelid = i.indrelid AND a.attname = 'id'))
        THEN 'id' ELSE 'ig_account_id, id' END;
BEGIN
    -- The conflict target follows the table's key (v_key). "before" is
    -- MATERIALIZED so that Citus reads it before the upsert, as PostgreSQL's
    -- single snapshot does.
    EXECUTE pg_catalog.format($q$
    WITH before AS MATERIALIZED (
        SELECT c.id, c.updated_time
          FROM @extschema@.instagram_conversations c
         WHERE c.id = ANY ($3)
           AND c.ig_account_id = $1 -- this account's rows only: under the
                                    -- key (ig_account_id, id) another
                                    -- account may hold the same id
    ), up AS (
        INSERT INTO @extschema@.instagram_conversations AS c
               (id, ig_account_id, location_id, participant_igsid, updated_time)
        SELECT s.id, $1, $2, s.participant, s.updated
          FROM unnest($3, $4, $5) AS s(id, participant, updated)
        ON CONFLICT (%s) DO UPDATE
           SET participant_igsid = COALESCE(EXCLUDED.participant_igsid, c.participant_igsid),
               location_id = COALESCE(c.location_id, EXCLUDED.location_id),
               updated_time = GREATEST(c.updated_time, EXCLUDED.updated_time)
         WHERE c.ig_account_id = $1 -- never another account's row (35_tenant_ids.sql)
           AND (c.participant_igsid IS DISTINCT FROM COALESCE(EXCLUDED.participant_igsid, c.participant_igsid)
                OR c.updated_time IS DISTINCT FROM GREATEST(c.updated_time, EXCLUDED.updated_time)
                OR c.location_id IS NULL)
        RETURNING c.id, c.updated_time
    )
    SELECT COALESCE(pg_catalog.array_agg(up.id ORDER BY up.id), '{}')
      FROM up LEFT JOIN before b ON b.id = up.id
     WHERE b.id IS NULL OR b.updated_time IS DISTINCT FROM up.updated_time
    $q$, v_key)
    INTO v_changed
    USING p_ig_account_id, p_location_id, p_ids, p_participants, p_updated;
    RETURN v_changed;
END
$$;

CREATE OR REPLACE FUNCTION ig_identity.store_messages(
    p_ig_account_id text, p_ids text[], p_conversation_ids text[], p_from text[], p_to text[],
    p_texts text[], p_created timestamptz[], p_echo boolean[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_new bigint;
    -- (id) where a unique index on id alone exists (one node, as before),
    -- else (ig_account_id, id), the key a distributed table has. Read here
    -- from the catalog: this runs as the table's owner, who may not use
    -- schema ig_identity.
    v_key text := CASE WHEN EXISTS (
            SELECT 1 FROM pg_catalog.pg_index i
             WHERE i.indrelid = '@extschema@.instagram_messages'::pg_catalog.regclass
               AND i.indisunique AND i.indisvalid AND i.indimmediate
               AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = 1
               AND i.indkey[0] = (SELECT a.attnum FROM pg_catalog.pg_attribute a
                                   WHERE a.attrelid = i.indrelid AND a.attname = 'id'))
        THEN 'id' ELSE 'ig_account_id, id' END;
BEGIN
    -- The conflict target follows the table's key, as in store_conversations.
    EXECUTE pg_catalog.format($q$
    WITH rows AS (
        SELECT s.*,
               -- the C code filled the conversations in, reading
               -- instagram_conversations as its own owner (37_mixed_owners.sql)
               s.conversation_id AS conv
          FROM unnest($2, $3, $4, $5, $6, $7, $8)
               AS s(id, conversation_id, from_id, to_id, message, created_at, is_echo)
    ), ins AS (
        INSERT INTO @extschema@.instagram_messages AS m
               (id, conversation_id, ig_account_id, from_id, to_id, message, created_at, is_echo)
        SELECT DISTINCT ON (r.id) r.id, r.conv, $1, r.from_id, r.to_id, r.message,
               r.created_at, r.is_echo
          FROM rows r
        ON CONFLICT (%s) DO UPDATE
           SET conversation_id = EXCLUDED.conversation_id
         WHERE m.conversation_id IS NULL AND EXCLUDED.conversation_id IS NOT NULL
           AND m.ig_account_id = $1 -- never another account's row (35_tenant_ids.sql)
        RETURNING (xmax = 0) AS inserted
    )
    SELECT count(*) FILTER (WHERE inserted) FROM ins
    $q$, v_key)
    INTO v_new
    USING p_ig_account_id, p_ids, p_conversation_ids, p_from, p_to, p_texts, p_created, p_echo;
    RETURN v_new;
END
$$;

CREATE OR REPLACE FUNCTION ig_identity.read_conversation_participants(p_ig_account_id text)
RETURNS text[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
-- plpgsql, not sql: Citus plans a SQL function's parameterised
-- statement without the values and cannot route it to a shard
BEGIN
    RETURN (
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT c.participant_igsid), '{}')
      FROM @extschema@.instagram_conversations c
     WHERE c.ig_account_id = p_ig_account_id
       AND c.participant_igsid IS NOT NULL
    );
END
$$;

CREATE OR REPLACE FUNCTION ig_identity.read_message_participants(p_ig_account_id text, p_since timestamptz)
RETURNS text[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
-- plpgsql, not sql: Citus plans a SQL function's parameterised
-- statement without the values and cannot route it to a shard
BEGIN
    RETURN (
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT u.id), '{}')
      FROM @extschema@.instagram_messages m
     CROSS JOIN LATERAL (VALUES (m.from_id), (m.to_id)) AS u(id)
     WHERE m.ig_account_id = p_ig_account_id
       AND m.created_at >= p_since
       AND u.id IS NOT NULL
    );
END
$$;

CREATE OR REPLACE FUNCTION ig_identity.read_identities_wanted(p_ig_account_id text, p_ig_user_ids text[],
                                                   p_inbound boolean[])
RETURNS text[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
-- plpgsql, not sql: Citus plans a SQL function's parameterised
-- statement without the values and cannot route it to a shard
BEGIN
    RETURN (
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT s.ig_user_id), '{}')
      FROM unnest(p_ig_user_ids, p_inbound) AS s(ig_user_id, inbound)
      LEFT JOIN @extschema@.instagram_user_cache c
             ON c.ig_account_id = p_ig_account_id AND c.ig_user_id = s.ig_user_id
     WHERE s.ig_user_id IS NOT NULL
       AND (c.ig_user_id IS NULL
            OR c.username IS NULL AND c.fetch_status IN ('ok', 'error')
            OR (s.inbound AND c.fetch_status = 'consent_required'))
    );
END
$$;

CREATE OR REPLACE FUNCTION ig_identity.cache_row(p_ig_account_id text, p_ig_user_id text)
RETURNS @extschema@.ig_identity_profile
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
-- plpgsql, not sql: Citus plans a SQL function's parameterised
-- statement without the values and cannot route it to a shard
-- (the casts: a row returned from PL/pgSQL must match the type exactly,
-- and a legacy cache may have varchar columns)
DECLARE
    v record;
BEGIN
    FOR v IN
    SELECT c.ig_account_id::text, c.ig_user_id::text, c.username::text, c.name::text,
           c.profile_pic::text, c.fetch_status::text,
           c.last_error_code::int, c.last_fetched_at::timestamptz,
           COALESCE(NULLIF(c.username, ''), NULLIF(c.name, ''),
                    'user_******' || pg_catalog.right(COALESCE(c.ig_user_id, ''), 4))::text
      FROM @extschema@.instagram_user_cache c
     WHERE c.ig_account_id = p_ig_account_id AND c.ig_user_id = p_ig_user_id
     LIMIT 1
    LOOP
        RETURN v;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ig_identity.read_stale_identities(p_ig_account_ids text[], p_self_igsids text[],
                                                  p_stale_after_s int, p_limit int)
RETURNS text[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
-- plpgsql, not sql: Citus plans a SQL function's parameterised
-- statement without the values and cannot route it to a shard
BEGIN
    RETURN (
    WITH due AS (
        SELECT c.ig_account_id, c.ig_user_id,
               CASE WHEN c.username IS NULL THEN 'new' ELSE 'stale' END AS reason,
               pg_catalog.row_number() OVER (ORDER BY c.last_fetched_at NULLS FIRST) AS ord
          FROM @extschema@.instagram_user_cache c
          JOIN unnest(p_ig_account_ids, p_self_igsids) AS a(ig_account_id, self_igsid)
            ON a.ig_account_id = c.ig_account_id
         WHERE c.ig_user_id <> a.ig_account_id
           -- the same as the join, written so that Citus reads only these
           -- accounts' shards
           AND c.ig_account_id = ANY (p_ig_account_ids)
           AND c.ig_user_id IS DISTINCT FROM a.self_igsid
           AND c.fetch_status IS DISTINCT FROM 'consent_required'
           AND (c.next_fetch_at IS NULL OR c.next_fetch_at <= pg_catalog.now())
           AND (c.last_fetched_at IS NULL
                OR c.last_fetched_at < pg_catalog.now() - pg_catalog.make_interval(secs => p_stale_after_s)
                OR (c.username IS NULL AND c.fetch_status = 'ok'))
         ORDER BY c.last_fetched_at NULLS FIRST
         LIMIT p_limit
    )
    SELECT COALESCE(pg_catalog.array_agg(v.x ORDER BY d.ord, v.k), '{}')
      FROM due d
     CROSS JOIN LATERAL (VALUES (1, d.ig_account_id), (2, d.ig_user_id), (3, d.reason)) AS v(k, x)
    );
END
$$;

CREATE OR REPLACE FUNCTION ig_identity._worker_stale_accounts()
RETURNS TABLE (ig_account_id text, self_igsid text, queued bigint)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    -- on Citus, not the accounts whose worker node is down (60_citus.sql)
    WITH down AS MATERIALIZED (
        SELECT ig_identity.citus_unreachable_accounts() AS ids
    )
    SELECT a.ig_account_id, a.self_igsid,
           (SELECT pg_catalog.count(*) FROM ig_identity.refresh_queue q
             WHERE q.ig_account_id = a.ig_account_id)
      FROM ig_identity.accounts a, down
     WHERE a.status IN ('active', 'paused')
       AND (a.paused_until IS NULL OR a.paused_until <= pg_catalog.now())
       AND (a.status = 'active' OR a.paused_until IS NOT NULL)
       AND a.ig_account_id <> ALL (down.ids)
     ORDER BY a.ig_account_id
$$;

-- On Citus the readers and writers main added for issue 12 and 14 in
-- PL/pgSQL forms Citus runs (same results on one node).

CREATE OR REPLACE FUNCTION ig_identity.read_foreign_conversation_ids(p_ig_account_id text, p_ids text[])
RETURNS text[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
-- plpgsql, not sql: Citus plans no SQL function's parameterised statement
-- on a distributed table
BEGIN
    RETURN (
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT c.id::text), '{}')
      FROM @extschema@.instagram_conversations c
     WHERE c.id::text = ANY (p_ids)
       AND c.ig_account_id::text IS DISTINCT FROM p_ig_account_id);
END
$$;

CREATE OR REPLACE FUNCTION ig_identity.read_foreign_message_ids(p_ig_account_id text, p_ids text[])
RETURNS text[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
-- plpgsql, not sql: Citus plans no SQL function's parameterised statement
-- on a distributed table
BEGIN
    RETURN (
    SELECT COALESCE(pg_catalog.array_agg(DISTINCT m.id::text), '{}')
      FROM @extschema@.instagram_messages m
     WHERE m.id::text = ANY (p_ids)
       AND m.ig_account_id::text IS DISTINCT FROM p_ig_account_id);
END
$$;

CREATE OR REPLACE FUNCTION ig_identity.read_message_conversations(p_ig_account_id text, p_conversation_ids text[],
                                                       p_from text[], p_to text[], p_echo boolean[])
RETURNS text[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
-- On Citus: plpgsql, not sql (Citus plans no SQL function's parameterised
-- statement on a distributed table), and the account's conversations with
-- these participants read in one statement on the account's shard, not in
-- a subquery per message (Citus runs no correlated subquery over unnest).
DECLARE
    v_wanted text[];
    v_participants text[];
    v_ids text[];
BEGIN
    SELECT pg_catalog.array_agg(DISTINCT CASE WHEN s.is_echo THEN s.to_id ELSE s.from_id END)
      INTO v_wanted
      FROM unnest(p_conversation_ids, p_from, p_to, p_echo) AS s(conversation_id, from_id, to_id, is_echo)
     WHERE s.conversation_id IS NULL;
    IF v_wanted IS NOT NULL THEN
        -- the newest conversation of each participant
        SELECT pg_catalog.array_agg(n.participant), pg_catalog.array_agg(n.id)
          INTO v_participants, v_ids
          FROM (SELECT DISTINCT ON (c.participant_igsid)
                       c.participant_igsid::text AS participant, c.id::text AS id
                  FROM @extschema@.instagram_conversations c
                 WHERE c.ig_account_id = p_ig_account_id
                   AND c.participant_igsid = ANY (v_wanted)
                 ORDER BY c.participant_igsid, c.updated_time DESC NULLS LAST) AS n;
    END IF;
    RETURN (
    SELECT COALESCE(pg_catalog.array_agg(
               COALESCE(s.conversation_id,
                        (SELECT k.id FROM unnest(v_participants, v_ids) AS k(participant, id)
                          WHERE k.participant = CASE WHEN s.is_echo THEN s.to_id ELSE s.from_id END))
               ORDER BY s.n), '{}')
      FROM unnest(p_conversation_ids, p_from, p_to, p_echo) WITH ORDINALITY
           AS s(conversation_id, from_id, to_id, is_echo, n));
END
$$;

CREATE OR REPLACE FUNCTION ig_identity.clear_unsent_messages(p_ig_account_id text, p_mids text[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
-- plpgsql, not sql: Citus plans no SQL function's parameterised statement
-- on a distributed table
DECLARE
    v_n bigint;
BEGIN
    UPDATE @extschema@.instagram_messages m
       SET message = NULL
     WHERE m.ig_account_id = p_ig_account_id AND m.id = ANY (p_mids) AND m.message IS NOT NULL;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- ==== end of issue 17 ====



-- ==== issue 18: real transport ====
-- ==== end of issue 18 ====
