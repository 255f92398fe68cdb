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



-- ==== issue 15: many accounts ====
-- ==== end of issue 15 ====



-- ==== issue 16: a DBA's first hour ====
-- ==== end of issue 16 ====



-- ==== issue 18: real transport ====
-- ==== end of issue 18 ====
