/*
 * ig_identity--1.0.sql — install script of ig_identity, and at the same time
 * the migration of an inbox that already exists.  Built by `make` from the
 * files of src/sql/ in name order: 10 private schema, 20 repair (migration),
 * 25 identity store, 30 fetch functions, 40 worker, 90 privileges and the
 * restore-aware final step.
 *
 * Two kinds of objects, on purpose:
 *
 * - Members of the extension: schema ig_identity and everything in it
 *   (connected accounts, their tokens, the refresh queue, the run history,
 *   the quarantine of rows the migration set aside) and every function.
 *   Their rows are marked with pg_extension_config_dump so pg_dump carries
 *   them; PUBLIC has no access to any of it.
 *
 * - Not members: the inbox tables instagram_user_cache,
 *   instagram_conversations and instagram_messages, in the schema the
 *   extension is installed in (public by default, where the app reads them).
 *   They are the app's data. A member table is dumped as data only and is
 *   re-created from this script at restore, so the app's own extra columns
 *   would fail to load; DROP EXTENSION would also drop the app's rows. So a
 *   missing inbox table is created and at once taken out of the extension,
 *   and a present one is repaired in place and never adopted. pg_dump then
 *   always writes their full definitions, and DROP EXTENSION leaves them.
 *   No serial/identity columns in them: their sequences would stay members.
 *
 * Restore: a dump runs CREATE EXTENSION before its own CREATE TABLEs for
 * the inbox tables, so creating them here would make the restore fail.
 * pg_dump and pg_restore output runs SET row_security = off before
 * CREATE EXTENSION and the setting is visible inside this script (unlike
 * check_function_bodies, which CREATE EXTENSION always turns off), so when it
 * is off the inbox tables are left to the dump. After a restore that left the
 * inbox tables out, run SELECT * FROM ig_identity_repair().
 *
 * The whole migration is one idempotent function, ig_identity_repair(), run
 * at the end of this script inside CREATE EXTENSION's transaction: any error
 * leaves the database as it was. It decides everything from the catalogs and
 * never uses CREATE ... IF NOT EXISTS, which PostgreSQL refuses on objects
 * that exist but are not extension members (CVE-2022-2625). Rows it cannot
 * keep go to ig_identity.quarantine, whole (to_jsonb of the row), never
 * silently deleted; jsonb_populate_record() puts one back. DROP EXTENSION
 * drops the quarantine with the rest of schema ig_identity: copy it out first
 * if you still need it.
 *
 * Every function pins search_path = pg_catalog, pg_temp and qualifies the
 * names it uses; dynamic SQL takes identifiers through format('%I') or
 * regclass and values only as parameters.
 */

\echo Use "CREATE EXTENSION ig_identity" to load this file. \quit

/* ------------------------------------------------------------------------
 * Private state
 * ------------------------------------------------------------------------ */

CREATE SCHEMA ig_identity;
COMMENT ON SCHEMA ig_identity IS
    'ig_identity private state: accounts, tokens, refresh queue and history, quarantine';
REVOKE ALL ON SCHEMA ig_identity FROM PUBLIC;

-- Account state is apart from tokens so that state can be granted to a
-- monitoring role without exposing credentials.
CREATE TABLE ig_identity.accounts (
    ig_account_id   text PRIMARY KEY,
    location_id     text NOT NULL,
    self_igsid      text NOT NULL,
    api_host        text NOT NULL
                    CHECK (api_host IN ('graph.facebook.com', 'graph.instagram.com')),
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'reauth_required', 'permission_error', 'paused')),
    paused_until    timestamptz,
    last_error      text,
    last_error_code int,
    last_usage      jsonb,
    last_success_at timestamptz,
    -- throttles in a row (reset by a success or a new token): the pause
    -- ladder's step, 60 -> 300 -> 900 s, carried from one fetch to the next
    consecutive_throttles int NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_location_id_idx ON ig_identity.accounts (location_id);

CREATE TABLE ig_identity.account_tokens (
    ig_account_id text PRIMARY KEY
                  REFERENCES ig_identity.accounts (ig_account_id) ON DELETE CASCADE,
    access_token  text NOT NULL,
    rotated_at    timestamptz NOT NULL DEFAULT now()
);
-- ANALYZE (autovacuum's too) would copy sampled tokens into pg_statistic
-- (histogram bounds), outside this table: collect no statistics on them.
ALTER TABLE ig_identity.account_tokens ALTER COLUMN access_token SET STATISTICS 0;

-- No foreign key to accounts: a webhook may queue a participant before the
-- account is connected; ig_disconnect_account() clears an account's rows.
CREATE TABLE ig_identity.refresh_queue (
    ig_account_id text,
    ig_user_id    text,
    reason        text NOT NULL
                  CHECK (reason IN ('new', 'stale', 'webhook', 'manual', 'retry')),
    not_before    timestamptz NOT NULL DEFAULT now(),
    attempts      int NOT NULL DEFAULT 0,
    leased_until  timestamptz,
    leased_by     int,
    enqueued_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ig_account_id, ig_user_id)
);
CREATE INDEX refresh_queue_not_before_idx ON ig_identity.refresh_queue (not_before);

CREATE TABLE ig_identity.refresh_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text NOT NULL,
    location_id text,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    refreshed   int,
    failed      int,
    total       int,
    errors      jsonb
);

-- row_data is the whole row as it was when set aside (every column, the
-- app's own included); reason says why.
CREATE TABLE ig_identity.quarantine (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_table   text NOT NULL,
    reason         text NOT NULL,
    row_data       jsonb NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);

-- The run history is for people looking at recent behaviour, not an audit
-- log: keep the newest 1000 whoever inserts.
CREATE FUNCTION ig_identity.trim_refresh_runs()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    DELETE FROM ig_identity.refresh_runs r
     WHERE r.id < (SELECT k.id FROM ig_identity.refresh_runs k
                    ORDER BY k.id DESC OFFSET 999 LIMIT 1);
    RETURN NULL;
END
$fn$;

CREATE TRIGGER refresh_runs_keep_newest
    AFTER INSERT ON ig_identity.refresh_runs
    FOR EACH STATEMENT EXECUTE FUNCTION ig_identity.trim_refresh_runs();

-- Returned by ig_connect_account(); a named type because the function's
-- parameters already use the column names.
CREATE TYPE ig_identity.connected_account AS (
    ig_account_id text,
    location_id   text,
    status        text
);

/* ------------------------------------------------------------------------
 * Migration helpers (internal: only ig_identity_repair() calls them)
 * ------------------------------------------------------------------------ */

-- An inbox table of the extension's schema, or NULL when absent. Anything
-- but a plain table under that name (a view, a partitioned table whose ctid
-- is not unique) is refused rather than guessed at.
CREATE FUNCTION ig_identity.inbox_table(p_nsp oid, p_name name)
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
    RETURN v_oid::pg_catalog.regclass;
END
$fn$;

CREATE FUNCTION ig_identity.has_column(p_rel regclass, p_column name)
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = p_rel AND a.attname = p_column
                      AND a.attnum > 0 AND NOT a.attisdropped)
$fn$;

-- Instagram ids are compared and stored as text everywhere; a legacy
-- bigint column would make every comparison fail or silently reformat ids,
-- so refuse rather than convert behind the DBA's back.
CREATE FUNCTION ig_identity.require_text_columns(p_rel regclass, p_columns name[])
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS typ
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = p_rel AND a.attname = ANY (p_columns)
           AND a.attnum > 0 AND NOT a.attisdropped
           AND a.atttypid NOT IN ('pg_catalog.text'::pg_catalog.regtype,
                                  'pg_catalog.varchar'::pg_catalog.regtype)
         ORDER BY a.attnum
    LOOP
        RAISE EXCEPTION USING
            ERRCODE = 'datatype_mismatch',
            MESSAGE = pg_catalog.format('cannot repair %s: column %I has type %s',
                                        p_rel, r.attname, r.typ),
            DETAIL  = pg_catalog.format('Column %I of %s must be text or varchar: ig_identity stores Instagram ids as text.',
                                        r.attname, p_rel),
            HINT    = pg_catalog.format('Convert it with ALTER TABLE %s ALTER COLUMN %I TYPE text, then run CREATE EXTENSION ig_identity (or SELECT * FROM ig_identity_repair()) again.',
                                        p_rel, r.attname);
    END LOOP;
END
$fn$;

-- p_columns is {{name, definition}, ...}, definitions written in this file.
-- Only fast ADD COLUMNs (constant or stable defaults): no table rewrite.
-- Columns the app added are never touched.
CREATE FUNCTION ig_identity.add_missing_columns(p_rel regclass, p_columns text[])
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_added int := 0;
BEGIN
    FOR i IN 1 .. pg_catalog.array_length(p_columns, 1) LOOP
        IF NOT ig_identity.has_column(p_rel, p_columns[i][1]::name) THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s',
                                      p_rel, p_columns[i][1], p_columns[i][2]);
            v_added := v_added + 1;
        END IF;
    END LOOP;
    RETURN v_added;
END
$fn$;

-- A unique index usable by ON CONFLICT (p_columns): valid, immediate, no
-- predicate, no expression, keys exactly these columns in any order.
CREATE FUNCTION ig_identity.has_unique_index(p_rel regclass, p_columns name[])
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT EXISTS (
        SELECT 1
          FROM pg_catalog.pg_index i
         WHERE i.indrelid = p_rel
           AND i.indisunique AND i.indisvalid AND i.indimmediate
           AND i.indpred IS NULL AND i.indexprs IS NULL
           AND i.indnkeyatts = pg_catalog.cardinality(p_columns)
           AND (SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attname::text)
                  FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, n)
                  JOIN pg_catalog.pg_attribute a
                    ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE k.n <= i.indnkeyatts)
               = (SELECT pg_catalog.array_agg(c::text ORDER BY c::text)
                    FROM pg_catalog.unnest(p_columns) AS c)
    )
$fn$;

-- Refuses a relation or constraint that already holds the name we need
-- but is not what we need; otherwise we would stack a second index on a
-- table whose owner meant something else by that name.
CREATE FUNCTION ig_identity.require_free_name(p_rel regclass, p_name name, p_columns text)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c, pg_catalog.pg_class t
                WHERE t.oid = p_rel AND c.relnamespace = t.relnamespace AND c.relname = p_name)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
                   WHERE k.conrelid = p_rel AND k.conname = p_name) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'duplicate_object',
            MESSAGE = pg_catalog.format('cannot repair %s: %I already exists but is not a unique index on %s',
                                        p_rel, p_name, p_columns),
            DETAIL  = pg_catalog.format('ig_identity needs a unique index on %s of %s and would create it under that name.',
                                        p_columns, p_rel),
            HINT    = 'Rename or drop the existing object, then run CREATE EXTENSION ig_identity (or SELECT * FROM ig_identity_repair()) again.';
    END IF;
END
$fn$;

-- Objects created while CREATE EXTENSION runs become members; inbox tables
-- must not be (see the header). Outside CREATE EXTENSION there is no such
-- link and nothing to do, so the same code serves both callers.
CREATE FUNCTION ig_identity.detach_from_extension(p_rel regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                  AND d.objid = p_rel AND d.objsubid = 0
                  AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
                  AND d.deptype = 'e') THEN
        EXECUTE pg_catalog.format('ALTER EXTENSION ig_identity DROP TABLE %s', p_rel);
    END IF;
END
$fn$;

-- Moves the rows matching p_where (a predicate written in this file, over
-- alias t) to the quarantine. Returns how many.
CREATE FUNCTION ig_identity.quarantine_rows(p_rel regclass, p_reason text, p_where text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_moved bigint;
BEGIN
    EXECUTE pg_catalog.format(
        'WITH moved AS (DELETE FROM %s t WHERE %s RETURNING pg_catalog.to_jsonb(t) AS row_data)
         INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
         SELECT $1, $2, m.row_data FROM moved m', p_rel, p_where)
        USING ig_identity.table_label(p_rel), p_reason;
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    RETURN v_moved;
END
$fn$;

-- schema.table as stored in quarantine.source_table, whatever search_path.
CREATE FUNCTION ig_identity.table_label(p_rel regclass)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = p_rel
$fn$;

-- Conversations and messages are keyed by their Graph id; the webhook and
-- sync paths upsert on it. Webhook redeliveries in a legacy table without
-- that key are set aside (one row of each id stays), then the index is built.
CREATE FUNCTION ig_identity.ensure_unique_id(p_rel regclass, p_index name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_moved bigint;
BEGIN
    IF ig_identity.has_unique_index(p_rel, ARRAY['id']::name[]) THEN
        RETURN 0;
    END IF;
    PERFORM ig_identity.require_free_name(p_rel, p_index, '(id)');
    -- Keep a row that knows its account, then the physically first one.
    EXECUTE pg_catalog.format(
        'WITH ranked AS (
             SELECT t.ctid AS tid,
                    pg_catalog.row_number() OVER (PARTITION BY t.id
                                                  ORDER BY t.ig_account_id IS NULL, t.ctid) AS n
               FROM %1$s t
              WHERE t.id IS NOT NULL),
         moved AS (
             DELETE FROM %1$s t USING ranked r
              WHERE t.ctid = r.tid AND r.n > 1
          RETURNING pg_catalog.to_jsonb(t) AS row_data)
         INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
         SELECT $1, ''duplicate_id'', m.row_data FROM moved m', p_rel)
        USING ig_identity.table_label(p_rel);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    EXECUTE pg_catalog.format('CREATE UNIQUE INDEX %I ON %s (id)', p_index, p_rel);
    RETURN v_moved;
END
$fn$;

/* ------------------------------------------------------------------------
 * The migration
 * ------------------------------------------------------------------------ */

CREATE FUNCTION @extschema@.ig_identity_repair(
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
     * attributed and goes to the quarantine, with the candidates.
     */
    v_candidates := pg_catalog.format(
        'WITH pairs AS (
             SELECT c.participant_igsid::text AS uid, c.ig_account_id::text AS acc
               FROM %1$I.instagram_conversations c
              WHERE c.participant_igsid IS NOT NULL AND c.ig_account_id IS NOT NULL
             UNION
             SELECT m.from_id::text, m.ig_account_id::text
               FROM %1$I.instagram_messages m
              WHERE m.from_id IS NOT NULL AND m.ig_account_id IS NOT NULL
             UNION
             SELECT m.to_id::text, m.ig_account_id::text
               FROM %1$I.instagram_messages m
              WHERE m.to_id IS NOT NULL AND m.ig_account_id IS NOT NULL),
         cand AS (
             SELECT u.ctid AS tid,
                    pg_catalog.array_agg(DISTINCT p.acc) FILTER (WHERE p.acc IS NOT NULL) AS accounts
               FROM %2$s u LEFT JOIN pairs p ON p.uid = u.ig_user_id::text
              WHERE u.ig_account_id IS NULL
              GROUP BY u.ctid)', v_schema, v_rel);
    EXECUTE v_candidates || pg_catalog.format('
         UPDATE %s u SET ig_account_id = c.accounts[1]
           FROM cand c
          WHERE u.ctid = c.tid AND pg_catalog.cardinality(c.accounts) = 1', v_rel);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    rows_recovered := rows_recovered + v_n;

    EXECUTE v_candidates || pg_catalog.format(',
         moved AS (
             DELETE FROM %1$s u USING cand c
              WHERE u.ctid = c.tid
          RETURNING c.accounts, pg_catalog.to_jsonb(u) AS row_data)
         INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
         SELECT $1,
                CASE WHEN m.accounts IS NULL THEN ''no_account_found'' ELSE ''ambiguous_account'' END,
                CASE WHEN m.accounts IS NULL THEN m.row_data
                     ELSE m.row_data || pg_catalog.jsonb_build_object(''ig_identity_candidates'',
                                                                      pg_catalog.to_jsonb(m.accounts))
                END
           FROM moved m', v_rel)
        USING v_label;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    rows_quarantined := rows_quarantined + v_n;

    -- The business account stored as its own participant: the trap that
    -- made inboxes show the shop's name for the customer.
    rows_quarantined := rows_quarantined + ig_identity.quarantine_rows(v_rel, 'self_identity',
        't.ig_user_id::text = t.ig_account_id::text
         OR EXISTS (SELECT 1 FROM ig_identity.accounts a
                     WHERE a.ig_account_id = t.ig_account_id::text
                       AND a.self_igsid = t.ig_user_id::text)');

    /*
     * Duplicate (ig_account_id, ig_user_id) rows. The freshest row stays
     * (it keeps the app's own columns and fetch state); each identity column
     * takes the freshest non-null value of the group. The absorbed rows go to
     * the quarantine as they were, so nothing is lost. One statement, so the
     * ctids the CTEs computed are the ones the UPDATE and DELETE see.
     */
    EXECUTE pg_catalog.format(
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
          RETURNING 1),
         moved AS (
             DELETE FROM %1$s u USING g
              WHERE u.ig_account_id = g.k_account AND u.ig_user_id = g.k_user AND u.ctid <> g.keep
          RETURNING pg_catalog.to_jsonb(u) AS row_data),
         saved AS (
             INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
             SELECT $1, ''merged_duplicate'', m.row_data FROM moved m
             RETURNING 1)
         SELECT (SELECT pg_catalog.count(*) FROM g), (SELECT pg_catalog.count(*) FROM saved)',
        v_rel)
        INTO rows_merged, v_n
        USING v_label;
    rows_quarantined := rows_quarantined + v_n;

    -- profile_pic is what current code writes; profile_pic_url is kept
    -- equal for older readers.
    EXECUTE pg_catalog.format(
        'UPDATE %s u
            SET profile_pic = COALESCE(u.profile_pic, u.profile_pic_url),
                profile_pic_url = COALESCE(u.profile_pic, u.profile_pic_url)
          WHERE u.profile_pic IS DISTINCT FROM u.profile_pic_url', v_rel);

    IF EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = v_rel AND a.attname IN ('ig_account_id', 'ig_user_id')
                  AND NOT a.attnotnull) THEN
        EXECUTE pg_catalog.format(
            'ALTER TABLE %s ALTER COLUMN ig_account_id SET NOT NULL,
                            ALTER COLUMN ig_user_id SET NOT NULL', v_rel);
    END IF;

    -- A UNIQUE constraint, not a primary key: the app's table may already
    -- have one (an id column).
    IF NOT ig_identity.has_unique_index(v_rel, ARRAY['ig_account_id', 'ig_user_id']::name[]) THEN
        PERFORM ig_identity.require_free_name(v_rel,
            'instagram_user_cache_ig_account_id_ig_user_id_unique', '(ig_account_id, ig_user_id)');
        EXECUTE pg_catalog.format(
            'ALTER TABLE %s ADD CONSTRAINT instagram_user_cache_ig_account_id_ig_user_id_unique
                 UNIQUE (ig_account_id, ig_user_id)', v_rel);
    END IF;
END
$fn$;

COMMENT ON FUNCTION @extschema@.ig_identity_repair() IS
    'Creates missing inbox tables and repairs present ones in place (idempotent); rows it cannot keep go to ig_identity.quarantine';

/* ------------------------------------------------------------------------
 * The identity merge path
 * ------------------------------------------------------------------------ */

/*
 * The one place identities are written: the fetcher (in batches, through
 * SPI) and ig_upsert_participant_identity() both come here, so the rules are
 * the same everywhere:
 * - a successful fetch ('ok' or NULL status) fills the identity columns but
 *   never replaces a stored value with NULL;
 * - any other status records the failure and leaves the identity as it was;
 * - the business account itself is never stored as a participant;
 * - the same participant twice in a batch: the later element wins.
 * Returns the number of cache rows inserted or updated.
 *
 * Two halves, because they run as two different roles (src/pg/privilege.h):
 * ig_identity.upsert_identities (C, src/pg/inbox.cpp) looks up the
 * account's own id and settles the refresh queue as the extension's owner,
 * then calls merge_identities as the cache table's owner, in a
 * security-restricted operation, so the app's triggers on that table never
 * run with the extension owner's rights.  merge_identities touches only the
 * cache table and runs with its caller's rights.
 */
CREATE FUNCTION ig_identity.merge_identities(
    p_ig_account_id text,
    p_self_igsid    text,
    p_ig_user_ids   text[],
    p_usernames     text[],
    p_names         text[],
    p_profile_pics  text[],
    p_statuses      text[],
    p_error_codes   int[],
    p_next_fetch_at timestamptz[])
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_count   int := COALESCE(pg_catalog.cardinality(p_ig_user_ids), 0);
    v_self    text := p_self_igsid;
    v_touched int;
    r         record;
BEGIN
    IF p_ig_account_id IS NULL OR p_ig_account_id = '' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'cannot store participant identities without an ig_account_id',
            DETAIL  = pg_catalog.format('Nothing was stored (identities given: %s).', v_count);
    END IF;
    IF v_count = 0 THEN
        RETURN 0;
    END IF;

    -- A NULL optional array means "all NULL"; otherwise one element per id.
    FOR r IN
        SELECT v.arg, v.len, v.dims
          FROM (VALUES (1, 'p_ig_user_ids',   pg_catalog.cardinality(p_ig_user_ids),   pg_catalog.array_ndims(p_ig_user_ids)),
                       (2, 'p_usernames',     pg_catalog.cardinality(p_usernames),     pg_catalog.array_ndims(p_usernames)),
                       (3, 'p_names',         pg_catalog.cardinality(p_names),         pg_catalog.array_ndims(p_names)),
                       (4, 'p_profile_pics',  pg_catalog.cardinality(p_profile_pics),  pg_catalog.array_ndims(p_profile_pics)),
                       (5, 'p_statuses',      pg_catalog.cardinality(p_statuses),      pg_catalog.array_ndims(p_statuses)),
                       (6, 'p_error_codes',   pg_catalog.cardinality(p_error_codes),   pg_catalog.array_ndims(p_error_codes)),
                       (7, 'p_next_fetch_at', pg_catalog.cardinality(p_next_fetch_at), pg_catalog.array_ndims(p_next_fetch_at)))
               AS v(n, arg, len, dims)
         WHERE v.len IS NOT NULL AND (v.len <> v_count OR v.dims > 1)
         ORDER BY v.n
    LOOP
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'identity arrays must have one element per ig_user_id',
            DETAIL  = pg_catalog.format('Elements: p_ig_user_ids %s, %s %s%s.', v_count, r.arg, r.len,
                                        CASE WHEN r.dims > 1 THEN pg_catalog.format(' in %s dimensions', r.dims) ELSE '' END),
            HINT    = 'Pass one-dimensional arrays of equal length, or NULL for an array whose elements are all NULL.';
    END LOOP;

    SELECT g.n INTO v_touched
      FROM pg_catalog.unnest(p_ig_user_ids) WITH ORDINALITY AS g(uid, n)
     WHERE g.uid IS NULL OR g.uid = ''
     ORDER BY g.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'ig_user_id must not be null or empty',
            DETAIL  = pg_catalog.format('Element %s of p_ig_user_ids is null or empty.', v_touched);
    END IF;

    SELECT g.s, g.n INTO r
      FROM pg_catalog.unnest(p_statuses) WITH ORDINALITY AS g(s, n)
     WHERE g.s NOT IN ('ok', 'consent_required', 'unavailable', 'error')
     ORDER BY g.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = pg_catalog.format('invalid fetch status %s', pg_catalog.quote_literal(pg_catalog.left(r.s, 40))),
            DETAIL  = pg_catalog.format('Element %s of p_statuses is not a known status.', r.n),
            HINT    = 'Use ok, consent_required, unavailable or error (NULL means ok).';
    END IF;

    WITH given AS (
        SELECT DISTINCT ON (g.uid)
               g.uid, g.username, g.name, g.pic,
               COALESCE(g.status, 'ok') AS status, g.code, g.next_at
          FROM ROWS FROM (pg_catalog.unnest(p_ig_user_ids), pg_catalog.unnest(p_usernames),
                          pg_catalog.unnest(p_names), pg_catalog.unnest(p_profile_pics),
                          pg_catalog.unnest(p_statuses), pg_catalog.unnest(p_error_codes),
                          pg_catalog.unnest(p_next_fetch_at))
               WITH ORDINALITY AS g(uid, username, name, pic, status, code, next_at, n)
         WHERE g.uid <> p_ig_account_id AND g.uid IS DISTINCT FROM v_self
         ORDER BY g.uid, g.n DESC
    ), upserted AS (
        INSERT INTO @extschema@.instagram_user_cache AS c
               (ig_account_id, ig_user_id, username, name, profile_pic, profile_pic_url,
                last_fetched_at, fetch_status, last_error_code, fetch_attempts, next_fetch_at,
                updated_at)
        SELECT p_ig_account_id, g.uid,
               CASE WHEN g.status = 'ok' THEN g.username END,
               CASE WHEN g.status = 'ok' THEN g.name END,
               CASE WHEN g.status = 'ok' THEN g.pic END,
               CASE WHEN g.status = 'ok' THEN g.pic END,
               CASE WHEN g.status = 'ok' THEN pg_catalog.now() END,
               g.status,
               CASE WHEN g.status <> 'ok' THEN g.code END,
               CASE WHEN g.status = 'ok' THEN 0 ELSE 1 END,
               g.next_at,
               pg_catalog.now()
          FROM given g
        ON CONFLICT (ig_account_id, ig_user_id) DO UPDATE SET
               username = CASE WHEN EXCLUDED.fetch_status = 'ok'
                               THEN COALESCE(EXCLUDED.username, c.username) ELSE c.username END,
               name = CASE WHEN EXCLUDED.fetch_status = 'ok'
                           THEN COALESCE(EXCLUDED.name, c.name) ELSE c.name END,
               profile_pic = CASE WHEN EXCLUDED.fetch_status = 'ok'
                                  THEN COALESCE(EXCLUDED.profile_pic, c.profile_pic, c.profile_pic_url)
                                  ELSE c.profile_pic END,
               profile_pic_url = CASE WHEN EXCLUDED.fetch_status = 'ok'
                                      THEN COALESCE(EXCLUDED.profile_pic, c.profile_pic, c.profile_pic_url)
                                      ELSE c.profile_pic_url END,
               last_fetched_at = CASE WHEN EXCLUDED.fetch_status = 'ok'
                                      THEN EXCLUDED.last_fetched_at ELSE c.last_fetched_at END,
               fetch_status = EXCLUDED.fetch_status,
               last_error_code = EXCLUDED.last_error_code,
               fetch_attempts = CASE WHEN EXCLUDED.fetch_status = 'ok'
                                     THEN 0 ELSE COALESCE(c.fetch_attempts, 0) + 1 END,
               next_fetch_at = EXCLUDED.next_fetch_at,
               updated_at = EXCLUDED.updated_at
        RETURNING c.ig_user_id, c.fetch_status
    )
    SELECT pg_catalog.count(*)::int INTO v_touched FROM upserted;

    RETURN v_touched;
END
$fn$;

-- The extension owner's half of the merge path: settles the queue and
-- returns the account's own id (NULL when the account is unknown).
-- Lock order, the same on every path: queue row before cache row. An
-- ingest locks the queue row and its transaction may then upsert the person;
-- a refresh settles the queue and then upserts. One order means those never
-- deadlock. A successful fetch leaves the queue (the later element wins).
-- PL/pgSQL, so its plans are kept for the session: it runs once a batch.
CREATE FUNCTION ig_identity.prepare_upsert(p_ig_account_id text, p_ig_user_ids text[],
                                           p_statuses text[])
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    DELETE FROM ig_identity.refresh_queue q
     USING (SELECT DISTINCT ON (g.uid) g.uid, COALESCE(g.status, 'ok') AS status
              FROM ROWS FROM (pg_catalog.unnest(p_ig_user_ids), pg_catalog.unnest(p_statuses))
                   WITH ORDINALITY AS g(uid, status, n)
             ORDER BY g.uid, g.n DESC) s
     WHERE q.ig_account_id = p_ig_account_id
       AND q.ig_user_id = s.uid
       AND s.status = 'ok';
    RETURN (SELECT a.self_igsid FROM ig_identity.accounts a WHERE a.ig_account_id = p_ig_account_id);
END
$fn$;

-- The merge path's entry point: settles the queue and looks up the
-- account's own id as the extension's owner, then merges as the cache
-- table's owner (see merge_identities above).
CREATE FUNCTION ig_identity.upsert_identities(
    p_ig_account_id text,
    p_ig_user_ids   text[],
    p_usernames     text[],
    p_names         text[],
    p_profile_pics  text[],
    p_statuses      text[],
    p_error_codes   int[],
    p_next_fetch_at timestamptz[])
RETURNS int
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_identity_upsert_identities';

-- A bounded excerpt of a JSON value for messages: its shape (keys and
-- value types), never an arbitrarily large blob.
CREATE FUNCTION ig_identity.json_shape(p_value jsonb)
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT CASE WHEN pg_catalog.length(s) > 200 THEN pg_catalog.left(s, 200) || '...' ELSE s END
      FROM (SELECT CASE pg_catalog.jsonb_typeof(p_value)
                       WHEN 'object' THEN
                           '{' || COALESCE((SELECT pg_catalog.string_agg(
                                                       pg_catalog.to_jsonb(e.key)::text || ': '
                                                       || pg_catalog.jsonb_typeof(e.value), ', ' ORDER BY e.n)
                                              FROM pg_catalog.jsonb_each(p_value) WITH ORDINALITY AS e(key, value, n)),
                                           '') || '}'
                       ELSE COALESCE(pg_catalog.jsonb_typeof(p_value), 'SQL NULL')
                   END AS s) AS x
$fn$;

/* ------------------------------------------------------------------------
 * SQL interface
 * ------------------------------------------------------------------------ */

/*
 * Registers an account or rotates its credentials. Everything is validated
 * before any row is written, and no message repeats an argument, so the
 * token cannot come back in an error (a failed INSERT would echo its row; a
 * token passed in the wrong position would be echoed by a message quoting
 * that argument). Call it with a bind parameter: log_statement would log a
 * literal token.
 */
CREATE FUNCTION @extschema@.ig_connect_account(
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
    INSERT INTO ig_identity.accounts AS a (ig_account_id, location_id, self_igsid, api_host)
    VALUES (ig_connect_account.ig_account_id, ig_connect_account.location_id,
            ig_connect_account.self_igsid, ig_connect_account.api_host)
    ON CONFLICT (ig_account_id) DO UPDATE
       SET location_id = EXCLUDED.location_id,
           self_igsid = EXCLUDED.self_igsid,
           api_host = EXCLUDED.api_host,
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

COMMENT ON FUNCTION @extschema@.ig_connect_account(text, text, text, text, text) IS
    'Registers an Instagram account or rotates its token (superusers and roles granted EXECUTE)';

-- The cache rows stay: they are the inbox's history, and the identities
-- are still right if the account comes back.
CREATE FUNCTION @extschema@.ig_disconnect_account(ig_account_id text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
BEGIN
    DELETE FROM ig_identity.refresh_queue q
     WHERE q.ig_account_id = ig_disconnect_account.ig_account_id;
    -- account_tokens goes with it (ON DELETE CASCADE).
    DELETE FROM ig_identity.accounts a
     WHERE a.ig_account_id = ig_disconnect_account.ig_account_id;
    RETURN FOUND;
END
$fn$;

COMMENT ON FUNCTION @extschema@.ig_disconnect_account(text) IS
    'Forgets an account''s credentials and queued refreshes; its cached identities stay';

/*
 * Captures an identity from a Graph participant object ({"id", "username",
 * "name", "profile_pic"}), e.g. from a conversation's participants. The
 * guards are the fixes for the user_****** bug: never store the account
 * itself, never store a row without its account, never let a missing field
 * erase a known one. JSON null and an absent key mean the same; an empty
 * string counts as absent; false and 0 are values.
 */
CREATE FUNCTION @extschema@.ig_upsert_participant_identity(
    ig_account_id text,
    self_id       text,
    participant   jsonb)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    v_account text := ig_upsert_participant_identity.ig_account_id;
    v_self    text := ig_upsert_participant_identity.self_id;
    v_obj     jsonb := ig_upsert_participant_identity.participant;
    v_id      text;
    v_known   text;
    v_field   text;
    v_values  text[] := '{}';
BEGIN
    IF v_obj IS NULL OR pg_catalog.jsonb_typeof(v_obj) <> 'object' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'participant must be a JSON object',
            DETAIL  = pg_catalog.format('Got %s.', ig_identity.json_shape(v_obj)),
            HINT    = 'Pass one element of a conversation''s participants, e.g. {"id": "...", "username": "..."}.';
    END IF;
    IF COALESCE(pg_catalog.jsonb_typeof(v_obj -> 'id'), 'absent') NOT IN ('string', 'number')
       OR v_obj ->> 'id' = '' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'participant has no usable id',
            DETAIL  = pg_catalog.format('The "id" must be a non-empty string or number; got %s.',
                                        ig_identity.json_shape(v_obj));
    END IF;
    v_id := v_obj ->> 'id';

    FOREACH v_field IN ARRAY ARRAY['username', 'name', 'profile_pic'] LOOP
        IF pg_catalog.jsonb_typeof(v_obj -> v_field) IN ('object', 'array') THEN
            RAISE EXCEPTION USING
                ERRCODE = 'invalid_parameter_value',
                MESSAGE = pg_catalog.format('participant field "%s" must be a string', v_field),
                DETAIL  = pg_catalog.format('Participant %s has %s.', pg_catalog.left(v_id, 64),
                                            ig_identity.json_shape(v_obj));
        END IF;
        v_values := pg_catalog.array_append(v_values, NULLIF(v_obj ->> v_field, ''));
    END LOOP;

    IF v_account IS NULL OR v_account = '' THEN
        RAISE WARNING USING
            ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'cannot store participant identity without an ig_account_id',
            DETAIL  = pg_catalog.format('Participant %s was not stored.', pg_catalog.left(v_id, 64)),
            HINT    = 'Pass the id of the business account whose conversation lists this participant.';
        RETURN false;
    END IF;

    SELECT a.self_igsid INTO v_known
      FROM ig_identity.accounts a WHERE a.ig_account_id = v_account;
    IF v_id = v_account OR v_id = v_self OR v_id = v_known THEN
        RAISE WARNING USING
            MESSAGE = pg_catalog.format('participant %s is the business account itself; not stored',
                                        pg_catalog.left(v_id, 64)),
            DETAIL  = 'Conversations list the account among their participants; only the other party is an identity to keep.';
        RETURN false;
    END IF;

    IF v_values[1] IS NULL THEN
        RAISE LOG 'ig_identity: participant % of account % has no username: %',
            pg_catalog.left(v_id, 64), pg_catalog.left(v_account, 64),
            CASE WHEN pg_catalog.length(v_obj::text) > 2000
                 THEN pg_catalog.left(v_obj::text, 2000) || '...' ELSE v_obj::text END;
    END IF;

    RETURN ig_identity.upsert_identities(v_account, ARRAY[v_id], ARRAY[v_values[1]],
                                         ARRAY[v_values[2]], ARRAY[v_values[3]],
                                         ARRAY['ok'], NULL, NULL) > 0;
END
$fn$;

COMMENT ON FUNCTION @extschema@.ig_upsert_participant_identity(text, text, jsonb) IS
    'Stores a participant''s identity from a Graph participant object; skips the account itself and rows without an account';

-- What an inbox should show for a participant. Never NULL for a non-NULL
-- id: the masked id is the last resort, not an empty cell.
CREATE FUNCTION @extschema@.ig_display_name(ig_account_id text, ig_user_id text)
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT COALESCE(
        (SELECT COALESCE(NULLIF(c.username, ''), NULLIF(c.name, ''))
           FROM @extschema@.instagram_user_cache c
          WHERE c.ig_account_id = ig_display_name.ig_account_id
            AND c.ig_user_id = ig_display_name.ig_user_id
          LIMIT 1),
        'user_******' || pg_catalog.right(COALESCE(ig_display_name.ig_user_id, ''), 4))
$fn$;

COMMENT ON FUNCTION @extschema@.ig_display_name(text, text) IS
    'Username, else name, else a masked id';

-- The seed's verification queries. Reads only columns every legacy cache
-- has, so the same figures can be taken before and after the repair.
CREATE FUNCTION @extschema@.ig_identity_check(
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
           (SELECT pg_catalog.count(*) FROM ig_identity.quarantine)
      FROM @extschema@.instagram_user_cache c
$fn$;

COMMENT ON FUNCTION @extschema@.ig_identity_check() IS
    'Identity cache health: rows, rows without an account, distinct (account, user) pairs, rows in quarantine';

-- ---------------------------------------------------------------------------
-- Fetching from the Graph API: the set-based statements behind the C++ code
-- in src/pg/ (refresh.cpp, sync.cpp, webhook.cpp).  The C++ side calls only
-- these ig_identity.* functions, always with parameters, so it never needs
-- the inbox tables' schema name and never builds SQL.
--
-- Nothing here may depend on the inbox tables' row types: during a restore
-- this script runs before the dump creates those tables.  Plain SQL and
-- plpgsql bodies are resolved at call time, so they may name them.
-- ---------------------------------------------------------------------------

-- Participants of a location worth refreshing: the other party of every
-- conversation and every sender/recipient of the last 30 days' messages,
-- never the business account itself.
-- Called before ig_identity reads the inbox tables with the extension
-- owner's rights (refresh targets, the webhook's queueing, the worker's
-- stale scan, ig_resolve_profile's answer).  Those reads run none of the
-- tables' owner's code, with two exceptions this refuses: a view (or
-- anything but a table) put in a table's place, whose functions would run
-- as the reader; and an index whose expression or predicate calls a
-- function that no superuser owns, which PostgreSQL may evaluate while
-- planning the read.  Writes are safe either way (they run as the owner).
CREATE FUNCTION ig_identity.check_inbox_tables()
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS rel, c.relkind
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace = '@extschema@'::regnamespace
           AND c.relname IN ('instagram_user_cache', 'instagram_conversations', 'instagram_messages')
           AND c.relkind NOT IN ('r', 'p')
    LOOP
        RAISE EXCEPTION USING
            ERRCODE = 'wrong_object_type',
            MESSAGE = pg_catalog.format('inbox relation %s is not a table', r.rel),
            DETAIL  = 'ig_identity reads and writes only plain or partitioned tables.',
            HINT    = 'Restore the table, or run SELECT * FROM ig_identity_repair().';
    END LOOP;
    FOR r IN
        SELECT DISTINCT i.indexrelid::regclass AS idx, p.oid::regprocedure AS fn
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_index i
            ON i.indrelid = c.oid
            OR i.indrelid IN (SELECT t.relid FROM pg_catalog.pg_partition_tree(c.oid) t)
          JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass
                                     AND d.objid = i.indexrelid
                                     AND d.refclassid = 'pg_catalog.pg_proc'::regclass
          JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid
          JOIN pg_catalog.pg_roles o ON o.oid = p.proowner
         WHERE c.relnamespace = '@extschema@'::regnamespace
           AND c.relname IN ('instagram_user_cache', 'instagram_conversations', 'instagram_messages')
           AND NOT o.rolsuper
         ORDER BY 1, 2
    LOOP
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = pg_catalog.format('index %s on an inbox table calls function %s, which no superuser owns',
                                        r.idx, r.fn),
            DETAIL  = 'PostgreSQL may run an index expression''s functions while planning a read, and ig_identity reads the inbox tables with its owner''s rights.',
            HINT    = 'Drop the index, or have a superuser own the function.';
    END LOOP;
END
$fn$;

CREATE FUNCTION ig_identity.refresh_targets(p_location_id text)
RETURNS TABLE (ig_account_id text, ig_user_id text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH acc AS (
        SELECT a.ig_account_id, a.self_igsid
          FROM ig_identity.accounts a
         WHERE a.location_id = p_location_id
    ), ids AS (
        SELECT c.ig_account_id, c.participant_igsid AS ig_user_id
          FROM @extschema@.instagram_conversations c
          JOIN acc ON acc.ig_account_id = c.ig_account_id
        UNION
        SELECT m.ig_account_id, u.id
          FROM @extschema@.instagram_messages m
          JOIN acc ON acc.ig_account_id = m.ig_account_id
         CROSS JOIN LATERAL (VALUES (m.from_id), (m.to_id)) AS u(id)
         WHERE m.created_at >= pg_catalog.now() - interval '30 days'
    )
    SELECT ids.ig_account_id, ids.ig_user_id
      FROM ids JOIN acc ON acc.ig_account_id = ids.ig_account_id
     WHERE ids.ig_user_id IS NOT NULL
       AND ids.ig_user_id <> ''
       AND ids.ig_user_id NOT LIKE 'UNKNOWN\_%'
       AND ids.ig_user_id <> acc.ig_account_id
       AND ids.ig_user_id <> acc.self_igsid
     ORDER BY 1, 2
$$;

-- Connected accounts with their credentials, for the fetcher.  Only
-- SECURITY DEFINER code owned by the extension's owner can read tokens.
CREATE FUNCTION ig_identity.account_credentials(p_location_id text, p_ig_account_id text)
RETURNS TABLE (ig_account_id text, self_igsid text, api_host text, access_token text,
               status text, paused_until timestamptz, token_rotated_at timestamptz,
               consecutive_throttles int)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.ig_account_id, a.self_igsid, a.api_host, t.access_token, a.status, a.paused_until,
           t.rotated_at, a.consecutive_throttles
      FROM ig_identity.accounts a
      JOIN ig_identity.account_tokens t ON t.ig_account_id = a.ig_account_id
     WHERE (p_location_id IS NULL OR a.location_id = p_location_id)
       AND (p_ig_account_id IS NULL OR a.ig_account_id = p_ig_account_id)
     ORDER BY a.ig_account_id COLLATE "C"
$$;
REVOKE ALL ON FUNCTION ig_identity.account_credentials(text, text) FROM PUBLIC;

-- Records what a fetch learned about an account: a stop (reauth_required,
-- permission_error), a pause, the last error and usage, the last success.
-- A stop or pause learned with a token that has been rotated since (the
-- fetch read the old token while ig_connect_account was setting a new one)
-- is void: the account row is locked first, and the token's rotation time
-- is read after the lock, with a snapshot that sees the rotation.
CREATE FUNCTION ig_identity.record_account_event(
    p_ig_account_id text, p_status text, p_paused_until timestamptz,
    p_error_code int, p_error text, p_usage jsonb, p_success boolean,
    p_token_rotated_at timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM 1 FROM ig_identity.accounts a WHERE a.ig_account_id = p_ig_account_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN; -- disconnected meanwhile
    END IF;
    IF p_status <> 'active' AND p_token_rotated_at IS NOT NULL
       AND (SELECT t.rotated_at FROM ig_identity.account_tokens t
             WHERE t.ig_account_id = p_ig_account_id) IS DISTINCT FROM p_token_rotated_at THEN
        RETURN;
    END IF;
    UPDATE ig_identity.accounts a
       SET status = CASE
                        WHEN p_status <> 'active' THEN p_status
                        WHEN a.status = 'paused'
                             AND (a.paused_until IS NULL OR a.paused_until <= pg_catalog.now())
                            THEN 'active'
                        ELSE a.status
                    END,
           paused_until = CASE WHEN p_status = 'paused' THEN p_paused_until
                               WHEN p_status = 'active' AND a.status = 'paused'
                                    AND a.paused_until <= pg_catalog.now() THEN NULL
                               ELSE a.paused_until END,
           last_error = COALESCE(p_error, a.last_error),
           last_error_code = COALESCE(p_error_code, a.last_error_code),
           last_usage = COALESCE(p_usage, a.last_usage),
           last_success_at = CASE WHEN p_success THEN pg_catalog.now() ELSE a.last_success_at END,
           -- a fetch that succeeded and was then throttled starts the ladder again
           consecutive_throttles = CASE WHEN p_status = 'paused' AND p_success THEN 1
                                        WHEN p_status = 'paused' THEN a.consecutive_throttles + 1
                                        WHEN p_success THEN 0
                                        ELSE a.consecutive_throttles END,
           updated_at = pg_catalog.now()
     WHERE a.ig_account_id = p_ig_account_id;
END
$fn$;

-- Code 4 is an app-wide throttle: every account of the app waits, not only
-- the one that heard it (GRAPH_API.md).  Every account row is locked in id
-- order before anything else of the batch, the order every other path uses
-- (events are recorded in account id order), so two of these never
-- deadlock with each other or with a single account's event.
CREATE FUNCTION ig_identity.pause_app_wide(p_paused_until timestamptz, p_heard_by text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    PERFORM 1 FROM ig_identity.accounts a ORDER BY a.ig_account_id COLLATE "C" FOR UPDATE;
    UPDATE ig_identity.accounts a
       SET status = 'paused',
           paused_until = GREATEST(p_paused_until,
                                   CASE WHEN a.status = 'paused' THEN a.paused_until END),
           last_error = pg_catalog.format('app-wide throttle (code 4) heard by account %s', p_heard_by),
           last_error_code = 4,
           updated_at = pg_catalog.now()
     WHERE a.status IN ('active', 'paused')
       AND a.ig_account_id <> p_heard_by;
END
$fn$;

-- Settles queue rows after a fetch: a NULL next time removes the row (done,
-- or waiting for something other than time), a time puts it back to wait.
CREATE FUNCTION ig_identity.settle_queue(p_ig_account_id text, p_ig_user_ids text[],
                                         p_not_before timestamptz[])
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM ig_identity.refresh_queue q
     USING unnest(p_ig_user_ids, p_not_before) AS s(ig_user_id, not_before)
     WHERE q.ig_account_id = p_ig_account_id AND q.ig_user_id = s.ig_user_id
       AND s.not_before IS NULL;
    UPDATE ig_identity.refresh_queue q
       SET not_before = s.not_before, leased_until = NULL, leased_by = NULL, reason = 'retry'
      FROM unnest(p_ig_user_ids, p_not_before) AS s(ig_user_id, not_before)
     WHERE q.ig_account_id = p_ig_account_id AND q.ig_user_id = s.ig_user_id
       AND s.not_before IS NOT NULL;
$$;

-- Upserts one page of conversations from the Conversations API and returns
-- the ids of those that are new or changed since the last sync, whose
-- messages are worth storing (running a sync twice stores nothing twice).
-- Like store_messages, it touches only inbox tables and runs with its
-- caller's rights: the C code calls it as the table's owner (inbox.cpp).
CREATE FUNCTION ig_identity.store_conversations(
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
         WHERE c.participant_igsid IS DISTINCT FROM COALESCE(EXCLUDED.participant_igsid, c.participant_igsid)
            OR c.updated_time IS DISTINCT FROM GREATEST(c.updated_time, EXCLUDED.updated_time)
            OR c.location_id IS NULL
        RETURNING c.id, c.updated_time
    )
    SELECT COALESCE(pg_catalog.array_agg(up.id ORDER BY up.id), '{}')
      FROM up LEFT JOIN before b ON b.id = up.id
     WHERE b.id IS NULL OR b.updated_time IS DISTINCT FROM up.updated_time
$$;

-- Stores messages (sync or webhook), deduplicated on the message id (mid);
-- a message first seen without its conversation gets it when one is known.
-- Returns how many were new.
CREATE FUNCTION ig_identity.store_messages(
    p_ig_account_id text, p_ids text[], p_conversation_ids text[], p_from text[], p_to text[],
    p_texts text[], p_created timestamptz[], p_echo boolean[])
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH rows AS (
        SELECT s.*,
               COALESCE(s.conversation_id,
                        (SELECT c.id FROM @extschema@.instagram_conversations c
                          WHERE c.ig_account_id = p_ig_account_id
                            AND c.participant_igsid = CASE WHEN s.is_echo THEN s.to_id ELSE s.from_id END
                          ORDER BY c.updated_time DESC NULLS LAST LIMIT 1)) AS conv
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
        RETURNING (xmax = 0) AS inserted
    )
    SELECT count(*) FILTER (WHERE inserted) FROM ins
$$;

-- Queues participants for the worker.  Inbound messages (p_inbound) queue a
-- person whose profile needed consent (230): a new message from them is
-- exactly what makes a retry worthwhile.  Anyone without a good identity is
-- queued too.  Returns how many rows were queued.
CREATE FUNCTION ig_identity.enqueue_participants(p_ig_account_id text, p_ig_user_ids text[],
                                                 p_inbound boolean[], p_reason text)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH want AS (
        SELECT DISTINCT s.ig_user_id
          FROM unnest(p_ig_user_ids, p_inbound) AS s(ig_user_id, inbound)
          JOIN ig_identity.accounts a ON a.ig_account_id = p_ig_account_id
          LEFT JOIN @extschema@.instagram_user_cache c
                 ON c.ig_account_id = p_ig_account_id AND c.ig_user_id = s.ig_user_id
         WHERE s.ig_user_id IS NOT NULL
           AND s.ig_user_id <> a.ig_account_id AND s.ig_user_id <> a.self_igsid
           AND (c.ig_user_id IS NULL
                OR c.username IS NULL AND c.fetch_status IN ('ok', 'error')
                OR (s.inbound AND c.fetch_status = 'consent_required'))
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

-- Keeps the run history bounded: the newest 1000 runs.
CREATE FUNCTION ig_identity.record_run(p_source text, p_location_id text, p_started timestamptz,
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
     WHERE id <= (SELECT max(id) - 1000 FROM ig_identity.refresh_runs);
$$;

-- What ig_resolve_profile returns: the cache row and what an inbox shows.
CREATE TYPE @extschema@.ig_identity_profile AS (
    ig_account_id   text,
    ig_user_id      text,
    username        text,
    name            text,
    profile_pic     text,
    fetch_status    text,
    last_error_code int,
    last_fetched_at timestamptz,
    display_name    text
);

-- One cache row in that shape (named columns, not the table's row type,
-- which does not exist yet while a restore runs this script).
CREATE FUNCTION ig_identity.cache_row(p_ig_account_id text, p_ig_user_id text)
RETURNS SETOF @extschema@.ig_identity_profile
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.ig_account_id, c.ig_user_id, c.username, c.name, c.profile_pic, c.fetch_status,
           c.last_error_code, c.last_fetched_at,
           @extschema@.ig_display_name(c.ig_account_id, c.ig_user_id)
      FROM @extschema@.instagram_user_cache c
     WHERE c.ig_account_id = p_ig_account_id AND c.ig_user_id = p_ig_user_id
$$;

-- The fetch functions run as their caller (the app's triggers on the inbox
-- tables never run with more rights than the caller); they read tokens and
-- write account state as the extension's owner internally.  Nobody may call
-- them until granted.
CREATE FUNCTION @extschema@.ig_refresh_identities(location_id text)
RETURNS TABLE (refreshed int, failed int, total int, errors jsonb)
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_refresh_identities';

CREATE FUNCTION @extschema@.ig_resolve_profile(ig_account_id text, ig_user_id text)
RETURNS @extschema@.ig_identity_profile
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_resolve_profile';

REVOKE ALL ON FUNCTION @extschema@.ig_refresh_identities(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ig_resolve_profile(text, text) FROM PUBLIC;

CREATE FUNCTION @extschema@.ig_ingest_webhook(payload jsonb)
RETURNS TABLE (messages_stored int, duplicates int, events_skipped int, participants_queued int)
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_ingest_webhook';
REVOKE ALL ON FUNCTION @extschema@.ig_ingest_webhook(jsonb) FROM PUBLIC;

CREATE FUNCTION @extschema@.ig_sync_inbox(location_id text)
RETURNS TABLE (conversations int, messages int, identities int, api_calls int)
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_sync_inbox';
REVOKE ALL ON FUNCTION @extschema@.ig_sync_inbox(text) FROM PUBLIC;
-- ---------------------------------------------------------------------------
-- The background worker's SQL (src/pg/worker.cpp, wakeup.cpp, shmem.cpp):
-- claiming due queue rows under a lease, queueing stale and missing
-- identities, waking the worker at commit, and the status view.
--
-- The worker reaches the queue only through these functions (and the fetch
-- engine's account_credentials, upsert_identities, settle_queue,
-- record_account_event, record_run), always with parameters.  They run as
-- their caller (the worker connects as the bootstrap superuser); PUBLIC may
-- call none of them.  They follow the tables in the install script and do
-- not depend on the inbox tables' row types (a restore runs this before the
-- dump creates them).
-- ---------------------------------------------------------------------------

-- Step 1 of a worker cycle: claims up to p_limit due rows for p_lease,
-- oldest first, of accounts that may be called now (active, or paused with
-- the pause over: record_account_event re-activates those on success).
-- A row is claimable when its lease ran out or its holder (leased_by) is no
-- longer a live backend: a worker killed with -9 leaves leases whose rows
-- are claimed again at once by its successor, and in any case once the lease
-- runs out.  SKIP LOCKED lets a concurrent writer or claimer pass by.
CREATE FUNCTION ig_identity._worker_claim(p_limit int, p_lease interval)
RETURNS TABLE (ig_account_id text, ig_user_id text, reason text, attempts int)
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE ig_identity.refresh_queue q
       SET leased_until = pg_catalog.now() + p_lease,
           leased_by = pg_catalog.pg_backend_pid(),
           attempts = q.attempts + 1
     WHERE (q.ig_account_id, q.ig_user_id) IN (
            SELECT r.ig_account_id, r.ig_user_id
              FROM ig_identity.refresh_queue r
              JOIN ig_identity.accounts a ON a.ig_account_id = r.ig_account_id
             WHERE r.not_before <= pg_catalog.now()
               AND (r.leased_until IS NULL
                    OR r.leased_until < pg_catalog.now()
                    OR (r.leased_by IS NOT NULL
                        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_activity(r.leased_by) s
                                         WHERE s.pid = r.leased_by)))
               AND a.status IN ('active', 'paused')
               AND (a.paused_until IS NULL OR a.paused_until <= pg_catalog.now())
               AND (a.status = 'active' OR a.paused_until IS NOT NULL)
             ORDER BY r.not_before, r.ig_account_id, r.ig_user_id
             LIMIT p_limit
               FOR UPDATE OF r SKIP LOCKED)
    RETURNING q.ig_account_id, q.ig_user_id, q.reason, q.attempts
$$;

-- Gives back rows this backend leased but did not settle (a fetch stopped
-- by shutdown or error): claimable again at once, attempts kept.
CREATE FUNCTION ig_identity._worker_release(p_ig_account_ids text[], p_ig_user_ids text[])
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH released AS (
        UPDATE ig_identity.refresh_queue q
           SET leased_until = NULL, leased_by = NULL
          FROM unnest(p_ig_account_ids, p_ig_user_ids) AS s(ig_account_id, ig_user_id)
         WHERE q.ig_account_id = s.ig_account_id AND q.ig_user_id = s.ig_user_id
           AND q.leased_by = pg_catalog.pg_backend_pid()
        RETURNING 1
    )
    SELECT count(*) FROM released
$$;

-- Step 4: queues identities of callable accounts that are stale (fetched
-- longer than p_stale_after ago) or missing (never fetched, or fetched 'ok'
-- with no username), respecting next_fetch_at (unavailability and
-- transient errors set it) and never the account itself.  A person who has
-- not consented (230) is never queued by time: only a new inbound message
-- (ig_ingest_webhook) makes a retry worthwhile, and their last_fetched_at
-- stays old, so queueing them here would ask again at every scan.  Rows
-- already queued stay as they are.  At most p_limit per call; returns how
-- many were queued.
CREATE FUNCTION ig_identity._worker_queue_stale(p_stale_after interval, p_limit int)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH a AS (
        SELECT a.ig_account_id, a.self_igsid
          FROM ig_identity.accounts a
         WHERE a.status IN ('active', 'paused')
           AND (a.paused_until IS NULL OR a.paused_until <= pg_catalog.now())
           AND (a.status = 'active' OR a.paused_until IS NOT NULL)
    ), due AS (
        SELECT c.ig_account_id, c.ig_user_id,
               CASE WHEN c.username IS NULL THEN 'new' ELSE 'stale' END AS reason
          FROM @extschema@.instagram_user_cache c
          JOIN a ON a.ig_account_id = c.ig_account_id
         WHERE c.ig_user_id <> a.ig_account_id
           AND c.ig_user_id IS DISTINCT FROM a.self_igsid
           AND c.fetch_status IS DISTINCT FROM 'consent_required'
           AND (c.next_fetch_at IS NULL OR c.next_fetch_at <= pg_catalog.now())
           AND (c.last_fetched_at IS NULL
                OR c.last_fetched_at < pg_catalog.now() - p_stale_after
                OR (c.username IS NULL AND c.fetch_status = 'ok'))
           AND NOT EXISTS (SELECT 1 FROM ig_identity.refresh_queue q
                            WHERE q.ig_account_id = c.ig_account_id
                              AND q.ig_user_id = c.ig_user_id)
         ORDER BY c.last_fetched_at NULLS FIRST
         LIMIT p_limit
    ), ins AS (
        INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
        SELECT d.ig_account_id, d.ig_user_id, d.reason, pg_catalog.now() FROM due d
        ON CONFLICT (ig_account_id, ig_user_id) DO NOTHING
        RETURNING 1
    )
    SELECT count(*) FROM ins
$$;

-- When the worker should look at the queue again: seconds until the first
-- row of a callable account becomes claimable (0 if one is now), NULL when
-- none will without something else changing (the worker then sleeps its
-- refresh_interval, or until a commit wakes it).
CREATE FUNCTION ig_identity._worker_next_due()
RETURNS double precision
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN t.due IS NULL THEN NULL
                ELSE GREATEST(0, EXTRACT(epoch FROM t.due - pg_catalog.now()))::double precision END
      FROM (SELECT min(GREATEST(r.not_before, r.leased_until, a.paused_until)) AS due
              FROM ig_identity.refresh_queue r
              JOIN ig_identity.accounts a ON a.ig_account_id = r.ig_account_id
             WHERE a.status IN ('active', 'paused')
               AND (a.status = 'active' OR a.paused_until IS NOT NULL)) t
$$;

REVOKE ALL ON FUNCTION ig_identity._worker_claim(int, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity._worker_release(text[], text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity._worker_queue_stale(interval, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity._worker_next_due() FROM PUBLIC;

-- Wake the worker when a transaction that queued work commits, never on
-- rollback: the trigger only raises a backend-local flag, a transaction
-- callback sets the worker's latch at COMMIT (src/pg/wakeup.cpp).
CREATE FUNCTION ig_identity._wake_worker_at_commit()
RETURNS trigger
LANGUAGE c
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_identity_wake_worker_at_commit';
REVOKE ALL ON FUNCTION ig_identity._wake_worker_at_commit() FROM PUBLIC;

CREATE TRIGGER refresh_queue_wake_worker
    AFTER INSERT OR UPDATE ON ig_identity.refresh_queue
    FOR EACH STATEMENT EXECUTE FUNCTION ig_identity._wake_worker_at_commit();

-- Pokes the worker now; true when a worker serving this database was found.
CREATE FUNCTION @extschema@.ig_identity_wakeup()
RETURNS boolean
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_identity_wakeup';
REVOKE ALL ON FUNCTION @extschema@.ig_identity_wakeup() FROM PUBLIC;

-- The worker's state from shared memory: one row, NULL pid when no worker
-- runs (or the library was not preloaded).  last_error never holds a token.
CREATE FUNCTION @extschema@.ig_identity_worker_state(
    OUT pid int, OUT last_cycle_start timestamptz, OUT last_cycle_end timestamptz,
    OUT cycles bigint, OUT identities_refreshed bigint, OUT failures bigint,
    OUT last_error text, OUT errors bigint, OUT in_flight int, OUT wakeups bigint,
    OUT last_error_at timestamptz, OUT started_at timestamptz)
RETURNS record
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_identity_worker_state';

-- Per connected account: state, queue, last success and error, pause, rate
-- limit usage; plus the worker's state.  Never a token.
CREATE VIEW @extschema@.ig_identity_status AS
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
       w.last_error AS worker_last_error
  FROM ig_identity.accounts a
  LEFT JOIN LATERAL (
        SELECT count(*) AS queue_depth,
               count(*) FILTER (WHERE r.leased_until >= pg_catalog.now()) AS in_flight,
               min(r.not_before) AS next_due
          FROM ig_identity.refresh_queue r
         WHERE r.ig_account_id = a.ig_account_id) q ON true
 CROSS JOIN @extschema@.ig_identity_worker_state() w;

-- Monitoring without secrets: nothing for PUBLIC; pg_monitor members (and
-- roles granted these explicitly) may look.
REVOKE ALL ON @extschema@.ig_identity_status FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ig_identity_worker_state() FROM PUBLIC;
GRANT SELECT ON @extschema@.ig_identity_status TO pg_monitor;
GRANT EXECUTE ON FUNCTION @extschema@.ig_identity_worker_state() TO pg_monitor;
/* ------------------------------------------------------------------------
 * Privileges and dump
 * ------------------------------------------------------------------------ */

REVOKE ALL ON ALL TABLES IN SCHEMA ig_identity FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA ig_identity FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ig_identity FROM PUBLIC;
-- Writers touch credentials, private state or DDL: superusers and roles
-- granted EXECUTE only. ig_display_name and ig_identity_check run with the
-- caller's own rights and stay callable.
REVOKE ALL ON FUNCTION @extschema@.ig_connect_account(text, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ig_disconnect_account(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ig_upsert_participant_identity(text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ig_identity_repair() FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('ig_identity.accounts', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.account_tokens', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.refresh_queue', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.refresh_runs', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.refresh_runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.quarantine', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.quarantine_id_seq', '');

/* ------------------------------------------------------------------------
 * Create or repair the inbox tables, unless this is a restore
 * ------------------------------------------------------------------------ */

-- CREATE EXTENSION raises client_min_messages to warning while this runs,
-- so a NOTICE would never be seen: the server log gets LOG lines, and the
-- person installing gets a WARNING only when rows left the app's tables.
DO $do$
DECLARE
    r record;
BEGIN
    IF pg_catalog.current_setting('row_security') = 'off' THEN
        RAISE LOG 'ig_identity: row_security is off, as in a pg_dump or pg_restore script: the inbox tables are left to the dump; if this was not a restore, run SELECT * FROM @extschema@.ig_identity_repair()';
        RETURN;
    END IF;

    SELECT * INTO r FROM @extschema@.ig_identity_repair();
    IF r.tables_created + r.columns_added + r.rows_recovered + r.rows_merged + r.rows_quarantined > 0 THEN
        RAISE LOG 'ig_identity: % inbox tables created, % columns added, % rows given their account back, % duplicate groups merged, % rows moved to ig_identity.quarantine',
            r.tables_created, r.columns_added, r.rows_recovered, r.rows_merged, r.rows_quarantined;
    END IF;
    IF r.rows_quarantined > 0 THEN
        RAISE WARNING 'ig_identity moved % rows of the inbox tables to ig_identity.quarantine', r.rows_quarantined
            USING DETAIL = pg_catalog.format(
                      'Columns added: %s. Rows given their account back: %s. Duplicate groups merged: %s. Rows set aside, each with its reason: %s.',
                      r.columns_added, r.rows_recovered, r.rows_merged, r.rows_quarantined),
                  HINT = 'Review them with SELECT reason, row_data FROM ig_identity.quarantine; DROP EXTENSION drops that table.';
    END IF;
END
$do$;
