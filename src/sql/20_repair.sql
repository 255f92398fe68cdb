/* ------------------------------------------------------------------------
 * Migration helpers (internal: only ig_identity_repair() calls them)
 * ------------------------------------------------------------------------ */

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
CREATE FUNCTION ig_identity.inbox_table(p_nsp oid, p_name name)
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
            PERFORM ig_identity.as_owner(p_rel, pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s',
                                                                  p_rel, p_columns[i][1], p_columns[i][2]));
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

-- The unique indexes the repair builds are built as the table's owner, like
-- every other repair statement, and PostgreSQL wants that role's CREATE on
-- the schema of each index (the table's and its partitions'); PostgreSQL 15
-- no longer grants CREATE on public to everyone (pg_partition_tree() lists
-- no plain table, hence the UNION). Say so, naming the role,
-- the schema and the GRANT, instead of a bare "permission denied".
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
-- alias t; $1 is p_arg) to the quarantine. Returns how many. The DELETE
-- runs as the table's owner, the INSERT into the quarantine as the caller.
-- The row is turned into jsonb after the DELETE, not in its RETURNING:
-- Citus refuses non-immutable functions there.
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
               'WITH moved AS (DELETE FROM %s t WHERE %s RETURNING t.*)
                SELECT pg_catalog.to_jsonb(m) FROM moved m', p_rel, p_where),
               p_arg)) AS r(row_data);
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
-- A partitioned table cannot have a unique index on id alone: its index is
-- on id and the partition key, and the writers keep ids unique across the
-- partitions (store_messages_partitioned); the repair sets aside duplicate
-- ids every time, rows told apart by tableoid and ctid.
CREATE FUNCTION ig_identity.ensure_unique_id(p_rel regclass, p_index name)
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

COMMENT ON FUNCTION @extschema@.ig_identity_repair() IS
    'Creates missing inbox tables and repairs present ones in place (idempotent); rows it cannot keep go to ig_identity.quarantine';

