/* ------------------------------------------------------------------------
 * Webhooks: every shape, nothing lost
 *
 * ig_ingest_webhook (C, src/pg/sql_webhook.cpp) reads `messaging` and
 * `standby` events. Messages go to the inbox table instagram_messages as
 * before; what that table has no column for stays here, in private tables
 * of the extension, so the app's tables gain no columns:
 * - message_details: a message's kind, attachments, reply_to, and when it
 *   was unsent (the inbox row is kept, its text cleared);
 * - webhook_events: postbacks and referrals (they grant consent like a
 *   message and queue the person);
 * - webhook_dead_letters: every event or entry that could not be read, raw,
 *   with the reason, until ig_identity_replay_dead_letters() stores it.
 * ------------------------------------------------------------------------ */

CREATE TABLE ig_identity.message_details (
    ig_account_id text NOT NULL,
    mid           text NOT NULL,
    kind          text NOT NULL
                  CHECK (kind IN ('text', 'attachment', 'unsupported', 'deleted', 'empty')),
    attachments   jsonb CHECK (pg_catalog.jsonb_typeof(attachments) = 'array'),
    reply_to      jsonb CHECK (pg_catalog.jsonb_typeof(reply_to) = 'object'),
    deleted_at    timestamptz,
    received_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (ig_account_id, mid)
);

CREATE TABLE ig_identity.webhook_events (
    id            bigserial PRIMARY KEY,
    ig_account_id text NOT NULL,
    ig_user_id    text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('postback', 'referral')),
    mid           text,
    occurred_at   timestamptz NOT NULL,
    payload       jsonb NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
-- A delivery Meta sends again stores nothing twice.
CREATE UNIQUE INDEX webhook_events_once
    ON ig_identity.webhook_events (ig_account_id, ig_user_id, kind, occurred_at,
                                   pg_catalog.md5(payload::pg_catalog.text));

CREATE TABLE ig_identity.webhook_dead_letters (
    id            bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ig_account_id text,
    reason        text NOT NULL,
    raw           jsonb NOT NULL
);
CREATE INDEX webhook_dead_letters_account ON ig_identity.webhook_dead_letters (ig_account_id);

REVOKE ALL ON ig_identity.message_details, ig_identity.webhook_events,
              ig_identity.webhook_dead_letters FROM PUBLIC;
REVOKE ALL ON SEQUENCE ig_identity.webhook_events_id_seq,
                       ig_identity.webhook_dead_letters_id_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('ig_identity.message_details', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.webhook_events', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.webhook_events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.webhook_dead_letters', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.webhook_dead_letters_id_seq', '');

-- A message's details: its kind (what it was, also once unsent), its
-- attachments and reply_to; a later delivery of the same mid keeps what is
-- known. A plain text message has no row (so most messages cost nothing
-- here) until it is unsent: kind 'deleted' is a message unsent while plain
-- text or never seen. Runs as the extension owner.
CREATE FUNCTION ig_identity.store_message_details(p_ig_account_id text, p_mids text[], p_kinds text[],
                                                  p_attachments text[], p_reply_to text[])
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH ins AS (
        INSERT INTO ig_identity.message_details AS d (ig_account_id, mid, kind, attachments, reply_to)
        SELECT DISTINCT ON (s.mid) p_ig_account_id, s.mid, s.kind, s.att::jsonb, s.rep::jsonb
          FROM unnest(p_mids, p_kinds, p_attachments, p_reply_to) WITH ORDINALITY AS s(mid, kind, att, rep, n)
         ORDER BY s.mid, s.n DESC
        ON CONFLICT (ig_account_id, mid) DO UPDATE
           SET attachments = COALESCE(d.attachments, EXCLUDED.attachments),
               reply_to = COALESCE(d.reply_to, EXCLUDED.reply_to),
               kind = EXCLUDED.kind
        RETURNING 1
    )
    SELECT count(*) FROM ins
$$;

-- Unsends, extension owner's half: the message is marked deleted (a row
-- is kept even when the message itself was never seen, so a later copy of
-- it is known to be unsent).
CREATE FUNCTION ig_identity.record_unsends(p_ig_account_id text, p_mids text[])
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO ig_identity.message_details AS d (ig_account_id, mid, kind, deleted_at)
    SELECT DISTINCT p_ig_account_id, s.mid, 'deleted', pg_catalog.now()
      FROM unnest(p_mids) AS s(mid)
    ON CONFLICT (ig_account_id, mid) DO UPDATE
       SET deleted_at = COALESCE(d.deleted_at, EXCLUDED.deleted_at)
$$;

-- Of these mids, those already unsent: their text must never be shown.
CREATE FUNCTION ig_identity.unsent_mids(p_ig_account_id text, p_mids text[])
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(pg_catalog.array_agg(d.mid), '{}')
      FROM ig_identity.message_details d
     WHERE d.ig_account_id = p_ig_account_id AND d.mid = ANY (p_mids) AND d.deleted_at IS NOT NULL
$$;

-- Unsends, inbox half (runs as instagram_messages' owner, like
-- store_messages): the row stays, its text goes. Returns the rows cleared.
CREATE FUNCTION ig_identity.clear_unsent_messages(p_ig_account_id text, p_mids text[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
-- plpgsql, not sql: Citus plans no SQL function's parameterised statement
-- on a distributed table
DECLARE
    v_n bigint;
BEGIN
    UPDATE @extschema@.instagram_messages m
       SET message = NULL
     WHERE m.ig_account_id = p_ig_account_id AND m.id = ANY (p_mids) AND m.message IS NOT NULL;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- Postbacks and referrals. Returns how many were new.
CREATE FUNCTION ig_identity.store_webhook_events(p_ig_account_id text, p_kinds text[], p_users text[],
                                                 p_mids text[], p_occurred timestamptz[], p_payloads text[])
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH ins AS (
        INSERT INTO ig_identity.webhook_events (ig_account_id, ig_user_id, kind, mid, occurred_at, payload)
        SELECT p_ig_account_id, s.uid, s.kind, s.mid, s.at, s.payload::jsonb
          FROM unnest(p_kinds, p_users, p_mids, p_occurred, p_payloads) AS s(kind, uid, mid, at, payload)
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT count(*) FROM ins
$$;

-- Dead letters: each one a delivery of a single entry or event.
CREATE FUNCTION ig_identity.store_dead_letters(p_accounts text[], p_reasons text[], p_raw text[])
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    WITH ins AS (
        INSERT INTO ig_identity.webhook_dead_letters (ig_account_id, reason, raw)
        SELECT s.acc, s.reason, s.raw::jsonb
          FROM unnest(p_accounts, p_reasons, p_raw) WITH ORDINALITY AS s(acc, reason, raw, n)
         ORDER BY s.n
        RETURNING 1
    )
    SELECT count(*) FROM ins
$$;

CREATE FUNCTION @extschema@.ig_ingest_webhook(payload jsonb)
RETURNS TABLE (messages_stored int, duplicates int, events_skipped int, participants_queued int,
               messages_deleted int, events_stored int, dead_letters int)
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_ingest_webhook';
REVOKE ALL ON FUNCTION @extschema@.ig_ingest_webhook(jsonb) FROM PUBLIC;

-- Parses every dead letter again (after an upgrade taught the parser a new
-- shape): those that now read are stored as a delivery would be, and
-- removed; the others stay, with the reason of this attempt.
CREATE FUNCTION @extschema@.ig_identity_replay_dead_letters()
RETURNS TABLE (replayed int, still_dead int)
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_identity_replay_dead_letters';
REVOKE ALL ON FUNCTION @extschema@.ig_identity_replay_dead_letters() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.ig_identity_replay_dead_letters() IS
    'Stores the webhook dead letters that parse now and removes them; the rest stay in ig_identity.webhook_dead_letters';
