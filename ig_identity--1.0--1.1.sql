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
-- app_secret: the Meta app's secret when the app requires appsecret_proof
-- (NULL: it does not); a credential like the token, so it lives beside it,
-- where no role but the extension's owner reads. Written only by
-- ig_identity.connect_account, read only through ig_identity.account_secrets.
-- expires_at: when an Instagram Login token stops working, known once the
-- worker has refreshed it (NULL: unknown, or a Page token that does not
-- expire by itself). refresh_failed_at: the last failed refresh, so that a
-- failing account is tried again an hour later, not every cycle.
ALTER TABLE ig_identity.account_tokens
    ADD COLUMN app_secret text,
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN refresh_failed_at timestamptz;
ALTER TABLE ig_identity.account_tokens ALTER COLUMN app_secret SET STATISTICS 0;

-- The /me check with the app secret's proof (NULL: none); same C function.
CREATE FUNCTION ig_identity.check_account_token(p_api_host text, p_access_token text,
                                                p_ig_account_id text, p_app_secret text)
RETURNS text
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_check_account_token';
REVOKE ALL ON FUNCTION ig_identity.check_account_token(text, text, text, text) FROM PUBLIC;

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
-- secret is read.
CREATE FUNCTION ig_identity.account_secrets(p_location_id text, p_ig_account_id text)
RETURNS TABLE (ig_account_id text, app_secret text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.ig_account_id, t.app_secret
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
-- newer token wins. The account row is locked first, as on every path that
-- touches both. Returns whether it was stored.
CREATE FUNCTION ig_identity._store_refreshed_token(p_ig_account_id text, p_rotated_at timestamptz,
                                                   p_access_token text, p_expires_in bigint)
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
       SET access_token = p_access_token,
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
REVOKE ALL ON FUNCTION ig_identity._store_refreshed_token(text, timestamptz, text, bigint) FROM PUBLIC;

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
    v_app_secret text;
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
    IF connect_account.keep_app_secret THEN
        SELECT t.app_secret INTO v_app_secret
          FROM ig_identity.account_tokens t
         WHERE t.ig_account_id = connect_account.ig_account_id;
    ELSE
        v_app_secret := connect_account.app_secret;
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
    VALUES (connect_account.ig_account_id, connect_account.access_token, v_app_secret)
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
-- ==== end of issue 15 ====



-- ==== issue 16: a DBA's first hour ====
-- ==== end of issue 16 ====



-- ==== issue 17: scale-out ====
-- ==== end of issue 17 ====



-- ==== issue 18: real transport ====
-- ==== end of issue 18 ====
