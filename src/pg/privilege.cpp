/*
 * privilege.cpp — switching to the extension owner for private-table work
 * (see privilege.h).
 */
#include "pg/privilege.h"
#include "pg/boundary.h"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
}

namespace igid::pg {

struct ExtensionRow {
    Oid owner;
    Oid schema;
};

/* Reads pg_extension's row for ig_identity (its owner and schema); raises a
 * clear error if the extension is not installed in this database. */
static ExtensionRow lookup_extension()
{
    Oid ext_oid = get_extension_oid("ig_identity", true);
    if (!OidIsValid(ext_oid))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("extension \"ig_identity\" is not installed in this database"),
                        errhint("Run CREATE EXTENSION ig_identity.")));

    Relation rel = table_open(ExtensionRelationId, AccessShareLock);
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(ext_oid));
    SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
    HeapTuple tup = systable_getnext(scan);
    ExtensionRow ext{InvalidOid, InvalidOid};
    if (HeapTupleIsValid(tup)) {
        ext.owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
        ext.schema = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    if (!OidIsValid(ext.owner))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("could not find the owner of extension \"ig_identity\"")));
    return ext;
}

static Oid lookup_extension_owner()
{
    return lookup_extension().owner;
}

Oid extension_owner()
{
    return pg_call([] { return lookup_extension_owner(); });
}

AsUser::AsUser(Oid user, int sec_flags)
{
    GetUserIdAndSecContext(&saved_user_, &saved_sec_context_);
    SetUserIdAndSecContext(user, saved_sec_context_ | SECURITY_LOCAL_USERID_CHANGE | sec_flags);
}

AsUser::~AsUser()
{
    SetUserIdAndSecContext(saved_user_, saved_sec_context_);
}

AsExtensionOwner::AsExtensionOwner() : AsUser(extension_owner(), 0) {}

/* Refuses an inbox table with inheritance children, and a partitioned one
 * with a partition another role owns.  A read of the parent reads them too,
 * with the parent owner's rights (their index expressions, policies and
 * triggers would run as that owner), and rows in a child are not told apart
 * by ctid or by the parent's unique keys. */
static void check_inbox_tree(Oid rel, const char *relname, Oid nsp, Oid owner, char relkind)
{
    List *tree = find_all_inheritors(rel, AccessShareLock, NULL);
    ListCell *lc;
    foreach (lc, tree) {
        const Oid child = lfirst_oid(lc);
        if (child == rel)
            continue;
        if (relkind != RELKIND_PARTITIONED_TABLE || !get_rel_relispartition(child))
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("inbox table \"%s.%s\" has inheritance children", get_namespace_name(nsp), relname),
                            errdetail("Table \"%s\" inherits from it; ig_identity reads and writes only plain "
                                      "tables and declaratively partitioned ones.",
                                      get_rel_name(child)),
                            errhint("Detach the child with ALTER TABLE ... NO INHERIT, or use declarative partitioning.")));
        HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(child));
        if (!HeapTupleIsValid(tup))
            continue; /* dropped meanwhile */
        const Oid child_owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
        ReleaseSysCache(tup);
        if (child_owner != owner)
            ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                            errmsg("partition \"%s\" of inbox table \"%s.%s\" has another owner",
                                   get_rel_name(child), get_namespace_name(nsp), relname),
                            errdetail("ig_identity works on a partitioned table as its owner, so every partition "
                                      "must have that owner."),
                            errhint("Run ALTER TABLE ... OWNER TO the partitioned table's owner.")));
    }
}

/* The owner of inbox table `relname` in the extension's schema. */
static Oid lookup_inbox_owner(const char *relname)
{
    Oid nsp = lookup_extension().schema;
    Oid rel = get_relname_relid(relname, nsp);
    if (!OidIsValid(rel))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("inbox table \"%s.%s\" does not exist", get_namespace_name(nsp), relname),
                        errhint("Run SELECT * FROM ig_identity_repair() to create the missing inbox tables.")));
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(rel));
    if (!HeapTupleIsValid(tup))
        elog(ERROR, "cache lookup failed for relation %u", rel);
    Oid owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
    char relkind = ((Form_pg_class) GETSTRUCT(tup))->relkind;
    ReleaseSysCache(tup);
    if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("inbox relation \"%s.%s\" is not a table", get_namespace_name(nsp), relname),
                        errdetail("ig_identity writes only to plain or partitioned tables."),
                        errhint("Restore the table, or run SELECT * FROM ig_identity_repair().")));
    check_inbox_tree(rel, relname, nsp, owner, relkind);
    return owner;
}

static bool lookup_inbox_partitioned(const char *relname)
{
    Oid rel = get_relname_relid(relname, lookup_extension().schema);
    return OidIsValid(rel) && get_rel_relkind(rel) == RELKIND_PARTITIONED_TABLE;
}

bool inbox_is_partitioned(const char *relname)
{
    return pg_call([&] { return lookup_inbox_partitioned(relname); });
}

AsInboxOwner::AsInboxOwner(const char *relname)
    : AsUser(pg_call([&] { return lookup_inbox_owner(relname); }), SECURITY_RESTRICTED_OPERATION)
{
}

} // namespace igid::pg
