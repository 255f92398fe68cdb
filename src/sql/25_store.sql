/* ------------------------------------------------------------------------
 * The identity merge path
 * ------------------------------------------------------------------------ */

/*
 * The one place identities are written: the fetcher (in batches, through
 * SPI) and ig_upsert_participant_identity() both come here, so the rules are
 * the same everywhere:
 * - a successful fetch ('ok' or NULL status) fills the identity columns but
 *   never replaces a stored value with NULL;
 * - any other status records the failure and leaves the identity as it was;
 * - the business account itself is never stored as a participant;
 * - the same participant twice in a batch: the later element wins.
 * Returns the number of cache rows inserted or updated.
 *
 * Two halves, because they run as two different roles (src/pg/privilege.h):
 * ig_identity.upsert_identities (C, src/pg/inbox.cpp) looks up the
 * account's own id and settles the refresh queue as the extension's owner,
 * then calls merge_identities as the cache table's owner, in a
 * security-restricted operation, so the app's triggers on that table never
 * run with the extension owner's rights.  merge_identities touches only the
 * cache table and runs with its caller's rights.
 */
CREATE FUNCTION ig_identity.merge_identities(
    p_ig_account_id text,
    p_self_igsid    text,
    p_ig_user_ids   text[],
    p_usernames     text[],
    p_names         text[],
    p_profile_pics  text[],
    p_statuses      text[],
    p_error_codes   int[],
    p_next_fetch_at timestamptz[])
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_count   int := COALESCE(pg_catalog.cardinality(p_ig_user_ids), 0);
    v_self    text := p_self_igsid;
    v_touched int;
    r         record;
BEGIN
    IF p_ig_account_id IS NULL OR p_ig_account_id = '' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'cannot store participant identities without an ig_account_id',
            DETAIL  = pg_catalog.format('Nothing was stored (identities given: %s).', v_count);
    END IF;
    IF v_count = 0 THEN
        RETURN 0;
    END IF;

    -- A NULL optional array means "all NULL"; otherwise one element per id.
    FOR r IN
        SELECT v.arg, v.len, v.dims
          FROM (VALUES (1, 'p_ig_user_ids',   pg_catalog.cardinality(p_ig_user_ids),   pg_catalog.array_ndims(p_ig_user_ids)),
                       (2, 'p_usernames',     pg_catalog.cardinality(p_usernames),     pg_catalog.array_ndims(p_usernames)),
                       (3, 'p_names',         pg_catalog.cardinality(p_names),         pg_catalog.array_ndims(p_names)),
                       (4, 'p_profile_pics',  pg_catalog.cardinality(p_profile_pics),  pg_catalog.array_ndims(p_profile_pics)),
                       (5, 'p_statuses',      pg_catalog.cardinality(p_statuses),      pg_catalog.array_ndims(p_statuses)),
                       (6, 'p_error_codes',   pg_catalog.cardinality(p_error_codes),   pg_catalog.array_ndims(p_error_codes)),
                       (7, 'p_next_fetch_at', pg_catalog.cardinality(p_next_fetch_at), pg_catalog.array_ndims(p_next_fetch_at)))
               AS v(n, arg, len, dims)
         WHERE v.len IS NOT NULL AND (v.len <> v_count OR v.dims > 1)
         ORDER BY v.n
    LOOP
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'identity arrays must have one element per ig_user_id',
            DETAIL  = pg_catalog.format('Elements: p_ig_user_ids %s, %s %s%s.', v_count, r.arg, r.len,
                                        CASE WHEN r.dims > 1 THEN pg_catalog.format(' in %s dimensions', r.dims) ELSE '' END),
            HINT    = 'Pass one-dimensional arrays of equal length, or NULL for an array whose elements are all NULL.';
    END LOOP;

    SELECT g.n INTO v_touched
      FROM pg_catalog.unnest(p_ig_user_ids) WITH ORDINALITY AS g(uid, n)
     WHERE g.uid IS NULL OR g.uid = ''
     ORDER BY g.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'ig_user_id must not be null or empty',
            DETAIL  = pg_catalog.format('Element %s of p_ig_user_ids is null or empty.', v_touched);
    END IF;

    SELECT g.s, g.n INTO r
      FROM pg_catalog.unnest(p_statuses) WITH ORDINALITY AS g(s, n)
     WHERE g.s NOT IN ('ok', 'consent_required', 'unavailable', 'error')
     ORDER BY g.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = pg_catalog.format('invalid fetch status %s', pg_catalog.quote_literal(pg_catalog.left(r.s, 40))),
            DETAIL  = pg_catalog.format('Element %s of p_statuses is not a known status.', r.n),
            HINT    = 'Use ok, consent_required, unavailable or error (NULL means ok).';
    END IF;

    WITH given AS (
        SELECT DISTINCT ON (g.uid)
               g.uid, g.username, g.name, g.pic,
               COALESCE(g.status, 'ok') AS status, g.code, g.next_at
          FROM ROWS FROM (pg_catalog.unnest(p_ig_user_ids), pg_catalog.unnest(p_usernames),
                          pg_catalog.unnest(p_names), pg_catalog.unnest(p_profile_pics),
                          pg_catalog.unnest(p_statuses), pg_catalog.unnest(p_error_codes),
                          pg_catalog.unnest(p_next_fetch_at))
               WITH ORDINALITY AS g(uid, username, name, pic, status, code, next_at, n)
         WHERE g.uid <> p_ig_account_id AND g.uid IS DISTINCT FROM v_self
         ORDER BY g.uid, g.n DESC
    ), upserted AS (
        INSERT INTO @extschema@.instagram_user_cache AS c
               (ig_account_id, ig_user_id, username, name, profile_pic, profile_pic_url,
                last_fetched_at, fetch_status, last_error_code, fetch_attempts, next_fetch_at,
                updated_at)
        SELECT p_ig_account_id, g.uid,
               CASE WHEN g.status = 'ok' THEN g.username END,
               CASE WHEN g.status = 'ok' THEN g.name END,
               CASE WHEN g.status = 'ok' THEN g.pic END,
               CASE WHEN g.status = 'ok' THEN g.pic END,
               CASE WHEN g.status = 'ok' THEN pg_catalog.now() END,
               g.status,
               CASE WHEN g.status <> 'ok' THEN g.code END,
               CASE WHEN g.status = 'ok' THEN 0 ELSE 1 END,
               g.next_at,
               pg_catalog.now()
          FROM given g
        ON CONFLICT (ig_account_id, ig_user_id) DO UPDATE SET
               username = CASE WHEN EXCLUDED.fetch_status = 'ok'
                               THEN COALESCE(EXCLUDED.username, c.username) ELSE c.username END,
               name = CASE WHEN EXCLUDED.fetch_status = 'ok'
                           THEN COALESCE(EXCLUDED.name, c.name) ELSE c.name END,
               profile_pic = CASE WHEN EXCLUDED.fetch_status = 'ok'
                                  THEN COALESCE(EXCLUDED.profile_pic, c.profile_pic, c.profile_pic_url)
                                  ELSE c.profile_pic END,
               profile_pic_url = CASE WHEN EXCLUDED.fetch_status = 'ok'
                                      THEN COALESCE(EXCLUDED.profile_pic, c.profile_pic, c.profile_pic_url)
                                      ELSE c.profile_pic_url END,
               last_fetched_at = CASE WHEN EXCLUDED.fetch_status = 'ok'
                                      THEN EXCLUDED.last_fetched_at ELSE c.last_fetched_at END,
               fetch_status = EXCLUDED.fetch_status,
               last_error_code = EXCLUDED.last_error_code,
               fetch_attempts = CASE WHEN EXCLUDED.fetch_status = 'ok'
                                     THEN 0 ELSE COALESCE(c.fetch_attempts, 0) + 1 END,
               next_fetch_at = EXCLUDED.next_fetch_at,
               updated_at = EXCLUDED.updated_at
        RETURNING c.ig_user_id, c.fetch_status
    )
    SELECT pg_catalog.count(*)::int INTO v_touched FROM upserted;

    RETURN v_touched;
END
$fn$;

-- The extension owner's half of the merge path: settles the queue and
-- returns the account's own id (NULL when the account is unknown).
-- Lock order, the same on every path: queue row before cache row. An
-- ingest locks the queue row and its transaction may then upsert the person;
-- a refresh settles the queue and then upserts. One order means those never
-- deadlock. A successful fetch leaves the queue (the later element wins).
-- PL/pgSQL, so its plans are kept for the session: it runs once a batch.
CREATE FUNCTION ig_identity.prepare_upsert(p_ig_account_id text, p_ig_user_ids text[],
                                           p_statuses text[])
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    DELETE FROM ig_identity.refresh_queue q
     USING (SELECT DISTINCT ON (g.uid) g.uid, COALESCE(g.status, 'ok') AS status
              FROM ROWS FROM (pg_catalog.unnest(p_ig_user_ids), pg_catalog.unnest(p_statuses))
                   WITH ORDINALITY AS g(uid, status, n)
             ORDER BY g.uid, g.n DESC) s
     WHERE q.ig_account_id = p_ig_account_id
       AND q.ig_user_id = s.uid
       AND s.status = 'ok';
    RETURN (SELECT a.self_igsid FROM ig_identity.accounts a WHERE a.ig_account_id = p_ig_account_id);
END
$fn$;

-- The merge path's entry point: settles the queue and looks up the
-- account's own id as the extension's owner, then merges as the cache
-- table's owner (see merge_identities above).
CREATE FUNCTION ig_identity.upsert_identities(
    p_ig_account_id text,
    p_ig_user_ids   text[],
    p_usernames     text[],
    p_names         text[],
    p_profile_pics  text[],
    p_statuses      text[],
    p_error_codes   int[],
    p_next_fetch_at timestamptz[])
RETURNS int
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_identity_upsert_identities';

-- A bounded excerpt of a JSON value for messages: its shape (keys and
-- value types), never an arbitrarily large blob.
CREATE FUNCTION ig_identity.json_shape(p_value jsonb)
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT CASE WHEN pg_catalog.length(s) > 200 THEN pg_catalog.left(s, 200) || '...' ELSE s END
      FROM (SELECT CASE pg_catalog.jsonb_typeof(p_value)
                       WHEN 'object' THEN
                           '{' || COALESCE((SELECT pg_catalog.string_agg(
                                                       pg_catalog.to_jsonb(e.key)::text || ': '
                                                       || pg_catalog.jsonb_typeof(e.value), ', ' ORDER BY e.n)
                                              FROM pg_catalog.jsonb_each(p_value) WITH ORDINALITY AS e(key, value, n)),
                                           '') || '}'
                       ELSE COALESCE(pg_catalog.jsonb_typeof(p_value), 'SQL NULL')
                   END AS s) AS x
$fn$;

/* ------------------------------------------------------------------------
 * SQL interface
 * ------------------------------------------------------------------------ */

/*
 * The /me check of ig_connect_account (C, one Graph call): raises a clear
 * error when the token is dead, of the other login flavour, or belongs to
 * another account than ig_account_id; returns the Page id for Facebook
 * Login, NULL for Instagram Login or when ig_identity.verify_on_connect is
 * off. Private: only ig_connect_account (as the extension's owner) calls it.
 */
CREATE FUNCTION ig_identity.check_account_token(p_api_host text, p_access_token text,
                                                p_ig_account_id text)
RETURNS text
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_check_account_token';
REVOKE ALL ON FUNCTION ig_identity.check_account_token(text, text, text) FROM PUBLIC;

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
    v_app_secret bytea;
    v_sealed bytea;
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
    -- The token and the app secret are stored sealed, each bound to this
    -- account's row; without a key this refuses (55000) before anything is
    -- sent or written.
    v_sealed := ig_identity.seal_secret(connect_account.access_token,
                                        'access_token:' OPERATOR(pg_catalog.||) connect_account.ig_account_id);
    IF connect_account.keep_app_secret THEN
        SELECT t.app_secret INTO v_app_secret
          FROM ig_identity.account_tokens t
         WHERE t.ig_account_id = connect_account.ig_account_id;
    ELSIF connect_account.app_secret IS NOT NULL THEN
        v_app_secret := ig_identity.seal_secret(connect_account.app_secret,
                                                'app_secret:' OPERATOR(pg_catalog.||) connect_account.ig_account_id);
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
    VALUES (connect_account.ig_account_id, v_sealed, v_app_secret)
    ON CONFLICT (ig_account_id) DO UPDATE
       SET access_token = EXCLUDED.access_token,
           app_secret = EXCLUDED.app_secret,
           expires_at = NULL,
           refresh_failed_at = NULL,
           rotated_at = pg_catalog.now();

    RETURN v_result;
END
$fn$;


/*
 * Registers an account or rotates its token (see ig_identity.connect_account);
 * an app secret stored by the six-argument form stays.
 */
CREATE FUNCTION @extschema@.ig_connect_account(
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

COMMENT ON FUNCTION @extschema@.ig_connect_account(text, text, text, text, text) IS
    'Registers an Instagram account or rotates its token (superusers and roles granted EXECUTE)';

-- The cache rows stay: they are the inbox's history, and the identities
-- are still right if the account comes back.
CREATE FUNCTION @extschema@.ig_disconnect_account(ig_account_id text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
BEGIN
    DELETE FROM ig_identity.refresh_queue q
     WHERE q.ig_account_id = ig_disconnect_account.ig_account_id;
    -- account_tokens goes with it (ON DELETE CASCADE).
    DELETE FROM ig_identity.accounts a
     WHERE a.ig_account_id = ig_disconnect_account.ig_account_id;
    RETURN FOUND;
END
$fn$;

COMMENT ON FUNCTION @extschema@.ig_disconnect_account(text) IS
    'Forgets an account''s credentials and queued refreshes; its cached identities stay';

/*
 * Captures an identity from a Graph participant object ({"id", "username",
 * "name", "profile_pic"}), e.g. from a conversation's participants. The
 * guards are the fixes for the user_****** bug: never store the account
 * itself, never store a row without its account, never let a missing field
 * erase a known one. JSON null and an absent key mean the same; an empty
 * string counts as absent; false and 0 are values.
 */
CREATE FUNCTION @extschema@.ig_upsert_participant_identity(
    ig_account_id text,
    self_id       text,
    participant   jsonb)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
    v_account text := ig_upsert_participant_identity.ig_account_id;
    v_self    text := ig_upsert_participant_identity.self_id;
    v_obj     jsonb := ig_upsert_participant_identity.participant;
    v_id      text;
    v_known   text;
    v_field   text;
    v_values  text[] := '{}';
BEGIN
    IF v_obj IS NULL OR pg_catalog.jsonb_typeof(v_obj) <> 'object' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'participant must be a JSON object',
            DETAIL  = pg_catalog.format('Got %s.', ig_identity.json_shape(v_obj)),
            HINT    = 'Pass one element of a conversation''s participants, e.g. {"id": "...", "username": "..."}.';
    END IF;
    IF COALESCE(pg_catalog.jsonb_typeof(v_obj -> 'id'), 'absent') NOT IN ('string', 'number')
       OR v_obj ->> 'id' = '' THEN
        RAISE EXCEPTION USING
            ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'participant has no usable id',
            DETAIL  = pg_catalog.format('The "id" must be a non-empty string or number; got %s.',
                                        ig_identity.json_shape(v_obj));
    END IF;
    v_id := v_obj ->> 'id';

    FOREACH v_field IN ARRAY ARRAY['username', 'name', 'profile_pic'] LOOP
        IF pg_catalog.jsonb_typeof(v_obj -> v_field) IN ('object', 'array') THEN
            RAISE EXCEPTION USING
                ERRCODE = 'invalid_parameter_value',
                MESSAGE = pg_catalog.format('participant field "%s" must be a string', v_field),
                DETAIL  = pg_catalog.format('Participant %s has %s.', pg_catalog.left(v_id, 64),
                                            ig_identity.json_shape(v_obj));
        END IF;
        v_values := pg_catalog.array_append(v_values, NULLIF(v_obj ->> v_field, ''));
    END LOOP;

    IF v_account IS NULL OR v_account = '' THEN
        RAISE WARNING USING
            ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'cannot store participant identity without an ig_account_id',
            DETAIL  = pg_catalog.format('Participant %s was not stored.', pg_catalog.left(v_id, 64)),
            HINT    = 'Pass the id of the business account whose conversation lists this participant.';
        RETURN false;
    END IF;

    SELECT a.self_igsid INTO v_known
      FROM ig_identity.accounts a WHERE a.ig_account_id = v_account;
    IF v_id = v_account OR v_id = v_self OR v_id = v_known THEN
        RAISE WARNING USING
            MESSAGE = pg_catalog.format('participant %s is the business account itself; not stored',
                                        pg_catalog.left(v_id, 64)),
            DETAIL  = 'Conversations list the account among their participants; only the other party is an identity to keep.';
        RETURN false;
    END IF;

    IF v_values[1] IS NULL THEN
        RAISE LOG 'ig_identity: participant % of account % has no username: %',
            pg_catalog.left(v_id, 64), pg_catalog.left(v_account, 64),
            CASE WHEN pg_catalog.length(v_obj::text) > 2000
                 THEN pg_catalog.left(v_obj::text, 2000) || '...' ELSE v_obj::text END;
    END IF;

    RETURN ig_identity.upsert_identities(v_account, ARRAY[v_id], ARRAY[v_values[1]],
                                         ARRAY[v_values[2]], ARRAY[v_values[3]],
                                         ARRAY['ok'], NULL, NULL) > 0;
END
$fn$;

COMMENT ON FUNCTION @extschema@.ig_upsert_participant_identity(text, text, jsonb) IS
    'Stores a participant''s identity from a Graph participant object; skips the account itself and rows without an account';

-- What an inbox should show for a participant. Never NULL for a non-NULL
-- id: the masked id is the last resort, not an empty cell.
CREATE FUNCTION @extschema@.ig_display_name(ig_account_id text, ig_user_id text)
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

COMMENT ON FUNCTION @extschema@.ig_display_name(text, text) IS
    'Username, else name, else a masked id';

-- The seed's verification queries. Reads only columns every legacy cache
-- has, so the same figures can be taken before and after the repair.
CREATE FUNCTION @extschema@.ig_identity_check(
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

COMMENT ON FUNCTION @extschema@.ig_identity_check() IS
    'Identity cache health: rows, rows without an account, distinct (account, user) pairs, rows in quarantine';

