/*
 * inbox.cpp — writes to the inbox tables as their owner (see inbox.h), and
 * the SQL entry point ig_identity.upsert_identities.
 */
#include "pg/inbox.h"
#include "pg/privilege.h"
#include "pg/test_hook.h"

extern "C" {
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
}

namespace igid::pg {

namespace {

/* The OID of an ig_identity function, resolved as the extension owner (the
 * table owner may have no USAGE on the schema). */
Oid function_oid(const char *signature)
{
    AsExtensionOwner owner;
    return pg_call([&] {
        return DatumGetObjectId(DirectFunctionCall1(regprocedurein, CStringGetDatum(signature)));
    });
}

/* Calls the function through fmgr as the owner of `relname`, in a
 * security-restricted operation; returns its non-NULL result.  As in
 * PostgreSQL's own restricted operations (index_build, VACUUM), setting
 * changes made by the owner's code (a trigger's set_config('search_path',
 * ..., false)) are local to the call: a new GUC nest level, rolled back
 * when the call returns, and by transaction abort when it raises. */
Datum call_as_owner_of(const char *relname, const char *signature, const std::vector<Param> &args)
{
    const Oid fn = function_oid(signature);
    AsInboxOwner inbox(relname);
    return pg_call([&] {
        const int guc_level = NewGUCNestLevel();
        FmgrInfo flinfo;
        fmgr_info(fn, &flinfo);
        if (flinfo.fn_nargs != (short) args.size())
            elog(ERROR, "%s takes %d arguments, not %zu", signature, flinfo.fn_nargs, args.size());
        LOCAL_FCINFO(fcinfo, FUNC_MAX_ARGS);
        InitFunctionCallInfoData(*fcinfo, &flinfo, (short) args.size(), InvalidOid, NULL, NULL);
        for (size_t i = 0; i < args.size(); i++) {
            fcinfo->args[i].value = args[i].value;
            fcinfo->args[i].isnull = args[i].isnull;
        }
        Datum result = FunctionCallInvoke(fcinfo);
        const bool isnull = fcinfo->isnull;
        AtEOXact_GUC(false, guc_level);
        if (isnull)
            elog(ERROR, "%s returned NULL", signature);
        return result;
    });
}

} // namespace

long long upsert_identities(const Param &account, const Param &ids, const Param &usernames,
                            const Param &names, const Param &pics, const Param &statuses,
                            const Param &codes, const Param &next_fetch_at)
{
    Param self{TEXTOID, (Datum) 0, true};
    {
        AsExtensionOwner owner;
        /* queue rows before cache rows: the lock order of every path */
        auto rows = spi_query("SELECT ig_identity.prepare_upsert($1, $2, $3)", {account, ids, statuses});
        if (!rows.empty() && rows[0][0])
            self = text_param(rows[0][0]);
    }
    Datum n = call_as_owner_of("instagram_user_cache",
                               "ig_identity.merge_identities(pg_catalog.text, pg_catalog.text, pg_catalog.text[], "
                               "pg_catalog.text[], pg_catalog.text[], pg_catalog.text[], pg_catalog.text[], "
                               "pg_catalog.int4[], pg_catalog.timestamptz[])",
                               {account, self, ids, usernames, names, pics, statuses, codes, next_fetch_at});
    return DatumGetInt32(n);
}

std::vector<std::string> store_conversations(const std::vector<Param> &args)
{
    Datum arr = call_as_owner_of("instagram_conversations",
                                 "ig_identity.store_conversations(pg_catalog.text, pg_catalog.text, pg_catalog.text[], "
                                 "pg_catalog.text[], pg_catalog.timestamptz[])",
                                 args);
    /* Under PG_TRY only PostgreSQL calls (they may ereport); the C++ copies,
     * which may throw, are made after PG_END_TRY from the palloc'd strings. */
    char **strs = nullptr;
    int n = 0;
    pg_call([&] {
        Datum *elems;
        bool *nulls;
        deconstruct_array(DatumGetArrayTypeP(arr), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
        strs = (char **) palloc0(sizeof(char *) * (n > 0 ? n : 1));
        for (int i = 0; i < n; i++)
            if (!nulls[i])
                strs[i] = TextDatumGetCString(elems[i]);
    });
    std::vector<std::string> out;
    for (int i = 0; i < n; i++)
        if (strs[i] != nullptr) {
            test_hook_bad_alloc("store_conversations");
            out.emplace_back(strs[i]);
        }
    return out;
}

long long store_messages(const std::vector<Param> &args)
{
    Datum n = call_as_owner_of("instagram_messages",
                               "ig_identity.store_messages(pg_catalog.text, pg_catalog.text[], pg_catalog.text[], "
                               "pg_catalog.text[], pg_catalog.text[], pg_catalog.text[], "
                               "pg_catalog.timestamptz[], pg_catalog.bool[])",
                               args);
    return DatumGetInt64(n);
}

void check_inbox_tables()
{
    AsExtensionOwner owner;
    spi_query("SELECT ig_identity.check_inbox_tables()", {}, true);
}

} // namespace igid::pg

using namespace igid::pg;

/*
 * ig_identity.upsert_identities(account, ids, usernames, names, pics,
 *                               statuses, codes, next_fetch_at) RETURNS int
 * The SQL face of the merge path (ig_upsert_participant_identity calls it);
 * EXECUTE is closed to PUBLIC.
 */
IGID_FUNCTION(ig_identity_upsert_identities)
{
    static const Oid types[] = {TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
                                TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID};
    std::vector<igid::pg::Param> p;
    for (int i = 0; i < 8; i++)
        p.push_back({types[i], PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i), PG_ARGISNULL(i)});
    long long n = 0;
    with_spi([&] { n = upsert_identities(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]); });
    return Int32GetDatum((int32) n);
}
