/*
 * sql_as_owner.cpp — ig_identity.as_owner(rel, sql, arg): one statement of
 * the repair, run as the owner of the inbox table it works on, in a
 * security-restricted operation (see privilege.h).
 *
 * ig_identity_repair() (and so CREATE EXTENSION) is run by a superuser; the
 * app's triggers, defaults, constraints and index expressions on its legacy
 * tables must not run with those rights.  The repair therefore sends every
 * statement that reads or writes an inbox table through this function and
 * keeps for itself only what touches ig_identity's private tables (the
 * quarantine): the statement returns the rows it set aside as jsonb, and
 * the repair stores them.
 *
 * Deferred constraint triggers: their events would otherwise wait for the
 * commit and fire there as the superuser (and PostgreSQL refuses to queue
 * them inside a restricted operation).  SET CONSTRAINTS ALL IMMEDIATE runs
 * first as the caller (events the caller queued before fire with the
 * caller's rights), so the statement's own events fire at its end, inside
 * the owner section.  The transaction's constraints stay IMMEDIATE after.
 *
 * Only a role that can act as the table's owner may use it (a superuser, the
 * owner, a member of the owner role): it never gives rights the caller did
 * not have.  EXECUTE is closed to PUBLIC.
 */
#include "pg/boundary.h"
#include "pg/privilege.h"

extern "C" {
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

using namespace igid::pg;

namespace {

/* The owner of `rel`, after checking the caller may act as that role. */
Oid checked_owner(Oid rel)
{
    HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(rel));
    if (!HeapTupleIsValid(tup))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation with OID %u does not exist", rel)));
    const Oid owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
    ReleaseSysCache(tup);
    if (!has_privs_of_role(GetUserId(), owner))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("must be able to act as the owner of table %s", get_rel_name(rel)),
                        errdetail("ig_identity repairs an inbox table with its owner's rights."),
                        errhint("Run it as a superuser or as a member of the table's owner role.")));
    return owner;
}

void set_constraints_immediate()
{
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    if (SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0) != SPI_OK_UTILITY)
        elog(ERROR, "SET CONSTRAINTS ALL IMMEDIATE failed");
    SPI_finish();
}

/* Runs sql ($1 = arg when given) and returns the first column of its rows,
 * which must be jsonb, as a jsonb[] in `out_cxt` (NULLs skipped). */
Datum run_statement(const char *sql, Datum arg, bool arg_null, MemoryContext out_cxt)
{
    const int guc_level = NewGUCNestLevel();
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    Oid argtype = JSONBOID;
    char nulls = arg_null ? 'n' : ' ';
    const int rc = SPI_execute_with_args(sql, 1, &argtype, &arg, &nulls, false, 0);
    if (rc < 0)
        elog(ERROR, "repair statement failed: %s", SPI_result_code_string(rc));
    int n = 0;
    Datum *elems = nullptr;
    MemoryContext spi_cxt = MemoryContextSwitchTo(out_cxt);
    if (SPI_tuptable != NULL && SPI_processed > 0) {
        if (SPI_tuptable->tupdesc->natts < 1 || SPI_gettypeid(SPI_tuptable->tupdesc, 1) != JSONBOID)
            elog(ERROR, "repair statement must return jsonb");
        elems = (Datum *) palloc(sizeof(Datum) * SPI_processed);
        for (uint64 i = 0; i < SPI_processed; i++) {
            bool isnull;
            Datum d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
            if (!isnull)
                elems[n++] = PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
        }
    }
    ArrayType *result = construct_array(elems, n, JSONBOID, -1, false, TYPALIGN_INT);
    MemoryContextSwitchTo(spi_cxt);
    /* the statement's constraint triggers fired at its end, as the owner;
     * anything still pending (set DEFERRED by the owner's code) fires here */
    if (SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0) != SPI_OK_UTILITY)
        elog(ERROR, "SET CONSTRAINTS ALL IMMEDIATE failed");
    SPI_finish();
    AtEOXact_GUC(false, guc_level);
    return PointerGetDatum(result);
}

} // namespace

/*
 * ig_identity.as_owner(rel regclass, sql text, arg jsonb) RETURNS jsonb[]
 */
IGID_FUNCTION(ig_identity_as_owner)
{
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "ig_identity.as_owner needs a table and a statement");
    const Oid rel = PG_GETARG_OID(0);
    Datum sql_d = PG_GETARG_DATUM(1);
    Datum arg = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
    const bool arg_null = PG_ARGISNULL(2);
    MemoryContext out_cxt = CurrentMemoryContext;
    char *sql = pg_call([&] { return text_to_cstring(DatumGetTextPP(sql_d)); });
    const Oid owner = pg_call([&] { return checked_owner(rel); });
    pg_call([] { set_constraints_immediate(); });
    AsUser as_owner(owner, SECURITY_RESTRICTED_OPERATION);
    return pg_call([&] { return run_statement(sql, arg, arg_null, out_cxt); });
}
