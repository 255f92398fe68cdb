-- upsert_guards: the guards of ig_upsert_participant_identity() and of
-- ig_identity.upsert_identities(), the one merge path both it and the
-- fetcher use: never the account itself, never a row without its account,
-- never a known value replaced by NULL or by an absent key, failures keep
-- the identity, bad shapes rejected with 22023.
\set SHOW_CONTEXT never
\set regress_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_upsert;
RESET client_min_messages;
CREATE DATABASE igid_upsert;
\c igid_upsert
CREATE EXTENSION ig_identity;

CREATE FUNCTION pg_temp.try(p_sql text, OUT state text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE p_sql;
    state := 'none';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
END $$;

-- Account A's self IGSID is its account id (Facebook Login); account B's
-- differs from it (as with Instagram Login).
SELECT * FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001', 'tok-A-upsert');
SELECT * FROM ig_connect_account('loc_456', '17841400000000002', '17841499999999999', 'tok-B-upsert', 'graph.instagram.com');

/*
 * Self: a participant that is the account is skipped with a WARNING,
 * whether it matches self_id, the account id, or the account's known
 * self IGSID.
 */
SELECT ig_upsert_participant_identity('17841400000000001', '17841400000000001',
       '{"id": "17841400000000001", "username": "acme.store"}');
SELECT ig_upsert_participant_identity('17841400000000001', '17841455555555555',
       '{"id": "17841455555555555", "username": "acme.alt"}');
SELECT ig_upsert_participant_identity('17841400000000002', NULL,
       '{"id": "17841499999999999", "username": "acme.b"}');
SELECT count(*) AS self_rows FROM instagram_user_cache
 WHERE ig_user_id IN ('17841400000000001', '17841455555555555', '17841499999999999');

/*
 * No account: WARNING with SQLSTATE 22004 and the participant id, nothing
 * stored, no abort (the transaction goes on).
 */
BEGIN;
SELECT ig_upsert_participant_identity(NULL, '17841400000000001',
       '{"id": "1000000000000101", "username": "jane.doe"}');
SELECT ig_upsert_participant_identity('', '17841400000000001',
       '{"id": "1000000000000101", "username": "jane.doe"}');
\set VERBOSITY sqlstate
SELECT ig_upsert_participant_identity(NULL, NULL, '{"id": "1000000000000101"}');
\set VERBOSITY default
SELECT count(*) AS stored FROM instagram_user_cache;
COMMIT;

/*
 * Missing username: logged with the raw object, and what is there (name,
 * picture) is still stored.
 */
SET client_min_messages = log;
SELECT ig_upsert_participant_identity('17841400000000001', '17841400000000001',
       '{"id": "1000000000000102", "name": "John Smith", "profile_pic": "https://cdn.example/102.jpg", "extra": [1, 2]}');
RESET client_min_messages;
SELECT ig_user_id, username, name, profile_pic, profile_pic_url, fetch_status,
       last_fetched_at IS NOT NULL AS fetched
  FROM instagram_user_cache WHERE ig_user_id = '1000000000000102';

/*
 * Known values survive: JSON null, an absent key and an empty string all
 * leave the stored value alone; a new value replaces it. The picture is
 * written to profile_pic and mirrored to profile_pic_url.
 */
SELECT ig_upsert_participant_identity('17841400000000001', NULL,
       '{"id": "1000000000000101", "username": "jane.doe", "name": "Jane Doe", "profile_pic": "https://cdn.example/101-a.jpg"}');
SELECT ig_upsert_participant_identity('17841400000000001', NULL,
       '{"id": "1000000000000101", "username": null, "name": null, "profile_pic": null}');
SELECT ig_upsert_participant_identity('17841400000000001', NULL, '{"id": "1000000000000101"}');
SELECT ig_upsert_participant_identity('17841400000000001', NULL,
       '{"id": "1000000000000101", "username": "", "name": ""}');
SELECT ig_user_id, username, name, profile_pic, profile_pic_url
  FROM instagram_user_cache WHERE ig_user_id = '1000000000000101';
SELECT ig_upsert_participant_identity('17841400000000001', NULL,
       '{"id": "1000000000000101", "username": "jane.doe.2", "profile_pic": "https://cdn.example/101-b.jpg"}');
SELECT ig_user_id, username, name, profile_pic, profile_pic_url
  FROM instagram_user_cache WHERE ig_user_id = '1000000000000101';

/*
 * false and 0 are values, stored as their text; a numeric id is stored as
 * its digits (jsonb keeps them exactly, even past bigint).
 */
SELECT ig_upsert_participant_identity('17841400000000001', NULL,
       '{"id": 1000000000000103, "username": false, "name": 0, "profile_pic": true}');
SELECT ig_upsert_participant_identity('17841400000000001', NULL,
       '{"id": 123456789012345678901234567890, "username": "big.id"}');
SELECT ig_user_id, username, name, profile_pic
  FROM instagram_user_cache WHERE ig_user_id IN ('1000000000000103', '123456789012345678901234567890')
 ORDER BY ig_user_id;

/*
 * Bad shapes: SQLSTATE 22023, with a DETAIL that shows the shape (keys and
 * types, cut at 200 characters), never the blob.
 */
\x on
SELECT c.label, e.*
  FROM (VALUES
        (1, 'array',          $$SELECT ig_upsert_participant_identity('17841400000000001', NULL, '[{"id": "1"}]')$$),
        (2, 'string',         $$SELECT ig_upsert_participant_identity('17841400000000001', NULL, '"1000000000000101"')$$),
        (3, 'json null',      $$SELECT ig_upsert_participant_identity('17841400000000001', NULL, 'null')$$),
        (4, 'sql null',       $$SELECT ig_upsert_participant_identity('17841400000000001', NULL, NULL)$$),
        (5, 'no id',          $$SELECT ig_upsert_participant_identity('17841400000000001', NULL, '{"username": "x"}')$$),
        (6, 'null id',        $$SELECT ig_upsert_participant_identity('17841400000000001', NULL, '{"id": null}')$$),
        (7, 'boolean id',     $$SELECT ig_upsert_participant_identity('17841400000000001', NULL, '{"id": true}')$$),
        (8, 'object id',      $$SELECT ig_upsert_participant_identity('17841400000000001', NULL, '{"id": {"value": "1"}}')$$),
        (9, 'empty id',       $$SELECT ig_upsert_participant_identity('17841400000000001', NULL, '{"id": ""}')$$),
        (10, 'object username', $$SELECT ig_upsert_participant_identity('17841400000000001', NULL, '{"id": "1000000000000104", "username": {"a": 1}}')$$),
        (11, 'array name',    $$SELECT ig_upsert_participant_identity('17841400000000001', NULL, '{"id": "1000000000000104", "name": ["a"]}')$$),
        (12, 'object pic',    $$SELECT ig_upsert_participant_identity('17841400000000001', NULL, '{"id": "1000000000000104", "profile_pic": {}}')$$),
        (13, 'huge object',   $$SELECT ig_upsert_participant_identity('17841400000000001', NULL,
                                  (SELECT jsonb_object_agg('key_' || i, repeat('x', 1000)) FROM generate_series(1, 100) i))$$)
       ) AS c(n, label, q),
       LATERAL pg_temp.try(c.q) e
 ORDER BY c.n;
\x off
SELECT count(*) AS rows_for_104 FROM instagram_user_cache WHERE ig_user_id = '1000000000000104';

/*
 * upsert_identities, the batch path.
 */
-- Array lengths must match (NULL means all NULL), one dimension, no NULL or
-- empty ids, known statuses, an account.
\x on
SELECT c.label, e.*
  FROM (VALUES
        (1, 'short usernames', $$SELECT ig_identity.upsert_identities('17841400000000001', ARRAY['1','2'], ARRAY['a'], NULL, NULL, NULL, NULL, NULL)$$),
        (2, 'long codes',      $$SELECT ig_identity.upsert_identities('17841400000000001', ARRAY['1'], NULL, NULL, NULL, ARRAY['error'], ARRAY[1,2], NULL)$$),
        (3, '2-D names',       $$SELECT ig_identity.upsert_identities('17841400000000001', ARRAY['1','2'], NULL, ARRAY[['a'],['b']], NULL, NULL, NULL, NULL)$$),
        (4, 'null id',         $$SELECT ig_identity.upsert_identities('17841400000000001', ARRAY['1',NULL], NULL, NULL, NULL, NULL, NULL, NULL)$$),
        (5, 'empty id',        $$SELECT ig_identity.upsert_identities('17841400000000001', ARRAY[''], NULL, NULL, NULL, NULL, NULL, NULL)$$),
        (6, 'bad status',      $$SELECT ig_identity.upsert_identities('17841400000000001', ARRAY['1','2'], NULL, NULL, NULL, ARRAY['ok','gone'], NULL, NULL)$$),
        (7, 'no account',      $$SELECT ig_identity.upsert_identities(NULL, ARRAY['1'], NULL, NULL, NULL, NULL, NULL, NULL)$$),
        (8, 'empty account',   $$SELECT ig_identity.upsert_identities('', ARRAY['1'], NULL, NULL, NULL, NULL, NULL, NULL)$$)
       ) AS c(n, label, q),
       LATERAL pg_temp.try(c.q) e
 ORDER BY c.n;
\x off

-- An empty batch touches nothing.
SELECT ig_identity.upsert_identities('17841400000000001', '{}', '{}', '{}', '{}', '{}', '{}', '{}') AS touched;

-- A batch: self rows (account id and known self IGSID) are skipped; the
-- same participant twice: the later element wins.
SELECT ig_identity.upsert_identities('17841400000000002',
       ARRAY['17841400000000002', '17841499999999999', '1000000000000201', '1000000000000202', '1000000000000201'],
       ARRAY['self.a', 'self.b', 'first', 'second', 'first.later'],
       NULL, NULL, NULL, NULL, NULL) AS touched;
SELECT ig_user_id, username FROM instagram_user_cache
 WHERE ig_account_id = '17841400000000002' ORDER BY ig_user_id;

-- Failures keep the identity: status, code, next fetch time and attempts
-- change; username, name, picture and last_fetched_at do not.
INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason)
VALUES ('17841400000000001', '1000000000000101', 'stale'),
       ('17841400000000001', '1000000000000105', 'new');
SELECT last_fetched_at AS fetched_before FROM instagram_user_cache
 WHERE ig_user_id = '1000000000000101' \gset
SELECT ig_identity.upsert_identities('17841400000000001',
       ARRAY['1000000000000101', '1000000000000105'],
       ARRAY['must.not.win', 'ghost'], ARRAY['Nope', NULL], ARRAY['https://cdn.example/nope.jpg', NULL],
       ARRAY['consent_required', 'unavailable'], ARRAY[230, 9010],
       ARRAY['2030-01-01 00:00:00+00', '2030-02-01 00:00:00+00']::timestamptz[]) AS touched;
SELECT ig_identity.upsert_identities('17841400000000001', ARRAY['1000000000000101'], NULL, NULL, NULL,
       ARRAY['error'], ARRAY[2], ARRAY['2030-01-02 00:00:00+00']::timestamptz[]) AS touched;
SELECT ig_user_id, username, name, profile_pic, fetch_status, last_error_code, fetch_attempts,
       next_fetch_at, last_fetched_at = :'fetched_before'::timestamptz AS fetched_at_kept,
       last_fetched_at IS NULL AS never_fetched
  FROM instagram_user_cache
 WHERE ig_user_id IN ('1000000000000101', '1000000000000105') ORDER BY ig_user_id;
-- A failure leaves the queue row for the retry.
SELECT ig_user_id, reason FROM ig_identity.refresh_queue ORDER BY ig_user_id;

-- Success again: identity updated, failure state cleared, queue row gone.
SELECT ig_identity.upsert_identities('17841400000000001', ARRAY['1000000000000101'],
       ARRAY['jane.doe'], NULL, NULL, ARRAY['ok'], NULL, NULL) AS touched;
SELECT ig_user_id, username, name, profile_pic, fetch_status, last_error_code, fetch_attempts,
       next_fetch_at, last_fetched_at > :'fetched_before'::timestamptz AS fetched_again
  FROM instagram_user_cache WHERE ig_user_id = '1000000000000101';
SELECT ig_user_id, reason FROM ig_identity.refresh_queue ORDER BY ig_user_id;

/*
 * What the inbox shows: username, else name, else a masked id.
 */
SELECT u.id, ig_display_name('17841400000000001', u.id) AS shown_as
  FROM (VALUES ('1000000000000101'), ('1000000000000102'), ('1000000000000105'),
               ('1000000000009999'), ('12')) AS u(id)
 ORDER BY u.id;
SELECT ig_display_name('17841400000000002', '1000000000000101') AS other_account,
       ig_display_name('17841400000000001', NULL) AS no_id;

\c :regress_db
DROP DATABASE igid_upsert;
