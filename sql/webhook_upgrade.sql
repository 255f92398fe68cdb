-- webhook_upgrade: the update from 1.0 recreates ig_ingest_webhook (three
-- more result columns) and gives back the EXECUTE grants roles had on it,
-- as grants pg_dump still dumps (not as the extension's initial
-- privileges); afterwards the new shapes work for the granted role.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_wh_upgrade;
DROP ROLE IF EXISTS igid_wh_app;
DROP ROLE IF EXISTS igid_wh_other;
RESET client_min_messages;
CREATE DATABASE igid_wh_upgrade;
\c igid_wh_upgrade
CREATE EXTENSION ig_identity VERSION '1.0';
CREATE ROLE igid_wh_app;
CREATE ROLE igid_wh_other;
GRANT EXECUTE ON FUNCTION ig_ingest_webhook(jsonb) TO igid_wh_app WITH GRANT OPTION;
-- the 1.1 library in a database still at 1.0: a clear error and the hint
\set VERBOSITY default
SELECT messages_stored FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[
  {"sender":{"id":"1111222233334444"},"recipient":{"id":"17841400000000001"},"timestamp":1752900000000,"message":{"mid":"wh.v10.1","text":"from 1.0"}}]}]}');
ALTER EXTENSION ig_identity UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'ig_identity';
SELECT r.rolname,
       pg_catalog.has_function_privilege(r.rolname, 'ig_ingest_webhook(jsonb)', 'EXECUTE') AS can_execute,
       pg_catalog.has_function_privilege(r.rolname, 'ig_ingest_webhook(jsonb)', 'EXECUTE WITH GRANT OPTION') AS can_grant
  FROM pg_roles r WHERE r.rolname IN ('igid_wh_app', 'igid_wh_other') ORDER BY 1;
-- the initial privileges are a fresh install's: only the owner
SELECT pg_catalog.array_length(i.initprivs, 1) AS init_entries,
       i.initprivs::text LIKE '%igid_wh_app%' AS init_names_app
  FROM pg_init_privs i
 WHERE i.objoid = 'ig_ingest_webhook(jsonb)'::regprocedure AND i.classoid = 'pg_proc'::regclass;
SET ROLE igid_wh_app;
SELECT messages_stored, dead_letters FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[
  {"sender":{"id":"1111222233334444"},"recipient":{"id":"17841400000000001"},"timestamp":1752900000001,"message":{"mid":"wh.v10.2","attachments":[{"type":"image","payload":{"url":"https://cdn.example.invalid/i.jpg"}}]}},
  {"sender":{"id":"1111222233334444"},"recipient":{"id":"17841400000000001"},"timestamp":1752900000002,"typing_v2":{}}]}]}');
RESET ROLE;
SELECT mid, kind FROM ig_identity.message_details ORDER BY mid;
SELECT ig_account_id, webhook_dead_letters FROM ig_identity_status;
SELECT reason FROM ig_identity.webhook_dead_letters;

\c contrib_regression
DROP DATABASE igid_wh_upgrade;
DROP ROLE igid_wh_app;
DROP ROLE igid_wh_other;
