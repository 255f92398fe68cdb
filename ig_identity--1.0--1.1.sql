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
-- thousands of rows cannot crowd out a small one.  Which rows are claimable,
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
                                             ORDER BY r.not_before, r.ig_user_id) AS turn
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
         ORDER BY ch.turn, r.not_before, r.ig_account_id, r.ig_user_id
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
     WHERE id OPERATOR(pg_catalog.<=) (SELECT pg_catalog.max(id) OPERATOR(pg_catalog.-) 1000
                                         FROM ig_identity.refresh_runs);
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
-- ==== end of issue 15 ====



-- ==== issue 16: a DBA's first hour ====
-- ==== end of issue 16 ====



-- ==== issue 17: scale-out ====
-- ==== end of issue 17 ====



-- ==== issue 18: real transport ====
-- ==== end of issue 18 ====
