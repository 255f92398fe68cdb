/*
 * ig_identity--1.1.sql — install script of ig_identity, and at the same time
 * the migration of an inbox that already exists.  Built by `make` from the
 * files of src/sql/ in name order: 10 private schema, 20 repair (migration),
 * 25 identity store, 30 fetch functions, 40 worker, 90 privileges and the
 * restore-aware final step.
 *
 * Two kinds of objects, on purpose:
 *
 * - Members of the extension: schema ig_identity and everything in it
 *   (connected accounts, their tokens, the refresh queue, the run history,
 *   the quarantine of rows the migration set aside) and every function.
 *   Their rows are marked with pg_extension_config_dump so pg_dump carries
 *   them; PUBLIC has no access to any of it.
 *
 * - Not members: the inbox tables instagram_user_cache,
 *   instagram_conversations and instagram_messages, in the schema the
 *   extension is installed in (public by default, where the app reads them).
 *   They are the app's data. A member table is dumped as data only and is
 *   re-created from this script at restore, so the app's own extra columns
 *   would fail to load; DROP EXTENSION would also drop the app's rows. So a
 *   missing inbox table is created and at once taken out of the extension,
 *   and a present one is repaired in place and never adopted. pg_dump then
 *   always writes their full definitions, and DROP EXTENSION leaves them.
 *   No serial/identity columns in them: their sequences would stay members.
 *
 * Restore: a dump runs CREATE EXTENSION before its own CREATE TABLEs for
 * the inbox tables, so creating them here would make the restore fail.
 * pg_dump and pg_restore output runs SET row_security = off before
 * CREATE EXTENSION and the setting is visible inside this script (unlike
 * check_function_bodies, which CREATE EXTENSION always turns off), so when it
 * is off the inbox tables are left to the dump. After a restore that left the
 * inbox tables out, run SELECT * FROM ig_identity_repair().
 *
 * The whole migration is one idempotent function, ig_identity_repair(), run
 * at the end of this script inside CREATE EXTENSION's transaction: any error
 * leaves the database as it was. It decides everything from the catalogs and
 * never uses CREATE ... IF NOT EXISTS, which PostgreSQL refuses on objects
 * that exist but are not extension members (CVE-2022-2625). Rows it cannot
 * keep go to ig_identity.quarantine, whole (to_jsonb of the row), never
 * silently deleted; jsonb_populate_record() puts one back. DROP EXTENSION
 * copies the quarantine into the app's table ig_identity_quarantine_kept
 * before it drops schema ig_identity (50_dba.sql).
 *
 * Every function pins search_path = pg_catalog, pg_temp and qualifies the
 * names it uses; dynamic SQL takes identifiers through format('%I') or
 * regclass and values only as parameters.
 */

\echo Use "CREATE EXTENSION ig_identity" to load this file. \quit

