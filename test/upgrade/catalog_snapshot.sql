-- catalog_snapshot.sql — everything CREATE EXTENSION ig_identity leaves in a
-- database, as sorted text lines, so that an updated database and a fresh
-- install of the same version can be compared with diff. Used by
-- test/t/014_upgrade.pl and scripts/upgrade_check.sh.
\pset format unaligned
\pset tuples_only on
\pset pager off
WITH ext AS (
    SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'ig_identity'
), members AS (
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_catalog.pg_depend d, ext
     WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.refobjid = ext.oid AND d.deptype = 'e'
), inbox AS (
    SELECT c.oid FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'public'::pg_catalog.regnamespace
       AND c.relname IN ('instagram_user_cache', 'instagram_conversations', 'instagram_messages')
), rels AS (
    SELECT m.objid AS oid FROM members m WHERE m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
    UNION SELECT oid FROM inbox
)
SELECT line FROM (
    -- the extension itself and its config-dump registrations
    SELECT 'extension ' || e.extversion || ' schema=' || e.extnamespace::pg_catalog.regnamespace
           || ' config=' || coalesce((SELECT pg_catalog.string_agg(c::pg_catalog.regclass::text || ':' || coalesce(e.extcondition[i], ''), ',' ORDER BY c::pg_catalog.regclass::text)
                                        FROM pg_catalog.unnest(e.extconfig) WITH ORDINALITY AS u(c, i)), '') AS line
      FROM pg_catalog.pg_extension e WHERE e.extname = 'ig_identity'
    -- every member object, by identity
    UNION ALL
    SELECT 'member ' || pg_catalog.pg_describe_object(classid, objid, objsubid) FROM members
    -- functions: full definition, owner, ACL, security, settings, comment
    UNION ALL
    SELECT 'function ' || p.oid::pg_catalog.regprocedure || E'\n'
           || pg_catalog.pg_get_functiondef(p.oid)
           || E'\n  owner=' || p.proowner::pg_catalog.regrole || ' acl=' || coalesce(p.proacl::text, 'default')
           || ' comment=' || coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '')
      FROM pg_catalog.pg_proc p JOIN members m ON m.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND m.objid = p.oid
     WHERE p.prokind <> 'a'
    -- relations: kind, owner, ACL, options, comment
    UNION ALL
    SELECT 'relation ' || c.oid::pg_catalog.regclass || ' kind=' || c.relkind::text || ' owner=' || c.relowner::pg_catalog.regrole
           || ' acl=' || coalesce(c.relacl::text, 'default') || ' options=' || coalesce(c.reloptions::text, '')
           || ' persistence=' || c.relpersistence::text || ' rls=' || c.relrowsecurity
           || ' comment=' || coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '')
      FROM pg_catalog.pg_class c JOIN rels r ON r.oid = c.oid
    -- columns, in order, with type, null-ness, default, statistics target, ACL
    UNION ALL
    SELECT 'column ' || a.attrelid::pg_catalog.regclass || '.' || a.attnum || ' ' || a.attname || ' '
           || pg_catalog.format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
           || ' stats=' || a.attstattarget || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text
           || ' acl=' || coalesce(a.attacl::text, 'default')
      FROM pg_catalog.pg_attribute a JOIN rels r ON r.oid = a.attrelid
      LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attnum > 0 AND NOT a.attisdropped
    -- constraints, indexes, triggers, views, policies, sequences
    UNION ALL
    SELECT 'constraint ' || co.conrelid::pg_catalog.regclass || ' ' || co.conname || ' ' || pg_catalog.pg_get_constraintdef(co.oid)
      FROM pg_catalog.pg_constraint co JOIN rels r ON r.oid = co.conrelid
    UNION ALL
    SELECT 'index ' || pg_catalog.pg_get_indexdef(i.indexrelid)
      FROM pg_catalog.pg_index i JOIN rels r ON r.oid = i.indrelid
    UNION ALL
    SELECT 'trigger ' || pg_catalog.pg_get_triggerdef(t.oid)
      FROM pg_catalog.pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'view ' || c.oid::pg_catalog.regclass || E'\n' || pg_catalog.pg_get_viewdef(c.oid)
      FROM pg_catalog.pg_class c JOIN rels r ON r.oid = c.oid WHERE c.relkind IN ('v', 'm')
    UNION ALL
    SELECT 'policy ' || p.polrelid::pg_catalog.regclass || ' ' || p.polname || ' ' || p.polcmd::text || ' '
           || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') || ' ' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')
      FROM pg_catalog.pg_policy p JOIN rels r ON r.oid = p.polrelid
    UNION ALL
    SELECT 'sequence ' || s.seqrelid::pg_catalog.regclass || ' ' || pg_catalog.format_type(s.seqtypid, NULL) || ' ' || s.seqstart
           || ' ' || s.seqincrement || ' ' || s.seqmin || ' ' || s.seqmax || ' ' || s.seqcache || ' ' || s.seqcycle
      FROM pg_catalog.pg_sequence s JOIN rels r ON r.oid = s.seqrelid
    -- types (composite and others): attributes
    UNION ALL
    SELECT 'type ' || t.oid::pg_catalog.regtype || ' ' || t.typtype::text || ' owner=' || t.typowner::pg_catalog.regrole
           || ' acl=' || coalesce(t.typacl::text, 'default')
      FROM pg_catalog.pg_type t JOIN members m ON m.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND m.objid = t.oid
    -- schemas the extension owns
    UNION ALL
    SELECT 'schema ' || n.nspname || ' owner=' || n.nspowner::pg_catalog.regrole || ' acl=' || coalesce(n.nspacl::text, 'default')
           || ' comment=' || coalesce(pg_catalog.obj_description(n.oid, 'pg_namespace'), '')
      FROM pg_catalog.pg_namespace n JOIN members m ON m.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND m.objid = n.oid
    -- the settings the library defines (reserved prefix) as this server sees them
    UNION ALL
    SELECT 'setting ' || name || ' context=' || context || ' vartype=' || vartype
      FROM pg_catalog.pg_settings WHERE name LIKE 'ig\_identity.%'
) s
ORDER BY line;
