
/* ------------------------------------------------------------------------
 * Secrets at rest
 * ------------------------------------------------------------------------ */

-- Access tokens are stored sealed: AES-256-GCM with the key that the server
-- setting ig_identity.key_file names, bound to their row (the associated
-- data is 'access_token:' || ig_account_id), so a dump holds ciphertext
-- only and a value copied to another row does not open.  Only the library
-- opens them, where it reads credentials; no SQL function returns a token.
-- Without a key this refuses (SQLSTATE 55000), unless
-- ig_identity.allow_unencrypted_tokens is on.  Private.
CREATE FUNCTION ig_identity.seal_secret(p_plain text, p_context text)
RETURNS bytea
LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_seal_secret';
REVOKE ALL ON FUNCTION ig_identity.seal_secret(text, text) FROM PUBLIC;

-- After the DBA has pointed ig_identity.previous_key_file at the old key and
-- ig_identity.key_file at the new one: seals every stored secret that is not
-- under the current key (the old key's, or unencrypted ones) again with it,
-- and returns how many.  Superuser only; one value that does not open stops
-- it, and nothing changes.
CREATE FUNCTION @extschema@.ig_identity_rotate_key()
RETURNS bigint
LANGUAGE c VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_rotate_key';
REVOKE ALL ON FUNCTION @extschema@.ig_identity_rotate_key() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.ig_identity_rotate_key() IS
    'Encrypts every stored access token again with the key of ig_identity.key_file (superuser)';

-- Whether a stored value opens to p_candidate: how a superuser (or a test)
-- checks which token is stored, without a function that returns one.  A
-- value that does not open raises the error its use would.  Private.
CREATE FUNCTION ig_identity.secret_matches(p_column text, p_row_key text, p_stored bytea,
                                           p_candidate text)
RETURNS boolean
LANGUAGE c VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'ig_secret_matches';
REVOKE ALL ON FUNCTION ig_identity.secret_matches(text, text, bytea, text) FROM PUBLIC;
