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
 CROSS JOIN ig_identity.status_worker_state() w
 CROSS JOIN LATERAL (
        SELECT CASE WHEN r.finished_at > r.started_at
                    THEN ((r.refreshed + r.failed)
                          / EXTRACT(epoch FROM r.finished_at - r.started_at))::double precision
               END AS rate) p;

REVOKE ALL ON @extschema@.ig_identity_worker_progress FROM PUBLIC;
GRANT SELECT ON @extschema@.ig_identity_worker_progress TO pg_monitor;
