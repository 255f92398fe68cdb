/* ------------------------------------------------------------------------
 * A DBA's first hour (issue 16): plain grants for the app and monitoring
 * roles, connecting an account without the token in any statement, who owns
 * the inbox tables the extension creates, and app tables in another schema.
 * ------------------------------------------------------------------------ */

-- The rows the repair set aside are the app's data: readable by the roles
-- granted SELECT on this view (the README's GRANT block grants it to the app
-- role and the monitoring role), never by PUBLIC.
CREATE VIEW @extschema@.ig_identity_quarantine AS
SELECT q.id, q.source_table, q.reason, q.row_data, q.quarantined_at
  FROM ig_identity.quarantine q;
REVOKE ALL ON @extschema@.ig_identity_quarantine FROM PUBLIC;
COMMENT ON VIEW @extschema@.ig_identity_quarantine IS
    'Rows the repair set aside, each with its reason (grant SELECT to the roles that review them)';

-- The check counts the quarantine through the view: a role granted SELECT
-- on it (and reading the cache) runs the check without any access to schema
-- ig_identity.
CREATE OR REPLACE FUNCTION @extschema@.ig_identity_check(
    OUT total_rows        bigint,
    OUT null_account_rows bigint,
    OUT distinct_pairs    bigint,
    OUT quarantined_rows  bigint)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
-- Two statements (one snapshot, the function being STABLE): Citus cannot
-- push a subquery on a local table down next to the aggregates of a
-- distributed cache.
BEGIN
    SELECT pg_catalog.count(*),
           pg_catalog.count(*) FILTER (WHERE c.ig_account_id IS NULL),
           pg_catalog.count(DISTINCT (c.ig_account_id, c.ig_user_id))
      INTO total_rows, null_account_rows, distinct_pairs
      FROM @extschema@.instagram_user_cache c;
    SELECT pg_catalog.count(*) INTO quarantined_rows FROM @extschema@.ig_identity_quarantine;
END
$fn$;

/*
 * Connects an account with the token read from the caller's own temporary
 * table pg_temp.ig_identity_token_stage (one row, column access_token),
 * filled by COPY ... FROM STDIN: COPY's data is never logged, and the token
 * is then in no statement, no bind parameter and no plan (it reaches
 * ig_connect_account through a sub-select, never as a constant).  The
 * staged row is deleted once the account is connected.  SECURITY INVOKER:
 * the caller reads its own table and needs EXECUTE on the five-argument
 * ig_connect_account as well; the stored app secret stays, as with that
 * form.
 */
CREATE FUNCTION @extschema@.ig_connect_account_staged(
    location_id   text,
    ig_account_id text,
    self_igsid    text,
    api_host      text DEFAULT 'graph.facebook.com')
RETURNS ig_identity.connected_account
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_stage  regclass := pg_catalog.to_regclass('pg_temp.ig_identity_token_stage');
    v_rows   bigint;
    -- record, not ig_identity.connected_account: the caller cannot name schema ig_identity
    v_result record;
BEGIN
    IF v_stage IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'undefined_table',
            MESSAGE = 'no staged token: pg_temp.ig_identity_token_stage does not exist in this session',
            HINT    = 'CREATE TEMP TABLE ig_identity_token_stage (access_token text), fill it with COPY ig_identity_token_stage FROM STDIN, then call ig_connect_account_staged in the same session.';
    END IF;
    SELECT pg_catalog.count(*) INTO v_rows FROM pg_temp.ig_identity_token_stage;
    IF v_rows OPERATOR(pg_catalog.<>) 1 THEN
        RAISE EXCEPTION USING
            ERRCODE = 'cardinality_violation',
            MESSAGE = 'pg_temp.ig_identity_token_stage must hold exactly one token',
            DETAIL  = pg_catalog.format('It holds %s rows.', v_rows),
            HINT    = 'DELETE FROM ig_identity_token_stage, then COPY one token into it.';
    END IF;

    SELECT * INTO v_result
      FROM @extschema@.ig_connect_account(
                ig_connect_account_staged.location_id,
                ig_connect_account_staged.ig_account_id,
                ig_connect_account_staged.self_igsid,
                (SELECT s.access_token FROM pg_temp.ig_identity_token_stage s),
                ig_connect_account_staged.api_host);

    DELETE FROM pg_temp.ig_identity_token_stage;
    RETURN v_result;
END
$fn$;
REVOKE ALL ON FUNCTION @extschema@.ig_connect_account_staged(text, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.ig_connect_account_staged(text, text, text, text) IS
    'ig_connect_account with the token read from pg_temp.ig_identity_token_stage (filled by COPY FROM STDIN, never logged)';

/*
 * An inbox table the extension creates belongs to the role named by
 * ig_identity.inbox_owner, else to the database's owner: not to the
 * superuser running CREATE EXTENSION, whose rights the app would otherwise
 * need.  The repair calls this right after creating each absent table and
 * its indexes, before any row is written, so the rest of the repair already
 * runs as the new owner.
 */
CREATE OR REPLACE FUNCTION ig_identity.detach_from_extension(p_rel regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_named  text := NULLIF(pg_catalog.current_setting('ig_identity.inbox_owner', true), '');
    v_target oid;
    v_owner  oid;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                  AND d.objid = p_rel AND d.objsubid = 0
                  AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
                  AND d.deptype = 'e') THEN
        EXECUTE pg_catalog.format('ALTER EXTENSION ig_identity DROP TABLE %s', p_rel);
    END IF;

    IF v_named IS NOT NULL THEN
        v_target := pg_catalog.to_regrole(pg_catalog.quote_ident(v_named));
        IF v_target IS NULL THEN
            RAISE EXCEPTION USING
                ERRCODE = 'undefined_object',
                MESSAGE = pg_catalog.format('ig_identity.inbox_owner names role "%s", which does not exist', v_named),
                HINT    = 'Create the role, or SET ig_identity.inbox_owner = '''' to give the inbox tables to the database''s owner.';
        END IF;
    ELSE
        SELECT d.datdba INTO v_target FROM pg_catalog.pg_database d
         WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database();
    END IF;
    SELECT c.relowner INTO v_owner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) p_rel;
    IF v_owner OPERATOR(pg_catalog.<>) v_target THEN
        EXECUTE pg_catalog.format('ALTER TABLE %s OWNER TO %I', p_rel,
                                  (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) v_target));
    END IF;
END
$fn$;

-- App tables of these names in another schema than the one being installed
-- into (CREATE EXTENSION hides the caller's search_path from this script, so
-- every schema counts): the extension would create a second, empty set here
-- and leave the app's rows unrepaired.  Refuse, naming the schema to
-- install into.  Not during a restore (row_security off), which leaves the
-- tables to the dump.
DO $do$
DECLARE
    v_nsp   oid := '@extschema@'::pg_catalog.regnamespace;
    v_other text;
    v_other_owner text;
    v_names text;
BEGIN
    IF pg_catalog.current_setting('row_security') OPERATOR(pg_catalog.=) 'off' THEN
        RETURN;
    END IF;
    -- the hint names a schema only when one schema holds them, and says
    -- whose it is: the installer checks that role is the app's before
    -- putting the app's data there
    SELECT CASE WHEN pg_catalog.count(DISTINCT n.oid) OPERATOR(pg_catalog.=) 1
                THEN pg_catalog.min(n.nspname::text) END,
           pg_catalog.min(pg_catalog.pg_get_userbyid(n.nspowner)::text),
           pg_catalog.string_agg(pg_catalog.format('%I.%I', n.nspname, c.relname), ', ' ORDER BY n.nspname, c.relname)
      INTO v_other, v_other_owner, v_names
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.relname OPERATOR(pg_catalog.=) ANY (ARRAY['instagram_user_cache', 'instagram_conversations',
                                                        'instagram_messages']::name[])
       AND c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::"char"[])
       AND c.relnamespace OPERATOR(pg_catalog.<>) v_nsp
       AND n.nspname::text NOT LIKE 'pg\_temp\_%' AND n.nspname::text NOT LIKE 'pg\_toast%'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class h
                        WHERE h.relnamespace OPERATOR(pg_catalog.=) v_nsp
                          AND h.relname OPERATOR(pg_catalog.=) c.relname);
    IF v_names IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = pg_catalog.format('inbox tables exist in another schema than %s: %s',
                                        '@extschema@'::pg_catalog.regnamespace, v_names),
            DETAIL  = 'ig_identity repairs the inbox tables of the schema it is installed in; here it would create a second, empty set and leave those rows as they are.',
            HINT    = CASE WHEN v_other IS NOT NULL
                           THEN pg_catalog.format('Install it where the app''s tables are: CREATE EXTENSION ig_identity SCHEMA %I (that schema belongs to role %s: install there only if it is the app''s)', v_other, v_other_owner)
                           ELSE 'Install it in the schema that holds the app''s tables (CREATE EXTENSION ig_identity SCHEMA ...), after checking who owns it.' END;
    END IF;
END
$do$;

/*
 * DROP EXTENSION keeps the quarantine.  The rows the repair set aside are
 * the app's data, but they live in ig_identity.quarantine, which goes with
 * the extension.  At the start of DROP EXTENSION (before anything is
 * dropped) this copies them into @extschema@.ig_identity_quarantine_kept, an
 * ordinary table of the app (never an extension member, so the drop leaves
 * it), created on first use and owned by the owner of instagram_user_cache
 * (else the database's owner).  A row already kept is not copied twice.
 * The rows are written as that owner in a security-restricted operation
 * (ig_identity.as_owner), so the app's code on the kept table never runs
 * with the dropping superuser's rights.  ddl_command_start does not say
 * which extension is being dropped: any DROP EXTENSION by a superuser copies
 * (the copy is idempotent); other roles cannot drop ig_identity and pass.
 */
CREATE FUNCTION ig_identity.keep_quarantine()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_nsp     oid := '@extschema@'::pg_catalog.regnamespace;
    v_kept    regclass;
    v_owner   oid;
    v_rows    jsonb;
    v_skipped bigint;
BEGIN
    IF NOT COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r
                      WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER), false) THEN
        RETURN;
    END IF;
    -- Whatever goes wrong here is a WARNING: this runs for every extension's
    -- drop, and must never stop one (nor hand rows to the wrong role).
    BEGIN
        -- The kept table belongs to the cache's owner (else the database's).
        SELECT c.relowner INTO v_owner FROM pg_catalog.pg_class c
         WHERE c.relnamespace OPERATOR(pg_catalog.=) v_nsp
           AND c.relname OPERATOR(pg_catalog.=) 'instagram_user_cache';
        IF v_owner IS NULL THEN
            SELECT d.datdba INTO v_owner FROM pg_catalog.pg_database d
             WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database();
        END IF;
        -- Only rows of tables that owner owns: with mixed owners, neither
        -- owner may read the other's rows (37_mixed_owners.sql).
        SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(q) ORDER BY q.id)
                   FILTER (WHERE o.relowner OPERATOR(pg_catalog.=) v_owner),
               pg_catalog.count(*) FILTER (WHERE o.relowner IS DISTINCT FROM v_owner)
          INTO v_rows, v_skipped
          FROM ig_identity.quarantine q
          LEFT JOIN pg_catalog.pg_class o ON o.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(q.source_table);
        IF v_skipped OPERATOR(pg_catalog.>) 0 THEN
            RAISE WARNING USING
                MESSAGE = pg_catalog.format('%s quarantined rows of tables with another owner than instagram_user_cache''s are not kept', v_skipped),
                HINT    = 'Copy them from ig_identity.quarantine before dropping ig_identity if they are needed.';
        END IF;
        IF v_rows IS NULL THEN
            RETURN;
        END IF;

        SELECT c.oid INTO v_kept FROM pg_catalog.pg_class c
         WHERE c.relnamespace OPERATOR(pg_catalog.=) v_nsp
           AND c.relname OPERATOR(pg_catalog.=) 'ig_identity_quarantine_kept';
        IF v_kept IS NOT NULL THEN
            -- someone else's object of that name gets nothing
            IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                            WHERE c.oid OPERATOR(pg_catalog.=) v_kept
                              AND c.relkind OPERATOR(pg_catalog.=) 'r'
                              AND c.relowner OPERATOR(pg_catalog.=) v_owner) THEN
                RAISE WARNING USING
                    MESSAGE = pg_catalog.format('the quarantine is not kept: %s is not a table owned by %s',
                                                v_kept, pg_catalog.pg_get_userbyid(v_owner)),
                    HINT    = 'Drop or rename that object, or copy ig_identity.quarantine before dropping ig_identity.';
                RETURN;
            END IF;
        ELSE
            EXECUTE pg_catalog.format(
                'CREATE TABLE %I.ig_identity_quarantine_kept (
                     quarantine_id  bigint NOT NULL,
                     source_table   text NOT NULL,
                     reason         text NOT NULL,
                     row_data       jsonb NOT NULL,
                     quarantined_at timestamptz NOT NULL,
                     kept_at        timestamptz NOT NULL DEFAULT pg_catalog.now())',
                (SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid OPERATOR(pg_catalog.=) v_nsp));
            SELECT c.oid INTO v_kept FROM pg_catalog.pg_class c
             WHERE c.relnamespace OPERATOR(pg_catalog.=) v_nsp
               AND c.relname OPERATOR(pg_catalog.=) 'ig_identity_quarantine_kept';
            EXECUTE pg_catalog.format('ALTER TABLE %s OWNER TO %I', v_kept, pg_catalog.pg_get_userbyid(v_owner));
        END IF;

        PERFORM ig_identity.as_owner(v_kept, pg_catalog.format(
            'INSERT INTO %s AS k (quarantine_id, source_table, reason, row_data, quarantined_at)
             SELECT (r.value OPERATOR(pg_catalog.->>) ''id'')::pg_catalog.int8,
                    r.value OPERATOR(pg_catalog.->>) ''source_table'',
                    r.value OPERATOR(pg_catalog.->>) ''reason'',
                    r.value OPERATOR(pg_catalog.->) ''row_data'',
                    (r.value OPERATOR(pg_catalog.->>) ''quarantined_at'')::pg_catalog.timestamptz
               FROM pg_catalog.jsonb_array_elements($1) AS r
              WHERE NOT EXISTS (
                    SELECT 1 FROM %s AS o
                     WHERE o.source_table OPERATOR(pg_catalog.=) (r.value OPERATOR(pg_catalog.->>) ''source_table'')
                       AND o.reason OPERATOR(pg_catalog.=) (r.value OPERATOR(pg_catalog.->>) ''reason'')
                       AND o.row_data OPERATOR(pg_catalog.=) (r.value OPERATOR(pg_catalog.->) ''row_data'')
                       AND o.quarantined_at OPERATOR(pg_catalog.=)
                           (r.value OPERATOR(pg_catalog.->>) ''quarantined_at'')::pg_catalog.timestamptz)',
            v_kept, v_kept), v_rows);
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING USING
            MESSAGE = 'the quarantine could not be kept: ' OPERATOR(pg_catalog.||) SQLERRM,
            HINT    = 'Copy ig_identity.quarantine before dropping ig_identity if its rows are needed.';
    END;
END
$fn$;

CREATE EVENT TRIGGER ig_identity_keep_quarantine ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION')
    EXECUTE FUNCTION ig_identity.keep_quarantine();
REVOKE ALL ON FUNCTION ig_identity.keep_quarantine() FROM PUBLIC;

/*
 * One server log line per distinct cause of an account's failure: whenever
 * an account's last_error changes to a new text (a refused token, a
 * throttle, "Could not resolve host", a 5xx after the retries), whoever
 * recorded it (the worker, a SQL caller), the log says which account and
 * why; the same error again is not logged again.  The status view shows it
 * per account.  last_error never holds a token (the fetcher scrubs every
 * error text).
 */
CREATE FUNCTION ig_identity.log_account_error()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF NEW.last_error IS NOT NULL AND NEW.last_error IS DISTINCT FROM OLD.last_error THEN
        RAISE LOG 'ig_identity: account % (location %) failed: %',
            NEW.ig_account_id, NEW.location_id,
            pg_catalog.left(NEW.last_error, 500) OPERATOR(pg_catalog.||)
            CASE WHEN NEW.last_error_code IS NULL THEN ''
                 ELSE pg_catalog.format(' (code %s)', NEW.last_error_code) END
            USING DETAIL = pg_catalog.format('The account is %s; see ig_identity_status.', NEW.status);
    END IF;
    RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION ig_identity.log_account_error() FROM PUBLIC;

CREATE TRIGGER accounts_log_error
    AFTER UPDATE OF last_error ON ig_identity.accounts
    FOR EACH ROW EXECUTE FUNCTION ig_identity.log_account_error();
