/* ------------------------------------------------------------------------
 * App secret (appsecret_proof) and the lifetime of Instagram Login tokens
 * ------------------------------------------------------------------------ */

-- app_secret: the Meta app's secret when the app requires appsecret_proof
-- (NULL: it does not); a credential like the token, so it lives beside it,
-- where no role but the extension's owner reads, sealed like the token
-- (ig_identity.seal_secret, bound to 'app_secret:' || the account id).
-- Written only by ig_identity.connect_account, read only through
-- ig_identity.account_secrets.
-- expires_at: when an Instagram Login token stops working, known once the
-- worker has refreshed it (NULL: unknown, or a Page token that does not
-- expire by itself). refresh_failed_at: the last failed refresh, so that a
-- failing account is tried again an hour later, not every cycle.
ALTER TABLE ig_identity.account_tokens
    ADD COLUMN app_secret bytea,
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN refresh_failed_at timestamptz;
ALTER TABLE ig_identity.account_tokens ALTER COLUMN app_secret SET STATISTICS 0;

-- The /me check with the app secret's proof (p_sealed_app_secret: the
-- stored, sealed secret; NULL: none); same C function, which opens it.
CREATE FUNCTION ig_identity.check_account_token(p_api_host text, p_access_token text,
                                                p_ig_account_id text, p_sealed_app_secret bytea)
RETURNS text
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_check_account_token';
REVOKE ALL ON FUNCTION ig_identity.check_account_token(text, text, text, bytea) FROM PUBLIC;

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
-- secret is read (sealed, as hex; the fetcher opens it).
CREATE FUNCTION ig_identity.account_secrets(p_location_id text, p_ig_account_id text)
RETURNS TABLE (ig_account_id text, app_secret text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.ig_account_id, pg_catalog.encode(t.app_secret, 'hex')
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
-- newer token wins. The worker seals the token before the call (bound to
-- 'access_token:' || the account id): a plain token as an argument would be
-- printed by auto_explain (log_verbose), its plans holding the values.
-- The account row is locked first, as on every path that touches both.
-- Returns whether it was stored.
CREATE FUNCTION ig_identity._store_refreshed_token(p_ig_account_id text, p_rotated_at timestamptz,
                                                   p_sealed_token bytea, p_expires_in bigint)
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
       SET access_token = p_sealed_token,
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
REVOKE ALL ON FUNCTION ig_identity._store_refreshed_token(text, timestamptz, bytea, bigint) FROM PUBLIC;

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
