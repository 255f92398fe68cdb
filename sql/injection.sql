-- injection: hostile strings in every text argument of every function
-- (including the fetch functions and the webhook payload's fields) are
-- either stored verbatim or rejected by validation; no table is harmed.
-- The functions build dynamic SQL only from catalog identifiers and pass
-- values as parameters, so nothing here can reach the parser as SQL.
\set SHOW_CONTEXT never
\set regress_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_injection;
RESET client_min_messages;
CREATE DATABASE igid_injection;
\c igid_injection
CREATE EXTENSION ig_identity;

CREATE FUNCTION pg_temp.outcome(p_sql text, p_args text[]) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
BEGIN
    EXECUTE p_sql USING p_args;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE;
    RETURN v_state;
END $$;

CREATE TEMP TABLE attack (n int PRIMARY KEY, s text NOT NULL);
INSERT INTO attack VALUES
    (1, $a$'); DROP TABLE public.instagram_user_cache; --$a$),
    (2, $a$" OR 1=1 --$a$),
    (3, $a$O'Brien ''quoted'' "double"$a$),
    (4, $a$back\slash \\ \' \x00 \n$a$),
    (5, $a$$$; DROP SCHEMA ig_identity CASCADE; $$$a$),
    (6, $a$$fn$ $x$ %s %I %L %1$s$a$),
    (7, $a$ユーザー 🙂 Ünïcödé «ʻokina» עברית$a$),
    (8, E'tab\there\nnew line'),
    (9, $a$'||pg_sleep(5)||'$a$),
    (10, $a$');DELETE/**/FROM/**/ig_identity.accounts;--$a$),
    (11, $a$17841400000000001' OR '1'='1$a$);

SELECT * FROM ig_connect_account('loc_123', '17841400000000001', '17841400000000001', 'tok-injection-A');

/*
 * ig_upsert_participant_identity: every string, in the account id, the
 * participant id and every identity field, is stored verbatim; in self_id
 * it only takes part in a comparison.
 */
SELECT a.n,
       ig_upsert_participant_identity(a.s, a.s || '-self',
           jsonb_build_object('id', a.s || ' (participant)', 'username', a.s, 'name', a.s,
                              'profile_pic', a.s)) AS stored_under_hostile_account,
       ig_upsert_participant_identity('17841400000000001', a.s,
           jsonb_build_object('id', '90000' || a.n, 'username', a.s, 'name', a.s, 'profile_pic', a.s)) AS stored
  FROM attack a ORDER BY a.n;
SELECT a.n,
       c1.ig_account_id = a.s AND c1.ig_user_id = a.s || ' (participant)' AND c1.username = a.s AND c1.name = a.s
           AND c1.profile_pic = a.s AND c1.profile_pic_url = a.s AS verbatim_1,
       c2.username = a.s AND c2.name = a.s AND c2.profile_pic = a.s AS verbatim_2
  FROM attack a
  JOIN instagram_user_cache c1 ON c1.ig_account_id = a.s AND c1.ig_user_id = a.s || ' (participant)'
  JOIN instagram_user_cache c2 ON c2.ig_account_id = '17841400000000001' AND c2.ig_user_id = '90000' || a.n
 ORDER BY a.n;
-- A hostile participant id equal to the hostile self id is "self" (the
-- WARNINGs, which quote the id, are silenced here).
SET client_min_messages = error;
SELECT count(*) FILTER (WHERE r) AS stored, count(*) FILTER (WHERE NOT r) AS skipped
  FROM (SELECT ig_upsert_participant_identity(a.s, NULL, jsonb_build_object('id', a.s || 'x')) AS r
          FROM attack a
        UNION ALL
        SELECT ig_upsert_participant_identity(a.s || 'y', a.s, jsonb_build_object('id', a.s))
          FROM attack a) x;
RESET client_min_messages;

/*
 * upsert_identities: every array element verbatim; a hostile status is
 * rejected by validation.
 */
SELECT ig_identity.upsert_identities('17841400000000001',
       array_agg('80000' || a.n ORDER BY a.n), array_agg(a.s ORDER BY a.n), array_agg(a.s ORDER BY a.n),
       array_agg(a.s ORDER BY a.n), NULL, NULL, NULL) AS touched
  FROM attack a;
SELECT count(*) AS verbatim
  FROM attack a JOIN instagram_user_cache c ON c.ig_user_id = '80000' || a.n
 WHERE c.username = a.s AND c.name = a.s AND c.profile_pic = a.s;
SELECT a.n, pg_temp.outcome(
           'SELECT ig_identity.upsert_identities($1[1], ARRAY[''1''], NULL, NULL, NULL, ARRAY[$1[2]], NULL, NULL)',
           ARRAY['17841400000000001', a.s]) AS hostile_status
  FROM attack a ORDER BY a.n;

/*
 * ig_connect_account: a hostile location id is stored verbatim; ids, tokens
 * with spaces or non-ASCII, and hosts are rejected by validation. A token
 * made only of printable ASCII is a token (9 and 10 here, accepted for
 * account 1): stored verbatim.
 */
SELECT a.n,
       pg_temp.outcome('SELECT ig_connect_account($1[1], ''17841400000000009'', ''17841400000000009'', ''tok-x'')',
                       ARRAY[a.s]) AS as_location,
       pg_temp.outcome('SELECT ig_connect_account(''loc'', $1[1], ''1'', ''tok-x'')', ARRAY[a.s]) AS as_account,
       pg_temp.outcome('SELECT ig_connect_account(''loc'', ''1'', $1[1], ''tok-x'')', ARRAY[a.s]) AS as_self,
       pg_temp.outcome('SELECT ig_connect_account(''loc'', ''1'', ''1'', $1[1])', ARRAY[a.s]) AS as_token,
       pg_temp.outcome('SELECT ig_connect_account(''loc'', ''1'', ''1'', ''tok-x'', $1[1])', ARRAY[a.s]) AS as_host
  FROM attack a ORDER BY a.n;
SELECT location_id = (SELECT s FROM attack WHERE n = 11) AS last_location_verbatim
  FROM ig_identity.accounts WHERE ig_account_id = '17841400000000009';
SELECT pg_temp.outcome('SELECT ig_connect_account(''loc'', ''17841400000000008'', ''1'', $1[1])',
                       ARRAY[$t$');DELETE/**/FROM/**/x;--$$\$t$]) AS ascii_token;
SELECT ig_identity.secret_matches('access_token', ig_account_id, access_token,
                                  $t$');DELETE/**/FROM/**/x;--$$\$t$) AS token_verbatim
  FROM ig_identity.account_tokens WHERE ig_account_id = '17841400000000008';

/*
 * ig_disconnect_account and ig_display_name: nothing matches, nothing
 * breaks; the masked id is the string's last four characters.
 */
SELECT a.n, ig_disconnect_account(a.s) AS disconnected,
       ig_display_name('17841400000000001', a.s || 'z') = 'user_******' || right(a.s || 'z', 4) AS masked
  FROM attack a ORDER BY a.n;
SELECT a.n, ig_display_name(a.s, a.s || ' (participant)') = a.s AS shows_stored_username
  FROM attack a ORDER BY a.n;

/*
 * The fetch functions and the webhook.  A hostile location, account or user
 * id finds nothing (42704: no such account or location; P0002: no such
 * person) before any request; string 11 is a real location here (stored
 * verbatim above for account ...09), so refresh and sync run for it; its
 * made-up token is refused, and the sync says so (28000).
 * Hostile participant ids stored in the inbox tables are reported as invalid
 * by ig_refresh_identities and never reach a URL: the mock counts no
 * request.  Hostile ids and text in a webhook delivery are stored verbatim.
 */
SELECT a.n,
       pg_temp.outcome('SELECT ig_refresh_identities($1[1])', ARRAY[a.s]) AS refresh_location,
       pg_temp.outcome('SELECT ig_sync_inbox($1[1])', ARRAY[a.s]) AS sync_location,
       pg_temp.outcome('SELECT ig_resolve_profile($1[1], ''1000000000000101'')', ARRAY[a.s]) AS resolve_account,
       pg_temp.outcome('SELECT ig_resolve_profile(''17841400000000001'', $1[1])', ARRAY[a.s]) AS resolve_user
  FROM attack a ORDER BY a.n;
INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid, updated_time)
SELECT 'c.attack.' || a.n, '17841400000000001', 'loc_123', a.s, now() FROM attack a;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset
SELECT r.refreshed, r.failed, r.total,
       (SELECT count(*) FROM jsonb_array_elements(r.errors) e WHERE e->>'message' = 'invalid IGSID') AS invalid
  FROM ig_refresh_identities('loc_123') r;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" count
DELETE FROM instagram_conversations WHERE id LIKE 'c.attack.%';
SELECT a.n,
       pg_temp.outcome('SELECT ig_ingest_webhook($1[1]::jsonb)',
           ARRAY[jsonb_build_object('object', 'instagram', 'entry', jsonb_build_array(jsonb_build_object(
               'id', '17841400000000001', 'time', 1, 'messaging', jsonb_build_array(jsonb_build_object(
                   'sender', jsonb_build_object('id', a.s),
                   'recipient', jsonb_build_object('id', '17841400000000001'),
                   'timestamp', 1752834910447,
                   'message', jsonb_build_object('mid', 'mid.attack.' || a.n || a.s, 'text', a.s))))))::text])
           AS hostile_webhook
  FROM attack a ORDER BY a.n;
SELECT count(*) AS verbatim
  FROM attack a JOIN instagram_messages m ON m.id = 'mid.attack.' || a.n || a.s
 WHERE m.from_id = a.s AND m.message = a.s AND m.ig_account_id = '17841400000000001';

-- The functions without text arguments run as before.
SELECT total_rows, null_account_rows, distinct_pairs, quarantined_rows FROM ig_identity_check();
SELECT * FROM ig_identity_repair();

-- Every table is intact.
SELECT c.oid::regclass AS relation
  FROM pg_catalog.pg_class c
 WHERE c.relkind = 'r' AND c.relnamespace IN ('public'::regnamespace, 'ig_identity'::regnamespace)
 ORDER BY c.oid::regclass::text COLLATE "C";
SELECT (SELECT count(*) FROM ig_identity.accounts) AS accounts,
       (SELECT count(*) FROM ig_identity.account_tokens) AS tokens,
       (SELECT count(*) FROM instagram_user_cache) AS cache_rows;

\c :regress_db
DROP DATABASE igid_injection;
