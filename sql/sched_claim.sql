-- sched_claim: ig_identity._worker_claim_fair, the worker's claim across
-- accounts (issue 15): accounts take turns, each holds at most its share
-- (rows this backend already holds count against it), paused accounts and
-- skipped ones get nothing, an expired lease is claimable again; and
-- ig_identity._worker_run_save, the history row each save keeps current.
\set SHOW_CONTEXT never
\set regress_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_sched;
RESET client_min_messages;
CREATE DATABASE igid_sched;
\c igid_sched
CREATE EXTENSION ig_identity;

SELECT count(*) FROM (
    SELECT ig_connect_account('loc_s', '178414000001000' || k, '178414000001000' || k, 'tok-sched-claim-' || k)
      FROM generate_series(1, 3) k) c;
-- account 3 is paused for an hour
UPDATE ig_identity.accounts SET status = 'paused', paused_until = now() + interval '1 hour'
 WHERE ig_account_id = '1784140000010003';

-- account 1 has six rows, account 2 two, account 3 two, all due at once
INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
SELECT '1784140000010001', (2000000000000100 + g)::text, 'stale', now() - interval '1 minute'
  FROM generate_series(1, 6) g;
INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
SELECT '178414000001000' || k, (2000000000000100 + 10 * k + g)::text, 'new', now()
  FROM generate_series(2, 3) k, generate_series(1, 2) g;

-- four rows: turns, not age (account 1's rows are all older)
SELECT ig_account_id, ig_user_id, attempts
  FROM ig_identity._worker_claim_fair(4, 3, '1 minute', '{}') ORDER BY 1, 2;
-- a share of 3: account 1 holds two, so one more; account 2 holds both of its own
SELECT ig_account_id, ig_user_id
  FROM ig_identity._worker_claim_fair(100, 3, '1 minute', '{}') ORDER BY 1, 2;
-- share full everywhere: nothing
SELECT count(*) FROM ig_identity._worker_claim_fair(100, 3, '1 minute', '{}');
-- a larger share, account 1 skipped: nothing (account 2 has no more, 3 is paused)
SELECT count(*) FROM ig_identity._worker_claim_fair(100, 10, '1 minute', '{1784140000010001}');
-- the same without the skip: account 1's last three
SELECT ig_account_id, ig_user_id
  FROM ig_identity._worker_claim_fair(100, 10, '1 minute', NULL) ORDER BY 1, 2;
-- a limit of 0 claims nothing
SELECT count(*) FROM ig_identity._worker_claim_fair(0, 10, '1 minute', '{}');
-- leases run out: claimable again, attempts counted
UPDATE ig_identity.refresh_queue SET leased_until = now() - interval '1 second'
 WHERE ig_account_id = '1784140000010002';
SELECT ig_account_id, ig_user_id, attempts
  FROM ig_identity._worker_claim_fair(100, 1, '1 minute', '{}') ORDER BY 1, 2;
-- the paused account's rows were never claimed
SELECT ig_account_id, count(*) FILTER (WHERE leased_by IS NOT NULL) AS leased, count(*) AS queued
  FROM ig_identity.refresh_queue GROUP BY 1 ORDER BY 1;

-- one history row per cycle: inserted by the first save, then kept current
SELECT ig_identity._worker_run_save(NULL, now(), 3, 1, 10, '[]') AS run_id \gset
SELECT ig_identity._worker_run_save(:run_id, now(), 7, 2, 12, '[{"code": 2}]') = :run_id AS same_row;
SELECT source, refreshed, failed, total, errors, finished_at >= started_at AS finished_later
  FROM ig_identity.refresh_runs;
-- an id that is not a worker run gets a row of its own
SELECT ig_identity._worker_run_save(-1, now(), 1, 0, 1, '[]') <> :run_id AS new_row;
SELECT count(*) FROM ig_identity.refresh_runs;

-- nobody but the superuser may call them
SELECT has_function_privilege('public', 'ig_identity._worker_claim_fair(int, int, interval, text[])', 'EXECUTE') AS claim,
       has_function_privilege('public', 'ig_identity._worker_run_save(bigint, timestamptz, int, int, int, jsonb)', 'EXECUTE') AS run_save;

\c :regress_db
SET client_min_messages = warning;
DROP DATABASE igid_sched;
