-- install_fresh: CREATE EXTENSION on an empty database creates the three
-- inbox tables with every constraint, as ordinary tables the extension does
-- not own; its private state is owned, dumped and closed to PUBLIC; and a
-- second repair has nothing to do.
\set SHOW_CONTEXT never
\set regress_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS igid_fresh;
RESET client_min_messages;
CREATE DATABASE igid_fresh;
\c igid_fresh

CREATE EXTENSION ig_identity;

-- Every column of the inbox tables, with NOT NULL and defaults.
SELECT c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null, pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS "default"
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
 ORDER BY c.relname, a.attnum;

-- Keys and checks: the identity cache's key carries the name the app knows.
SELECT conrelid::regclass AS "table", conname, contype, pg_catalog.pg_get_constraintdef(oid) AS definition
  FROM pg_catalog.pg_constraint
 WHERE connamespace = 'public'::regnamespace
 ORDER BY conrelid::regclass::text COLLATE "C", conname;

SELECT tablename, indexname, indexdef
  FROM pg_catalog.pg_indexes
 WHERE schemaname = 'public'
 ORDER BY 1, 2;

-- No sequence in the inbox tables: a sequence created here would stay an
-- extension member.
SELECT count(*) AS sequences_in_public
  FROM pg_catalog.pg_class WHERE relkind = 'S' AND relnamespace = 'public'::regnamespace;

-- Inbox tables: not members. Private tables and their identity sequences:
-- members, and marked for pg_dump.
SELECT c.oid::regclass AS relation, c.relkind,
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                  AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = e.oid
                  AND d.deptype = 'e') AS member,
       c.oid = ANY (e.extconfig) AS config_dumped
  FROM pg_catalog.pg_class c, pg_catalog.pg_extension e
 WHERE e.extname = 'ig_identity'
   AND c.relnamespace IN ('public'::regnamespace, 'ig_identity'::regnamespace)
   AND c.relkind IN ('r', 'S')
 ORDER BY c.oid::regclass::text COLLATE "C";

-- Nothing that belongs to an inbox table (index, constraint, row type) is a
-- member either.
SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS inbox_object_in_extension
  FROM pg_catalog.pg_depend d
 WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'ig_identity')
   AND d.deptype = 'e'
   AND pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) LIKE '%instagram%';

-- PUBLIC has no privilege on schema ig_identity nor on anything in it.
SELECT pg_catalog.has_schema_privilege('public', 'ig_identity', 'USAGE') AS public_usage,
       pg_catalog.has_schema_privilege('public', 'ig_identity', 'CREATE') AS public_create;
SELECT c.oid::regclass AS relation, a.privilege_type
  FROM pg_catalog.pg_class c,
       pg_catalog.aclexplode(COALESCE(c.relacl, pg_catalog.acldefault('r', c.relowner))) a
 WHERE c.relnamespace = 'ig_identity'::regnamespace AND a.grantee = 0;

SELECT * FROM ig_identity_check();

-- The run history keeps the newest 1000 runs, whoever inserts.
INSERT INTO ig_identity.refresh_runs (source, started_at)
SELECT 'manual', '2025-07-28 00:00:00+00'::timestamptz + i * interval '1 minute'
  FROM generate_series(1, 1003) i;
INSERT INTO ig_identity.refresh_runs (source, started_at) VALUES ('worker', '2025-07-29 00:00:00+00');
SELECT count(*), min(id), max(id) FROM ig_identity.refresh_runs;

-- A second run finds everything in place.
SELECT * FROM ig_identity_repair();

-- The extension can live in another schema, even one whose name needs
-- quoting: the inbox tables follow it.  While the old ones are still in
-- public it refuses (a second, empty set would be made); once they are gone
-- it creates them in its schema.
DROP EXTENSION ig_identity;
CREATE SCHEMA "Inbox App";
CREATE EXTENSION ig_identity SCHEMA "Inbox App";
DROP TABLE public.instagram_user_cache, public.instagram_messages, public.instagram_conversations;
CREATE EXTENSION ig_identity SCHEMA "Inbox App";
SELECT n.nspname, c.relname
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname LIKE 'instagram%' AND c.relkind = 'r'
 ORDER BY 1, 2;
SELECT * FROM "Inbox App".ig_identity_check();
SELECT * FROM "Inbox App".ig_identity_repair();

\c :regress_db
DROP DATABASE igid_fresh;
