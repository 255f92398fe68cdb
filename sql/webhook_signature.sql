-- webhook_signature: ig_verify_webhook_signature checks X-Hub-Signature-256
-- on the raw body; a re-serialised body (what jsonb gives back) fails, and
-- missing arguments are clear errors.
\set SHOW_CONTEXT never
\set regress_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_signature;
RESET client_min_messages;
CREATE DATABASE igid_signature;
\c igid_signature
CREATE EXTENSION ig_identity;

-- HMAC-SHA256('app-secret-1', body), computed independently with Python's hmac.
\set body '\'{"object":"instagram","entry":[]}\''
\set sig '\'sha256=6a154a46b4d1798bdc4f054e72c7f06fe41769605d46ec4e0de45cff36e29ee2\''
SELECT ig_verify_webhook_signature(convert_to(:body, 'UTF8'), :sig, 'app-secret-1') AS valid;
SELECT ig_verify_webhook_signature(convert_to(:body, 'UTF8'), upper(:sig), 'app-secret-1') AS upper_prefix_refused;
SELECT ig_verify_webhook_signature(convert_to(:body, 'UTF8'), :sig, 'app-secret-2') AS wrong_secret;
SELECT ig_verify_webhook_signature(convert_to(:body || ' ', 'UTF8'), :sig, 'app-secret-1') AS changed_body;
-- A jsonb has lost the bytes: the same delivery after a jsonb round trip fails.
SELECT ig_verify_webhook_signature(convert_to((:body)::jsonb::text, 'UTF8'), :sig, 'app-secret-1') AS jsonb_round_trip;
SELECT ig_verify_webhook_signature(convert_to(:body, 'UTF8'), NULL, 'app-secret-1') AS no_header;
SELECT ig_verify_webhook_signature(convert_to(:body, 'UTF8'), 'sha1=abc', 'app-secret-1') AS malformed;
-- An ordinary role may call it (it reads no table).
CREATE ROLE igid_sig_user;
SET ROLE igid_sig_user;
SELECT ig_verify_webhook_signature(convert_to(:body, 'UTF8'), :sig, 'app-secret-1') AS valid_as_user;
RESET ROLE;
SELECT ig_verify_webhook_signature(NULL, :sig, 'app-secret-1');
\echo :LAST_ERROR_SQLSTATE
SELECT ig_verify_webhook_signature(convert_to(:body, 'UTF8'), :sig, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT ig_verify_webhook_signature(convert_to(:body, 'UTF8'), :sig, '');
\echo :LAST_ERROR_SQLSTATE
DROP ROLE igid_sig_user;
\c :regress_db
DROP DATABASE igid_signature;
