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
-- The sweep runs in three steps, so that the cache is read only as its
-- owner (see read_conversation_participants): the accounts it may queue
-- for, with how many of their rows are queued already (extension owner);
-- the cache's candidates (read_stale_identities, cache owner); and the
-- queueing itself (_worker_queue_stale, extension owner).
CREATE FUNCTION ig_identity._worker_stale_accounts()
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

-- The cache's stale rows of these accounts, oldest first, at most p_limit:
-- (account, user, reason) triples, flattened.  A reader: runs as the
-- cache's owner.
CREATE FUNCTION ig_identity.read_stale_identities(p_ig_account_ids text[], p_self_igsids text[],
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

-- Queues the first p_limit of those candidates that are not queued yet,
-- for accounts the sweep may still queue for.  Returns how many it queued.
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
REVOKE ALL ON FUNCTION ig_identity._worker_stale_accounts() FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity.read_stale_identities(text[], text[], int, int) FROM PUBLIC;
REVOKE ALL ON FUNCTION ig_identity._worker_queue_stale(text[], int) FROM PUBLIC;
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
-- (Granted to PUBLIC in 90_privileges_and_restore.sql, after the blanket
-- REVOKE on schema ig_identity's functions.)

-- Per connected account: state, queue, last success and error, pause, rate
-- limit usage, webhook dead letters (those without an account on every
-- line); plus the worker's state; the token's expiry.  Never a token.
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
 CROSS JOIN ig_identity.status_worker_state() w;

-- Monitoring without secrets: nothing for PUBLIC; pg_monitor members (and
-- roles granted these explicitly) may look.
REVOKE ALL ON @extschema@.ig_identity_status FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ig_identity_worker_state() FROM PUBLIC;
GRANT SELECT ON @extschema@.ig_identity_status TO pg_monitor;
GRANT EXECUTE ON FUNCTION @extschema@.ig_identity_worker_state() TO pg_monitor;
