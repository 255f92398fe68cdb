/*
 * inbox.cpp — writes to the inbox tables as their owner (see inbox.h), and
 * the SQL entry point ig_identity.upsert_identities.
 */
#include "pg/inbox.h"
#include "pg/privilege.h"
#include "pg/test_hook.h"

#include <algorithm>
#include <set>

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
    try {
        return pg_call([&] {
            return DatumGetObjectId(DirectFunctionCall1(regprocedurein, CStringGetDatum(signature)));
        });
    } catch (const PgError &e) {
        /* a database whose extension is older than this library lacks the
         * functions the newer SQL brings */
        if (e.edata()->sqlerrcode != ERRCODE_UNDEFINED_FUNCTION)
            throw;
        throw Error(ERRCODE_UNDEFINED_FUNCTION,
                    std::string("function ") + signature + " does not exist in this database",
                    "This library is ig_identity " IGID_EXTVERSION "; the extension in this database is older.",
                    "Run ALTER EXTENSION ig_identity UPDATE in this database.");
    }
}

/* Calls the function through fmgr as the owner of `relname`, in a
 * security-restricted operation; its result, or nullopt for NULL.  As in
 * PostgreSQL's own restricted operations (index_build, VACUUM), setting
 * changes made by the owner's code (a trigger's set_config('search_path',
 * ..., false)) are local to the call: a new GUC nest level, rolled back
 * when the call returns, and by transaction abort when it raises. */
std::optional<Datum> call_as_owner_of_nullable(const char *relname, const char *signature,
                                               const std::vector<Param> &args)
{
    const Oid fn = function_oid(signature);
    AsInboxOwner inbox(relname);
    bool isnull = false;
    Datum result = pg_call([&] {
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
        Datum r = FunctionCallInvoke(fcinfo);
        isnull = fcinfo->isnull;
        AtEOXact_GUC(false, guc_level);
        return r;
    });
    if (isnull)
        return std::nullopt;
    return result;
}

/* call_as_owner_of_nullable for a function that never returns NULL. */
Datum call_as_owner_of(const char *relname, const char *signature, const std::vector<Param> &args)
{
    auto d = call_as_owner_of_nullable(relname, signature, args);
    if (!d)
        pg_call([&] { elog(ERROR, "%s returned NULL", signature); });
    return *d;
}

/* The elements of a text[] Datum (NULL elements skipped). */
std::vector<std::string> text_elements(Datum arr, const char *hook = nullptr)
{
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
            if (hook)
                test_hook_bad_alloc(hook);
            out.emplace_back(strs[i]);
        }
    return out;
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

namespace {

/* After a store: the ids of this batch that `relname` keeps for another
 * account (read as its owner); their copies go to the quarantine, as the
 * extension owner, through `set_aside` (see src/sql/35_tenant_ids.sql). */
void set_aside_foreign(const char *relname, const char *reader, const Param &account, const Param &ids,
                       const char *set_aside, std::vector<Param> args)
{
    auto foreign = text_elements(call_as_owner_of(relname, reader, {account, ids}));
    if (foreign.empty())
        return;
    std::vector<Text> f(foreign.begin(), foreign.end());
    args.push_back(text_array_param(f));
    AsExtensionOwner owner;
    (void) spi_query(set_aside, args);
}

} // namespace

std::vector<std::string> store_conversations(const std::vector<Param> &args)
{
    Datum arr = call_as_owner_of("instagram_conversations",
                                 "ig_identity.store_conversations(pg_catalog.text, pg_catalog.text, pg_catalog.text[], "
                                 "pg_catalog.text[], pg_catalog.timestamptz[])",
                                 args);
    auto changed = text_elements(arr, "store_conversations");
    set_aside_foreign("instagram_conversations",
                      "ig_identity.read_foreign_conversation_ids(pg_catalog.text, pg_catalog.text[])", args.at(0),
                      args.at(2), "SELECT ig_identity.set_aside_foreign_conversations($1, $2, $3, $4, $5, $6)", args);
    return changed;
}

long long store_messages(const std::vector<Param> &given)
{
    /* messages without a conversation id take the account's conversation
     * with that participant, read as instagram_conversations' own owner
     * (src/sql/37_mixed_owners.sql) */
    std::vector<Param> args = given;
    args.at(2) = Param{TEXTARRAYOID,
                       call_as_owner_of("instagram_conversations",
                                        "ig_identity.read_message_conversations(pg_catalog.text, pg_catalog.text[], "
                                        "pg_catalog.text[], pg_catalog.text[], pg_catalog.bool[])",
                                        {given.at(0), given.at(2), given.at(3), given.at(4), given.at(7)}),
                       false};
    /* a partitioned table has no unique index on id alone for ON CONFLICT
     * (src/sql/36_partitioned_inbox.sql): its writer relies on the batch's
     * ids being locked first, in ig_identity's private table, which only
     * the extension's owner can lock (no other role can hold it) */
    const bool partitioned = inbox_is_partitioned("instagram_messages");
    if (partitioned) {
        AsExtensionOwner owner;
        (void) spi_query("SELECT ig_identity.lock_message_ids($1)", {args.at(1)});
    }
    Datum n = call_as_owner_of("instagram_messages",
                               partitioned
                                   ? "ig_identity.store_messages_partitioned(pg_catalog.text, pg_catalog.text[], "
                                     "pg_catalog.text[], pg_catalog.text[], pg_catalog.text[], pg_catalog.text[], "
                                     "pg_catalog.timestamptz[], pg_catalog.bool[])"
                                   : "ig_identity.store_messages(pg_catalog.text, pg_catalog.text[], pg_catalog.text[], "
                                     "pg_catalog.text[], pg_catalog.text[], pg_catalog.text[], "
                                     "pg_catalog.timestamptz[], pg_catalog.bool[])",
                               args);
    set_aside_foreign("instagram_messages", "ig_identity.read_foreign_message_ids(pg_catalog.text, pg_catalog.text[])",
                      args.at(0), args.at(1),
                      "SELECT ig_identity.set_aside_foreign_messages($1, $2, $3, $4, $5, $6, $7, $8, $9)", args);
    return DatumGetInt64(n);
}

long long clear_unsent_messages(const std::string &account, const std::vector<Text> &mids)
{
    Datum n = call_as_owner_of("instagram_messages",
                               "ig_identity.clear_unsent_messages(pg_catalog.text, pg_catalog.text[])",
                               {text_param(account), text_array_param(mids)});
    return DatumGetInt64(n);
}

std::vector<std::pair<std::string, std::string>>
participants_of(const std::vector<std::pair<std::string, std::string>> &accounts, TimestampTz messages_since)
{
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto &[account, self] : accounts) {
        std::set<std::string> ids;
        for (auto &id : text_elements(call_as_owner_of("instagram_conversations",
                                                       "ig_identity.read_conversation_participants(pg_catalog.text)",
                                                       {text_param(account)})))
            ids.insert(std::move(id));
        for (auto &id : text_elements(call_as_owner_of(
                 "instagram_messages",
                 "ig_identity.read_message_participants(pg_catalog.text, pg_catalog.timestamptz)",
                 {text_param(account), timestamptz_param(messages_since)})))
            ids.insert(std::move(id));
        for (const auto &id : ids)
            if (!id.empty() && id.rfind("UNKNOWN_", 0) != 0 && id != account && id != self)
                out.emplace_back(account, id);
    }
    std::sort(out.begin(), out.end());
    return out;
}

long long enqueue_participants(const std::string &account, const std::vector<Text> &ids,
                               const std::vector<bool> &inbound, const std::string &reason)
{
    auto wanted = text_elements(call_as_owner_of(
        "instagram_user_cache",
        "ig_identity.read_identities_wanted(pg_catalog.text, pg_catalog.text[], pg_catalog.bool[])",
        {text_param(account), text_array_param(ids), bool_array_param(inbound)}));
    if (wanted.empty())
        return 0;
    std::vector<Text> w(wanted.begin(), wanted.end());
    AsExtensionOwner owner;
    auto rows = spi_query("SELECT ig_identity.enqueue_participants($1, $2, $3)",
                          {text_param(account), text_array_param(w), text_param(reason)});
    return std::stoll(rows.at(0).at(0).value_or("0"));
}

long long queue_stale(int stale_after_s, int limit)
{
    std::vector<Text> accounts, selves;
    long long queued = 0;
    {
        AsExtensionOwner owner;
        for (auto &r : spi_query("SELECT ig_account_id, self_igsid, queued FROM ig_identity._worker_stale_accounts()", {}))
        {
            accounts.push_back(r[0]);
            selves.push_back(r[1]);
            queued += std::stoll(r[2].value_or("0"));
        }
    }
    if (accounts.empty())
        return 0;
    /* rows already queued are skipped afterwards: ask for that many more */
    Datum candidates = call_as_owner_of(
        "instagram_user_cache",
        "ig_identity.read_stale_identities(pg_catalog.text[], pg_catalog.text[], pg_catalog.int4, pg_catalog.int4)",
        {text_array_param(accounts), text_array_param(selves), int4_param(stale_after_s),
         int4_param((int) std::min<long long>(limit + queued, 1000000))});
    AsExtensionOwner owner;
    auto rows = spi_query("SELECT ig_identity._worker_queue_stale($1, $2)",
                          {Param{TEXTARRAYOID, candidates, false}, int4_param(limit)});
    return std::stoll(rows.at(0).at(0).value_or("0"));
}

std::optional<Datum> cache_row(const std::string &account, const std::string &user)
{
    return call_as_owner_of_nullable("instagram_user_cache", "ig_identity.cache_row(pg_catalog.text, pg_catalog.text)",
                                     {text_param(account), text_param(user)});
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
