/*
 * apply.cpp — writes fetch outcomes to the tables, in batches: settles the
 * refresh queue (as the extension owner), then merges the identities through
 * the one merge path (a failed fetch never overwrites good values), which
 * writes as the cache table's owner (see inbox.h).  The worker saves each
 * account apart (apply_outcomes_per_account), so that on Citus a worker node
 * that is down holds back only the accounts whose shards it holds.
 */
#include "pg/inbox.h"
#include "pg/privilege.h"
#include "pg/refresh.h"

#include <ctime>
#include <map>

namespace igid::pg {

namespace {

/* Seconds a person stays marked unavailable, or a permanent error (a bad
 * request, an oversized answer) stays, before we look again.  A row without
 * next_fetch_at whose last_fetched_at is old is queued again by every stale
 * scan of the worker: a permanent error must not be asked again that way. */
constexpr double kUnavailableRetryS = 7 * 86400.0;

/* The cache status written for each outcome kind. */
const char *status_of(FetchOutcome::Kind k)
{
    switch (k) {
    case FetchOutcome::Kind::ok: return "ok";
    case FetchOutcome::Kind::consent_required: return "consent_required";
    case FetchOutcome::Kind::unavailable: return "unavailable";
    default: return "error";
    }
}

/* Column arrays for one account's share of a batch. */
struct Columns {
    std::vector<Text> ids, usernames, names, pics, statuses;
    std::vector<std::optional<int>> codes;
    std::vector<std::optional<double>> next_fetch;
    std::vector<Text> queue_ids;                 /* queue rows to settle */
    std::vector<std::optional<double>> queue_next; /* NULL = remove */
};


/* Each account's share of a batch of outcomes. */
std::map<std::string, Columns> by_account_of(const std::vector<FetchOutcome> &outcomes)
{
    const double now = (double) time(nullptr);
    std::map<std::string, Columns> by_account;
    for (const auto &o : outcomes) {
        Columns &c = by_account[o.ig_account_id];
        if (o.kind == FetchOutcome::Kind::not_attempted) {
            /* the account stopped or paused: nothing known about the person;
             * a queued row waits for the account, not for the person */
            c.queue_ids.emplace_back(o.ig_user_id);
            c.queue_next.emplace_back(o.next_try_at.value_or(now + 60));
            continue;
        }
        std::optional<double> next;
        if (o.kind == FetchOutcome::Kind::unavailable || o.kind == FetchOutcome::Kind::permanent)
            next = now + kUnavailableRetryS;
        else if (o.kind == FetchOutcome::Kind::retry_later)
            next = o.next_try_at;
        c.ids.emplace_back(o.ig_user_id);
        c.usernames.push_back(o.kind == FetchOutcome::Kind::ok ? o.username : std::nullopt);
        c.names.push_back(o.kind == FetchOutcome::Kind::ok ? o.name : std::nullopt);
        c.pics.push_back(o.kind == FetchOutcome::Kind::ok ? o.profile_pic : std::nullopt);
        c.statuses.emplace_back(status_of(o.kind));
        c.codes.push_back(o.error_code);
        c.next_fetch.push_back(next);
        /* a success leaves the queue inside the merge path (upsert_identities
         * settles 'ok' rows first); retry_later waits in the queue; everything
         * else leaves it here (consent is retried on a new inbound message,
         * unavailable by next_fetch_at) */
        if (o.kind == FetchOutcome::Kind::ok)
            continue;
        c.queue_ids.emplace_back(o.ig_user_id);
        c.queue_next.push_back(o.kind == FetchOutcome::Kind::retry_later ? next : std::nullopt);
    }
    return by_account;
}

/* Saves one account's share. Queue rows before cache rows, as on every
 * path (see upsert_identities): one lock order, no deadlock with an ingest
 * that then upserts. */
void save_account(const std::string &account, Columns &c)
{
    if (!c.queue_ids.empty()) {
        AsExtensionOwner owner;
        spi_exec("SELECT ig_identity.settle_queue($1, $2, $3)",
                 {text_param(account), text_array_param(c.queue_ids),
                  timestamptz_array_param(c.queue_next)});
    }
    if (!c.ids.empty())
        upsert_identities(text_param(account), text_array_param(c.ids), text_array_param(c.usernames),
                          text_array_param(c.names), text_array_param(c.pics),
                          text_array_param(c.statuses), int4_array_param(c.codes),
                          timestamptz_array_param(c.next_fetch));
}

} // namespace

void apply_outcomes(const std::vector<FetchOutcome> &outcomes)
{
    auto by_account = by_account_of(outcomes);
    for (auto &[account, c] : by_account)
        save_account(account, c);
}

bool citus_shard_checks()
{
    AsExtensionOwner owner;
    auto rows = spi_query(
        "SELECT pg_catalog.to_regprocedure('ig_identity.account_shard_reachable(text)') IS NOT NULL"
        " AND EXISTS (SELECT 1 FROM pg_catalog.pg_extension e"
        "              WHERE e.extname OPERATOR(pg_catalog.=) 'citus')",
        {}, true);
    return !rows.empty() && rows[0][0] && *rows[0][0] == "t";
}

bool account_shard_reachable(const std::string &ig_account_id)
{
    AsExtensionOwner owner;
    auto rows = spi_query("SELECT ig_identity.account_shard_reachable($1)", {text_param(ig_account_id)}, false);
    return rows.empty() || !rows[0][0] || *rows[0][0] != "f";
}

std::set<std::string> apply_outcomes_per_account(const std::vector<FetchOutcome> &outcomes)
{
    std::set<std::string> unreachable;
    /* Without Citus (or in a database still at 1.0, which has no such
     * function) nothing is asked per account. */
    if (!citus_shard_checks()) {
        apply_outcomes(outcomes);
        return unreachable;
    }
    auto by_account = by_account_of(outcomes);
    for (auto &[account, c] : by_account) {
        /* Asked before writing: a write that fails on a Citus node fails
         * the whole transaction at commit, the other accounts' too. */
        if (account_shard_reachable(account)) {
            save_account(account, c);
            continue;
        }
        /* every row of the account waits in the queue (a private, local
         * table) for the node to come back; nothing fetched is written */
        std::vector<Text> ids = c.queue_ids;
        for (const auto &id : c.ids)
            ids.push_back(id);
        std::vector<std::optional<double>> next(ids.size(), (double) time(nullptr) + kRetryUnreachableS);
        {
            AsExtensionOwner owner;
            spi_exec("SELECT ig_identity.settle_queue($1, $2, $3)",
                     {text_param(account), text_array_param(ids), timestamptz_array_param(next)});
        }
        const int n = (int) ids.size();
        const int retry_s = (int) kRetryUnreachableS;
        const char *acc = account.c_str();
        pg_call([acc, n, retry_s] {
            ereport(WARNING,
                    (errcode(ERRCODE_CONNECTION_FAILURE),
                     errmsg("ig_identity could not save %d profiles of account %s: the Citus node that holds its shard does not answer",
                            n, acc),
                     errhint("The rows stay queued and are tried again in %d seconds; the other accounts go on.",
                             retry_s)));
        });
        unreachable.insert(account);
    }
    return unreachable;
}

} // namespace igid::pg
