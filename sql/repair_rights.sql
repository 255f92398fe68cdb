-- repair_rights (issue 12): CREATE EXTENSION repairs the app's legacy
-- inbox tables; every statement of that repair that touches them runs as
-- the table's owner, inside a security-restricted operation
-- (ig_identity.as_owner), so that the app's triggers, deferred constraint
-- triggers, defaults and index expressions never run with the installer's
-- superuser rights.
\set SHOW_CONTEXT never
\getenv abs_srcdir PG_ABS_SRCDIR
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_repair_rights;
DROP ROLE IF EXISTS regress_igid_repair_owner;
RESET client_min_messages;
CREATE DATABASE igid_repair_rights;
\c igid_repair_rights
\set ECHO none
\o /dev/null
\i :abs_srcdir/test/fixtures/legacy_seed.sql
\o
\set ECHO all
CREATE ROLE regress_igid_repair_owner;   -- the app's role, not a superuser
ALTER TABLE instagram_user_cache OWNER TO regress_igid_repair_owner;
ALTER TABLE instagram_conversations OWNER TO regress_igid_repair_owner;
ALTER TABLE instagram_messages OWNER TO regress_igid_repair_owner;
GRANT CREATE ON SCHEMA public TO regress_igid_repair_owner;

-- The app's own trigger, created by the app's role on its own tables; it
-- records whom it ran as.
SET ROLE regress_igid_repair_owner;
CREATE TABLE repair_log (tbl text, op text, ran_as text, is_superuser boolean);
CREATE FUNCTION app_audit() RETURNS trigger LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    INSERT INTO repair_log
    SELECT TG_TABLE_NAME, TG_OP, current_user,
           (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit BEFORE INSERT OR UPDATE OR DELETE ON instagram_user_cache
    FOR EACH ROW EXECUTE FUNCTION app_audit();
CREATE TRIGGER audit BEFORE INSERT OR UPDATE OR DELETE ON instagram_messages
    FOR EACH ROW EXECUTE FUNCTION app_audit();
CREATE TRIGGER audit BEFORE INSERT OR UPDATE OR DELETE ON instagram_conversations
    FOR EACH ROW EXECUTE FUNCTION app_audit();
-- A deferred one would otherwise fire at commit, as whoever commits.
CREATE CONSTRAINT TRIGGER audit_deferred AFTER UPDATE OR DELETE ON instagram_user_cache
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION app_audit();
RESET ROLE;

-- A superuser installs the extension: the repair runs.
CREATE EXTENSION ig_identity;

-- The repair did fire the app's triggers, the deferred one too ...
SELECT count(*) > 0 AS triggers_fired FROM repair_log;
SELECT count(*) > 0 AS deferred_fired FROM repair_log WHERE op IN ('UPDATE', 'DELETE') AND tbl = 'instagram_user_cache';
-- ... and each ran as the table's owner, never as a superuser.
SELECT DISTINCT ran_as, is_superuser FROM repair_log ORDER BY 1;

-- The repair still did everything it does: quarantine, NOT NULL, unique index.
SELECT count(*) > 0 AS quarantined FROM ig_identity.quarantine;
SELECT attnotnull AS ig_account_id_not_null FROM pg_catalog.pg_attribute
 WHERE attrelid = 'instagram_user_cache'::regclass AND attname = 'ig_account_id';
SELECT count(*) > 0 AS has_unique_index FROM pg_catalog.pg_index
 WHERE indrelid = 'instagram_user_cache'::regclass AND indisunique AND NOT indisprimary;


-- ig_identity_repair() called again later, in a transaction of the
-- installer, does the same: nothing of the app's runs as the superuser.
SET ROLE regress_igid_repair_owner;
ALTER TABLE instagram_user_cache DROP CONSTRAINT instagram_user_cache_ig_account_id_ig_user_id_unique;
INSERT INTO instagram_user_cache (ig_account_id, ig_user_id, username)
VALUES ('17841400000000001', '9990001', NULL), ('17841400000000001', '9990001', 'dup');
TRUNCATE repair_log;
RESET ROLE;
BEGIN;
SELECT * FROM ig_identity_repair();
COMMIT;
SELECT DISTINCT ran_as, is_superuser FROM repair_log ORDER BY 1;

-- A role that cannot act as the table's owner cannot use the owner path.
CREATE ROLE regress_igid_repair_other;
GRANT USAGE ON SCHEMA ig_identity TO regress_igid_repair_other;
GRANT EXECUTE ON FUNCTION ig_identity.as_owner(regclass, text, jsonb) TO regress_igid_repair_other;
SET ROLE regress_igid_repair_other;
SELECT ig_identity.as_owner('instagram_user_cache', 'SELECT NULL::jsonb');
RESET ROLE;
DROP OWNED BY regress_igid_repair_other;
DROP ROLE regress_igid_repair_other;

\c contrib_regression
DROP DATABASE igid_repair_rights;
DROP ROLE regress_igid_repair_owner;
