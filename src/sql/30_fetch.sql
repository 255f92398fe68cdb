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

-- Reading the inbox tables.  Planning or running a read of a table can run
-- code its owner attached to it: an expression in an index or an extended
-- statistics object (folded while planning), a row-level security policy,
-- a rule.  No list of such objects can be complete, so ig_identity reads an
-- inbox table only as that table's owner, in a security-restricted
-- operation, as it writes (inbox.cpp calls the readers below through fmgr
-- that way).  Each reader touches one inbox table and nothing private, and
-- returns a text[] (or one row) that the extension owner's side then uses.

-- The other party of an account's conversations.
CREATE FUNCTION ig_identity.read_conversation_participants(p_ig_account_id text)
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

-- Senders and recipients of an account's messages since p_since.
CREATE FUNCTION ig_identity.read_message_participants(p_ig_account_id text, p_since timestamptz)
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

-- Connected accounts with their credentials, for the fetcher.  Only
-- SECURITY DEFINER code owned by the extension's owner can read tokens.
-- access_token is the sealed value as hex (whatever bytea_output says): the
-- library opens it.
CREATE FUNCTION ig_identity.account_credentials(p_location_id text, p_ig_account_id text)
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
-- the one that heard it (docs/graph_api.md).  Every account row is locked in id
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

-- Stores messages (sync or webhook), deduplicated on the message id (mid);
-- a message first seen without its conversation gets it when one is known.
-- Returns how many were new.
CREATE FUNCTION ig_identity.store_messages(
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

-- Which of these participants need a fetch, by the cache: anyone without a
-- good identity, and, for an inbound message (p_inbound), a person whose
-- profile needed consent (230): a new message from them is exactly what
-- makes a retry worthwhile.  A reader (see above): runs as the cache's owner.
CREATE FUNCTION ig_identity.read_identities_wanted(p_ig_account_id text, p_ig_user_ids text[],
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

-- Queues participants (chosen by read_identities_wanted) for the worker,
-- never the account itself.  Returns how many rows were queued.
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
     WHERE id IN (SELECT d.id FROM ig_identity.refresh_runs d
                   WHERE d.id <= (SELECT max(id) - 1000 FROM ig_identity.refresh_runs)
                     FOR UPDATE SKIP LOCKED);
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
-- which does not exist yet while a restore runs this script), NULL when
-- there is none.  A reader (see above): runs as the cache's owner, so the
-- display name is worked out here (as ig_display_name does) from the row.
CREATE FUNCTION ig_identity.cache_row(p_ig_account_id text, p_ig_user_id text)
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

-- ig_ingest_webhook: see 35_webhooks.sql.

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

CREATE FUNCTION @extschema@.ig_sync_inbox(location_id text)
RETURNS TABLE (conversations int, messages int, identities int, api_calls int)
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_sync_inbox';
REVOKE ALL ON FUNCTION @extschema@.ig_sync_inbox(text) FROM PUBLIC;
