-- tls_settings: ig_identity.ca_file is superuser-only and takes an absolute
-- path or nothing; a TLS handshake that fails (here: https to the plain-http
-- mock) is a transient fault of the call: the cached values stay, the
-- account stays active, the error names the TLS failure and says nothing was
-- sent.  The real TLS and HTTP/2 paths run in TAP 023_tls (nghttpx).
\set SHOW_CONTEXT never
\set regress_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_tls;
DROP ROLE IF EXISTS regress_igid_tls_user;
RESET client_min_messages;
CREATE DATABASE igid_tls;
\c igid_tls
CREATE EXTENSION ig_identity;
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" reset

-- The setting: empty by default (the system store), absolute paths only.
SHOW ig_identity.ca_file;
SET ig_identity.ca_file = 'certs/ca.pem';
SET ig_identity.ca_file = '/nonexistent/ca.pem';
SHOW ig_identity.ca_file;
RESET ig_identity.ca_file;
-- Only a superuser decides whom tokens are trusted to.
CREATE ROLE regress_igid_tls_user;
SET ROLE regress_igid_tls_user;
SET ig_identity.ca_file = '/tmp/other-ca.pem';
SELECT set_config('ig_identity.ca_file', '/tmp/other-ca.pem', false);
RESET ROLE;
SHOW ig_identity.ca_file;
DROP ROLE regress_igid_tls_user;

SELECT status FROM ig_connect_account('loc_tls', '17841400000000001', '17841400000000001',
                                      'mock-token-A-0123456789', 'graph.facebook.com');
INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid, updated_time)
VALUES ('c101', '17841400000000001', 'loc_tls', '1000000000000101', now());
INSERT INTO instagram_user_cache (ig_account_id, ig_user_id, username, name)
VALUES ('17841400000000001', '1000000000000101', 'known.before', 'Known Before');

-- https to the plain-http mock: the handshake fails before any request.
SELECT replace(current_setting('ig_identity.graph_api_url'), 'http://', 'https://') AS tls_url \gset
SET ig_identity.graph_api_url = :'tls_url';
SELECT refreshed, failed, total,
       errors->0->>'message' LIKE '%TLS failure (nothing was sent)%' AS names_tls
  FROM ig_refresh_identities('loc_tls');
SELECT username, name, fetch_status FROM instagram_user_cache WHERE ig_user_id = '1000000000000101';
SELECT status, last_error LIKE '%tls: TLS failure (nothing was sent)%' AS names_tls
  FROM ig_identity_status WHERE ig_account_id = '17841400000000001';
-- the mock never saw a Graph request (the ClientHello is not one)
\! python3 "$IGID_SRC/test/mock_graph/mockctl.py" count
RESET ig_identity.graph_api_url;

-- Back on the right URL the same profile is fetched.
SELECT refreshed, failed, total FROM ig_refresh_identities('loc_tls');
SELECT username, fetch_status FROM instagram_user_cache WHERE ig_user_id = '1000000000000101';

\c :regress_db
SET client_min_messages = warning;
DROP DATABASE igid_tls;
