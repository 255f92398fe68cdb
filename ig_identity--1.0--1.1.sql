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
-- ==== end of issue 14 ====



-- ==== issue 14b: API versions, app secret, token refresh ====
-- ==== end of issue 14b ====



-- ==== issue 15: many accounts ====
-- ==== end of issue 15 ====



-- ==== issue 16: a DBA's first hour ====
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
    r       record;
BEGIN
    IF ig_identity.has_unique_index(p_rel, ARRAY['ig_account_id', 'id']::name[]) THEN
        RETURN 0;
    END IF;
    PERFORM ig_identity.require_free_name(p_rel, p_index, '(ig_account_id, id)');
    IF ig_identity.is_distributed(p_rel) THEN
        -- Citus runs no DELETE that names ctids on a distributed table: each
        -- group of copies is deleted by its key and its first copy written
        -- back (the others go to the quarantine, as on one node).
        v_moved := 0;
        FOR r IN EXECUTE pg_catalog.format(
            'SELECT t.ig_account_id AS acc, t.id AS mid,
                    pg_catalog.array_agg(pg_catalog.to_jsonb(t) ORDER BY t.ctid) AS copies
               FROM %s t
              WHERE t.id IS NOT NULL
              GROUP BY t.ig_account_id, t.id
             HAVING pg_catalog.count(*) > 1', p_rel)
        LOOP
            EXECUTE pg_catalog.format(
                'DELETE FROM %s t WHERE t.ig_account_id OPERATOR(pg_catalog.=) $1
                                    AND t.id OPERATOR(pg_catalog.=) $2', p_rel)
                USING r.acc, r.mid;
            EXECUTE pg_catalog.format(
                'INSERT INTO %1$s SELECT (pg_catalog.jsonb_populate_record(NULL::%1$s, $1)).*', p_rel)
                USING r.copies[1];
            INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
            SELECT ig_identity.table_label(p_rel), 'duplicate_id', c.row_data
              FROM pg_catalog.unnest(r.copies[2:]) AS c(row_data);
            v_moved := v_moved + pg_catalog.cardinality(r.copies) - 1;
        END LOOP;
        EXECUTE pg_catalog.format('CREATE UNIQUE INDEX %I ON %s (ig_account_id, id)', p_index, p_rel);
        RETURN v_moved;
    END IF;
    EXECUTE pg_catalog.format(
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
         INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
         SELECT $1, ''duplicate_id'', pg_catalog.to_jsonb(m) FROM moved m', p_rel)
        USING ig_identity.table_label(p_rel);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    EXECUTE pg_catalog.format('CREATE UNIQUE INDEX %I ON %s (ig_account_id, id)', p_index, p_rel);
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
        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s t WHERE t.ig_account_id IS NULL)', v_rel)
           INTO v_null;
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
            EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN ig_account_id SET NOT NULL', v_rel);
            IF v_con IS NOT NULL THEN
                EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', v_rel, v_con);
                EXECUTE pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (ig_account_id, id)',
                                          v_rel, v_con);
            ELSE
                IF v_idx IS NOT NULL THEN
                    EXECUTE pg_catalog.format('DROP INDEX %s', v_idx);
                END IF;
                PERFORM ig_identity.ensure_account_unique_id(v_rel, (v_name || '_id_unique')::name);
            END IF;
        END IF;
        IF v_rel = v_cache THEN
            PERFORM pg_catalog.create_distributed_table(v_rel, 'ig_account_id');
        ELSE
            PERFORM pg_catalog.create_distributed_table(v_rel, 'ig_account_id',
                                                        colocate_with => v_cache::text);
        END IF;
        -- the rows are in the shards now; Citus leaves their local copy on
        -- disk, where a later CREATE UNIQUE INDEX would still see it
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(v_rel);
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

CREATE OR REPLACE FUNCTION ig_identity.quarantine_rows(p_rel regclass, p_reason text, p_where text)
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

CREATE OR REPLACE FUNCTION ig_identity.ensure_unique_id(p_rel regclass, p_index name)
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
    SELECT pg_catalog.count(*) INTO quarantined_rows FROM ig_identity.quarantine;
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
    ), up AS (
        INSERT INTO @extschema@.instagram_conversations AS c
               (id, ig_account_id, location_id, participant_igsid, updated_time)
        SELECT s.id, $1, $2, s.participant, s.updated
          FROM unnest($3, $4, $5) AS s(id, participant, updated)
        ON CONFLICT (%s) DO UPDATE
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
               COALESCE(s.conversation_id,
                        (SELECT c.id FROM @extschema@.instagram_conversations c
                          WHERE c.ig_account_id = $1
                            AND c.participant_igsid = CASE WHEN s.is_echo THEN s.to_id ELSE s.from_id END
                          ORDER BY c.updated_time DESC NULLS LAST LIMIT 1)) AS conv
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

-- ==== end of issue 17 ====



-- ==== issue 18: real transport ====
-- ==== end of issue 18 ====
