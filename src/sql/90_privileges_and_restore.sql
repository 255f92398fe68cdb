/* ------------------------------------------------------------------------
 * Privileges and dump
 * ------------------------------------------------------------------------ */

REVOKE ALL ON ALL TABLES IN SCHEMA ig_identity FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA ig_identity FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ig_identity FROM PUBLIC;
-- Writers touch credentials, private state or DDL: superusers and roles
-- granted EXECUTE only. ig_display_name and ig_identity_check run with the
-- caller's own rights and stay callable.
REVOKE ALL ON FUNCTION @extschema@.ig_connect_account(text, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ig_disconnect_account(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ig_upsert_participant_identity(text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.ig_identity_repair() FROM PUBLIC;
-- Reachable only through ig_identity_status (PUBLIC cannot name schema
-- ig_identity); the view's SELECT grant decides who sees it (50_dba.sql).
GRANT EXECUTE ON FUNCTION ig_identity.status_worker_state() TO PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('ig_identity.accounts', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.account_tokens', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.refresh_queue', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.refresh_runs', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.refresh_runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.quarantine', '');
SELECT pg_catalog.pg_extension_config_dump('ig_identity.quarantine_id_seq', '');

/* ------------------------------------------------------------------------
 * Create or repair the inbox tables, unless this is a restore
 * ------------------------------------------------------------------------ */

-- CREATE EXTENSION raises client_min_messages to warning while this runs,
-- so a NOTICE would never be seen: the server log gets LOG lines, and the
-- person installing gets a WARNING only when rows left the app's tables.
DO $do$
DECLARE
    r record;
BEGIN
    IF pg_catalog.current_setting('row_security') = 'off' THEN
        RAISE LOG 'ig_identity: row_security is off, as in a pg_dump or pg_restore script: the inbox tables are left to the dump; if this was not a restore, run SELECT * FROM @extschema@.ig_identity_repair()';
        RETURN;
    END IF;

    SELECT * INTO r FROM @extschema@.ig_identity_repair();
    IF r.tables_created + r.columns_added + r.rows_recovered + r.rows_merged + r.rows_quarantined > 0 THEN
        RAISE LOG 'ig_identity: % inbox tables created, % columns added, % rows given their account back, % duplicate groups merged, % rows moved to ig_identity.quarantine',
            r.tables_created, r.columns_added, r.rows_recovered, r.rows_merged, r.rows_quarantined;
    END IF;
    IF r.rows_quarantined > 0 THEN
        RAISE WARNING 'ig_identity moved % rows of the inbox tables to ig_identity.quarantine', r.rows_quarantined
            USING DETAIL = pg_catalog.format(
                      'Columns added: %s. Rows given their account back: %s. Duplicate groups merged: %s. Rows set aside, each with its reason: %s.',
                      r.columns_added, r.rows_recovered, r.rows_merged, r.rows_quarantined),
                  HINT = 'Review them with SELECT reason, row_data FROM ig_identity_quarantine; DROP EXTENSION keeps them in ig_identity_quarantine_kept.';
    END IF;
END
$do$;
