/* ------------------------------------------------------------------------
 * Migration helpers (internal: only ig_identity_repair() calls them)
 * ------------------------------------------------------------------------ */

-- An inbox table of the extension's schema, or NULL when absent. Anything
-- but a plain table under that name (a view, a partitioned table whose ctid
-- is not unique) is refused rather than guessed at, and so is a table with
-- inheritance children: a parent's rows and its children's share ctids.
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
-- alias t) to the quarantine. Returns how many. The row is turned into
-- jsonb after the DELETE, not in its RETURNING: Citus refuses non-immutable
-- functions there.
CREATE FUNCTION ig_identity.quarantine_rows(p_rel regclass, p_reason text, p_where text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_moved bigint;
BEGIN
    EXECUTE pg_catalog.format(
        'WITH moved AS (DELETE FROM %s t WHERE %s RETURNING t.*)
         INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
         SELECT $1, $2, pg_catalog.to_jsonb(m) FROM moved m', p_rel, p_where)
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
    -- On a Citus coordinator the key is (ig_account_id, id) (60_citus.sql).
    IF ig_identity.citus_active() THEN
        RETURN ig_identity.ensure_account_unique_id(p_rel, p_index);
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
    v_lost   text[];   -- participants whose row lost its account
    v_pair_users    text[];
    v_pair_accounts text[];
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
     * attributed and goes to the quarantine, with the candidates.
     */
    -- The (participant, account) pairs are read first, in a statement of
    -- their own and only for the participants that lost their account, and
    -- handed to the statements on the cache as arrays ($2, $3): on Citus,
    -- with distributed conversations and messages next to a local cache,
    -- those statements then touch no distributed table (Citus refuses a
    -- distributed plan of an UPDATE or DELETE by ctid).
    v_candidates := pg_catalog.format(
        'WITH pairs AS (
             SELECT x.uid, x.acc FROM unnest($2::text[], $3::text[]) AS x(uid, acc)),
         cand AS (
             SELECT u.ctid AS tid,
                    pg_catalog.array_agg(DISTINCT p.acc) FILTER (WHERE p.acc IS NOT NULL) AS accounts
               FROM %1$s u LEFT JOIN pairs p ON p.uid = u.ig_user_id::text
              WHERE u.ig_account_id IS NULL
              GROUP BY u.ctid)', v_rel);
    -- Only when some row lost its account: the statements below find
    -- nothing otherwise, and a distributed cache (which cannot hold a NULL
    -- account) need not run them.
    EXECUTE pg_catalog.format('SELECT pg_catalog.array_agg(DISTINCT t.ig_user_id::text) FROM %s t
                                WHERE t.ig_account_id IS NULL', v_rel)
       INTO v_lost;
    IF v_lost IS NOT NULL THEN
        EXECUTE pg_catalog.format(
            'SELECT pg_catalog.array_agg(p.uid), pg_catalog.array_agg(p.acc) FROM (
                 SELECT c.participant_igsid::text AS uid, c.ig_account_id::text AS acc
                   FROM %1$I.instagram_conversations c
                  WHERE c.participant_igsid::text = ANY ($1) AND c.ig_account_id IS NOT NULL
                 UNION
                 SELECT m.from_id::text, m.ig_account_id::text
                   FROM %1$I.instagram_messages m
                  WHERE m.from_id::text = ANY ($1) AND m.ig_account_id IS NOT NULL
                 UNION
                 SELECT m.to_id::text, m.ig_account_id::text
                   FROM %1$I.instagram_messages m
                  WHERE m.to_id::text = ANY ($1) AND m.ig_account_id IS NOT NULL) p', v_schema)
           INTO v_pair_users, v_pair_accounts
           USING v_lost;
        EXECUTE v_candidates || pg_catalog.format('
             UPDATE %s u SET ig_account_id = c.accounts[1]
               FROM cand c
              WHERE u.ctid = c.tid AND pg_catalog.cardinality(c.accounts) = 1', v_rel)
           USING NULL::text, v_pair_users, v_pair_accounts;
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
            USING v_label, v_pair_users, v_pair_accounts;
        GET DIAGNOSTICS v_n = ROW_COUNT;
        rows_quarantined := rows_quarantined + v_n;
    END IF;

    -- The business account stored as its own participant: the trap that
    -- made inboxes show the shop's name for the customer.
    rows_quarantined := rows_quarantined + ig_identity.quarantine_rows(v_rel, 'self_identity',
        -- an uncorrelated IN, not a correlated EXISTS: Citus runs it
        -- against a distributed cache (the accounts are local)
        't.ig_user_id::text = t.ig_account_id::text
         OR (t.ig_account_id::text, t.ig_user_id::text) IN
            (SELECT a.ig_account_id, a.self_igsid FROM ig_identity.accounts a)');

    /*
     * Duplicate (ig_account_id, ig_user_id) rows. The freshest row stays
     * (it keeps the app's own columns and fetch state); each identity column
     * takes the freshest non-null value of the group. The absorbed rows go to
     * the quarantine as they were, so nothing is lost. One statement, so the
     * ctids the CTEs computed are the ones the UPDATE and DELETE see.
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
                  WHERE u.ig_account_id = g.k_account AND u.ctid = g.keep
              RETURNING 1),
             moved AS (
                 DELETE FROM %1$s u USING g
                  WHERE u.ig_account_id = g.k_account AND u.ig_user_id = g.k_user AND u.ctid <> g.keep
              RETURNING u.*),
             saved AS (
                 INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
                 SELECT $1, ''merged_duplicate'', pg_catalog.to_jsonb(m) FROM moved m
                 RETURNING 1)
             SELECT (SELECT pg_catalog.count(*) FROM g), (SELECT pg_catalog.count(*) FROM saved)',
            v_rel)
            INTO rows_merged, v_n
            USING v_label;
        rows_quarantined := rows_quarantined + v_n;
    END IF;

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

