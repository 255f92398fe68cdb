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
 * commit and fire there as whoever commits (and PostgreSQL refuses to queue
 * them inside a restricted operation).  Inside the owner section, before
 * the statement, SET CONSTRAINTS makes IMMEDIATE exactly the deferrable
 * constraints whose triggers are on the table and its partitions (never
 * ALL: the caller's other pending events must keep waiting for its commit
 * and fire with its rights, not be checked here, nor fire as the owner).
 * The statement's events of those constraints therefore fire at its end,
 * as the owner; a second SET CONSTRAINTS ... IMMEDIATE fires any the
 * owner's code deferred meanwhile, still inside; then the INITIALLY
 * DEFERRED ones are set back to DEFERRED.  A deferred event of any other
 * constraint the statement would queue is refused by PostgreSQL (restricted
 * operation), so nothing the statement queued is left to fire later as
 * someone else.  SET CONSTRAINTS names constraints by schema and name: a
 * constraint sharing its name with one outside that set is refused rather
 * than changed with it.  Not known here: whether the caller had itself run
 * SET CONSTRAINTS on those constraints earlier in the transaction; they end
 * in their declared mode (README, Security notes).
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
#include "lib/stringinfo.h"
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

/* The deferrable constraints that fire on `rel` and its partitions, as
 * comma-separated qualified names: all of them, and the INITIALLY DEFERRED
 * ones (each NULL when there are none).  Catalog reads only. */
struct Deferrable {
    char *all;
    char *initially_deferred;
};

Deferrable deferrable_constraints(Oid rel, MemoryContext out_cxt)
{
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    Oid argtype = OIDOID;
    Datum arg = ObjectIdGetDatum(rel);
    const int rc = SPI_execute_with_args(
        "WITH RECURSIVE tree(relid) AS ("
        "    SELECT $1"
        "    UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i, tree t"
        "           WHERE i.inhparent OPERATOR(pg_catalog.=) t.relid),"
        " k AS ("
        "    SELECT DISTINCT c.oid, c.connamespace, c.conname, c.condeferred"
        "      FROM pg_catalog.pg_trigger g, pg_catalog.pg_constraint c"
        "     WHERE c.oid OPERATOR(pg_catalog.=) g.tgconstraint AND g.tgdeferrable"
        "       AND g.tgrelid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT t.relid FROM tree t)))"
        " SELECT pg_catalog.format('%I.%I', n.nspname, k.conname), k.condeferred,"
        "        EXISTS (SELECT 1 FROM pg_catalog.pg_constraint o"
        "                 WHERE o.connamespace OPERATOR(pg_catalog.=) k.connamespace"
        "                   AND o.conname OPERATOR(pg_catalog.=) k.conname"
        "                   AND NOT o.oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT k2.oid FROM k k2)))"
        "   FROM k, pg_catalog.pg_namespace n"
        "  WHERE n.oid OPERATOR(pg_catalog.=) k.connamespace"
        "  ORDER BY 1",
        1, &argtype, &arg, NULL, true, 0);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "reading the deferrable constraints failed: %s", SPI_result_code_string(rc));
    MemoryContext spi_cxt = MemoryContextSwitchTo(out_cxt);
    StringInfoData all, deferred;
    initStringInfo(&all);
    initStringInfo(&deferred);
    for (uint64 i = 0; i < SPI_processed; i++) {
        char *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
        bool isnull;
        const bool initially_deferred =
            DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
        const bool shared = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull));
        if (shared)
            ereport(ERROR,
                    (errcode(ERRCODE_DUPLICATE_OBJECT),
                     errmsg("cannot repair %s: constraint %s shares its name with a constraint of another table",
                            get_rel_name(rel), name),
                     errdetail("The repair makes the table's deferrable constraints IMMEDIATE with SET CONSTRAINTS, "
                               "which names constraints by schema and name and would change the other one too."),
                     errhint("Rename one of them with ALTER TABLE ... RENAME CONSTRAINT, then run the repair again.")));
        /* the same name twice (a constraint cloned to each partition) is
         * one entry: the query is ordered by name */
        if (i > 0 && strcmp(name, SPI_getvalue(SPI_tuptable->vals[i - 1], SPI_tuptable->tupdesc, 1)) == 0)
            continue;
        appendStringInfo(&all, "%s%s", all.len > 0 ? ", " : "", name);
        if (initially_deferred)
            appendStringInfo(&deferred, "%s%s", deferred.len > 0 ? ", " : "", name);
    }
    MemoryContextSwitchTo(spi_cxt);
    SPI_finish();
    return Deferrable{all.len > 0 ? all.data : nullptr, deferred.len > 0 ? deferred.data : nullptr};
}

void set_constraints(const char *names, const char *mode)
{
    if (names == nullptr)
        return;
    char *sql = psprintf("SET CONSTRAINTS %s %s", names, mode);
    if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
        elog(ERROR, "SET CONSTRAINTS failed");
    pfree(sql);
}

/* Runs sql ($1 = arg when given) and returns the first column of its rows,
 * which must be jsonb, as a jsonb[] in `out_cxt` (NULLs skipped). */
Datum run_statement(const char *sql, Datum arg, bool arg_null, const Deferrable &dc, MemoryContext out_cxt)
{
    const int guc_level = NewGUCNestLevel();
    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    /* the statement's own events of these constraints fire at its end */
    set_constraints(dc.all, "IMMEDIATE");
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
     * any the owner's code set DEFERRED meanwhile fire here, still as the
     * owner; then the declared modes are back */
    set_constraints(dc.all, "IMMEDIATE");
    set_constraints(dc.initially_deferred, "DEFERRED");
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
    const Deferrable dc = pg_call([&] { return deferrable_constraints(rel, out_cxt); });
    AsUser as_owner(owner, SECURITY_RESTRICTED_OPERATION);
    return pg_call([&] { return run_statement(sql, arg, arg_null, dc, out_cxt); });
}
