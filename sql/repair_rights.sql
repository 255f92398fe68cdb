-- repair_rights (KNOWN GAP, issue 12, not in test/regress_schedule yet):
-- CREATE EXTENSION repairs the app's legacy inbox tables; every statement
-- of that repair must run as the table's owner, inside a
-- security-restricted operation, so that the app's triggers, defaults and
-- index expressions never run with the installer's superuser rights.
-- Today src/sql/20_repair.sql runs them as the installer: this test fails
-- until the repair goes through the owner-rights path.
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
RESET ROLE;

-- A superuser installs the extension: the repair runs.
CREATE EXTENSION ig_identity;

-- The repair did fire the app's triggers ...
SELECT count(*) > 0 AS triggers_fired FROM repair_log;
-- ... and each ran as the table's owner, never as a superuser.
SELECT DISTINCT ran_as, is_superuser FROM repair_log ORDER BY 1;

-- The repair still did everything it does: quarantine, NOT NULL, unique index.
SELECT count(*) > 0 AS quarantined FROM ig_identity.quarantine;
SELECT attnotnull AS ig_account_id_not_null FROM pg_catalog.pg_attribute
 WHERE attrelid = 'instagram_user_cache'::regclass AND attname = 'ig_account_id';
SELECT count(*) > 0 AS has_unique_index FROM pg_catalog.pg_index
 WHERE indrelid = 'instagram_user_cache'::regclass AND indisunique AND NOT indisprimary;

\c contrib_regression
DROP DATABASE igid_repair_rights;
DROP ROLE regress_igid_repair_owner;
