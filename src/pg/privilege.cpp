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
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
}

namespace igid::pg {

/* Reads pg_extension.extowner; raises a clear error if the extension is not
 * installed in this database. */
static Oid lookup_extension_owner()
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
    Oid owner = InvalidOid;
    if (HeapTupleIsValid(tup))
        owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    if (!OidIsValid(owner))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("could not find the owner of extension \"ig_identity\"")));
    return owner;
}

Oid extension_owner()
{
    return pg_call([] { return lookup_extension_owner(); });
}

AsExtensionOwner::AsExtensionOwner()
{
    Oid owner = extension_owner();
    GetUserIdAndSecContext(&saved_user_, &saved_sec_context_);
    SetUserIdAndSecContext(owner, saved_sec_context_ | SECURITY_LOCAL_USERID_CHANGE);
}

AsExtensionOwner::~AsExtensionOwner()
{
    SetUserIdAndSecContext(saved_user_, saved_sec_context_);
}

} // namespace igid::pg
