/* ------------------------------------------------------------------------
 * Scale-out on Citus (issue 17)
 *
 * On a Citus coordinator the inbox tables are distributed by ig_account_id
 * and co-located; the extension's private tables stay local there, and so
 * does the worker. Citus wants every primary or unique key of a distributed
 * table to lead with the distribution column, so conversations and messages
 * are keyed (ig_account_id, id) there instead of (id). Everything below
 * does nothing, and costs one catalog lookup, on a server without Citus.
 * ------------------------------------------------------------------------ */

-- The citus extension is installed in this database.
CREATE FUNCTION ig_identity.citus_active()
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'citus')
$fn$;

-- This node is a Citus worker (its group is not the coordinator's, 0).
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

-- p_rel is a Citus distributed (hash) table. Citus's catalog is read only
-- when Citus is there (dynamic SQL: the table does not exist otherwise).
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

-- Whether the Citus worker node(s) holding an account's shard of the
-- identity cache answer now (citus_check_connection_to_node opens a
-- connection and reports, without raising). The background worker asks
-- before it writes an account's results: a write that fails on a node
-- fails the whole transaction when it commits, and with it every other
-- account's results. Always true without Citus or with a local cache.
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

-- The connected accounts whose shard of the identity cache lives on a Citus
-- worker node that does not answer now: each active node is asked once.
-- The worker's stale sweep leaves them out (its read of the cache would
-- fail as a whole) until the node is back. Empty without Citus.
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

-- ensure_unique_id() on a Citus coordinator: the key is (ig_account_id, id).
-- Redeliveries of a message to the same account are set aside as on one
-- node; the window is partitioned and the join made on the distribution
-- column so that Citus runs the statement shard by shard (ctids are only
-- unique within a shard). Every statement on the table runs as its owner
-- (as_owner, 20_repair.sql); the quarantine is written as the caller.
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

-- Distributes the three inbox tables by ig_account_id, co-located with the
-- identity cache, on a Citus coordinator. Idempotent: a table already
-- distributed is left as it is. The tables must be repaired first
-- (ig_identity_repair(), which CREATE EXTENSION runs): no NULL account and
-- a key leading with ig_account_id. A conversation or message table keyed by
-- (id) alone, as on one node, gets the key (ig_account_id, id) in place of
-- the (id) index ig_identity made; a key of the app's own is never dropped.
-- One transaction: an error leaves every table as it was.
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

COMMENT ON FUNCTION @extschema@.ig_identity_distribute() IS
    'On a Citus coordinator: distributes the inbox tables by ig_account_id, co-located with the identity cache (idempotent)';
-- Citus propagates CREATE EXTENSION ig_identity to its workers at the end
-- of the statement, over one connection per node; it can do so only when
-- the repair's DDL on distributed tables (ALTER TABLE ... ADD COLUMN,
-- CREATE INDEX) took one connection per node as well.
SELECT pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true)
 WHERE ig_identity.citus_active();

-- DDL on the app's tables: superusers and roles granted EXECUTE only.
REVOKE ALL ON FUNCTION @extschema@.ig_identity_distribute() FROM PUBLIC;
