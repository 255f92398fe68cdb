/* ------------------------------------------------------------------------
 * Private state
 * ------------------------------------------------------------------------ */

CREATE SCHEMA ig_identity;
COMMENT ON SCHEMA ig_identity IS
    'ig_identity private state: accounts, tokens, refresh queue and history, quarantine';
REVOKE ALL ON SCHEMA ig_identity FROM PUBLIC;

-- Account state is apart from tokens so that state can be granted to a
-- monitoring role without exposing credentials.
CREATE TABLE ig_identity.accounts (
    ig_account_id   text PRIMARY KEY,
    location_id     text NOT NULL,
    self_igsid      text NOT NULL,
    api_host        text NOT NULL
                    CHECK (api_host IN ('graph.facebook.com', 'graph.instagram.com')),
    status          text NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'reauth_required', 'permission_error', 'paused')),
    paused_until    timestamptz,
    last_error      text,
    last_error_code int,
    last_usage      jsonb,
    last_success_at timestamptz,
    -- throttles in a row (reset by a success or a new token): the pause
    -- ladder's step, 60 -> 300 -> 900 s, carried from one fetch to the next
    consecutive_throttles int NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- Facebook Login: the Page whose token the account uses (what /me
    -- answered at connect time); NULL for Instagram Login or when connected
    -- without the check
    page_id         text CHECK (page_id ~ '^[0-9]{1,32}$')
);
CREATE INDEX accounts_location_id_idx ON ig_identity.accounts (location_id);

CREATE TABLE ig_identity.account_tokens (
    ig_account_id text PRIMARY KEY
                  REFERENCES ig_identity.accounts (ig_account_id) ON DELETE CASCADE,
    -- sealed (see ig_identity.seal_secret): ciphertext, never the token
    access_token  bytea NOT NULL,
    rotated_at    timestamptz NOT NULL DEFAULT now()
);
-- ANALYZE (autovacuum's too) would copy sampled tokens into pg_statistic
-- (histogram bounds), outside this table: collect no statistics on them.
ALTER TABLE ig_identity.account_tokens ALTER COLUMN access_token SET STATISTICS 0;

-- No foreign key to accounts: a webhook may queue a participant before the
-- account is connected; ig_disconnect_account() clears an account's rows.
CREATE TABLE ig_identity.refresh_queue (
    ig_account_id text,
    ig_user_id    text,
    reason        text NOT NULL
                  CHECK (reason IN ('new', 'stale', 'webhook', 'manual', 'retry')),
    not_before    timestamptz NOT NULL DEFAULT now(),
    attempts      int NOT NULL DEFAULT 0,
    leased_until  timestamptz,
    leased_by     int,
    enqueued_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ig_account_id, ig_user_id)
);
CREATE INDEX refresh_queue_not_before_idx ON ig_identity.refresh_queue (not_before);

CREATE TABLE ig_identity.refresh_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text NOT NULL,
    location_id text,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    refreshed   int,
    failed      int,
    total       int,
    errors      jsonb
);

-- row_data is the whole row as it was when set aside (every column, the
-- app's own included); reason says why.
CREATE TABLE ig_identity.quarantine (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_table   text NOT NULL,
    reason         text NOT NULL,
    row_data       jsonb NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);

-- The run history is for people looking at recent behaviour, not an audit
-- log: keep the newest 1000 whoever inserts.
CREATE FUNCTION ig_identity.trim_refresh_runs()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    -- rows another transaction is trimming (or updating) are skipped: an
    -- open transaction that recorded a run must not stall every other
    -- writer of the history, the worker's mid-cycle saves among them
    DELETE FROM ig_identity.refresh_runs r
     WHERE r.id IN (SELECT d.id FROM ig_identity.refresh_runs d
                     WHERE d.id < (SELECT k.id FROM ig_identity.refresh_runs k
                                    ORDER BY k.id DESC OFFSET 999 LIMIT 1)
                       FOR UPDATE SKIP LOCKED);
    RETURN NULL;
END
$fn$;

CREATE TRIGGER refresh_runs_keep_newest
    AFTER INSERT ON ig_identity.refresh_runs
    FOR EACH STATEMENT EXECUTE FUNCTION ig_identity.trim_refresh_runs();

-- Returned by ig_connect_account(); a named type because the function's
-- parameters already use the column names.
CREATE TYPE ig_identity.connected_account AS (
    ig_account_id text,
    location_id   text,
    status        text
);

