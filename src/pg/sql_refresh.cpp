/*
 * sql_refresh.cpp — ig_refresh_identities(location_id) and
 * ig_resolve_profile(ig_account_id, ig_user_id): fetch from the Graph API in
 * the calling backend and upsert in the caller's transaction.
 *
 * The HTTP wait loop checks for interrupts at least every 100 ms, so a
 * cancel or statement_timeout stops a long refresh within a second; the
 * transaction then aborts and nothing is half-written.
 */
#include "pg/inbox.h"
#include "pg/privilege.h"
#include "pg/refresh.h"
#include "pg/result.h"
#include "pg/shmem.h"
#include "pg/wait.h"

extern "C" {
#include "miscadmin.h"
#include "access/xact.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
}

#include <string>

using namespace igid;
using namespace igid::pg;

namespace {

/* Reads the targets of a location (the participants worth refreshing: the
 * other party of every conversation, every sender and recipient of the last
 * 30 days' messages), reading the inbox tables as their owners. */
std::vector<Target> location_targets(const std::vector<AccountCreds> &accounts)
{
    std::vector<std::pair<std::string, std::string>> ids;
    for (const auto &a : accounts)
        ids.emplace_back(a.ig_account_id, a.self_igsid);
    const TimestampTz since = pg_call([] {
        return GetCurrentTransactionStartTimestamp() - (TimestampTz) 30 * USECS_PER_DAY;
    });
    std::vector<Target> targets;
    for (auto &[account, user] : participants_of(ids, since))
        targets.push_back({account, user});
    return targets;
}

/* Splits targets by whether their account may be called now. */
std::vector<AccountCreds> usable_accounts(const std::vector<AccountCreds> &accounts,
                                          std::vector<Target> &targets, RunSummary &summary)
{
    std::vector<AccountCreds> usable;
    std::vector<std::string> unusable_reason(accounts.size());
    for (size_t i = 0; i < accounts.size(); i++) {
        try {
            require_account_usable(accounts[i].ig_account_id);
            usable.push_back(accounts[i]);
        } catch (const Error &e) {
            unusable_reason[i] = e.what();
        }
    }
    std::vector<Target> kept;
    for (auto &t : targets) {
        bool ok = false;
        for (size_t i = 0; i < accounts.size(); i++)
            if (accounts[i].ig_account_id == t.ig_account_id) {
                if (unusable_reason[i].empty())
                    ok = true;
                else
                    summary.add_failure(t.ig_account_id, t.ig_user_id, std::nullopt, unusable_reason[i]);
            }
        if (ok)
            kept.push_back(std::move(t));
    }
    targets = std::move(kept);
    return usable;
}

} // namespace

/*
 * ig_refresh_identities(location_id text)
 *   RETURNS TABLE (refreshed int, failed int, total int, errors jsonb)
 */
IGID_FUNCTION(ig_refresh_identities)
{
    const std::string location_id = text_arg(fcinfo, 0, "location_id");
    TimestampTz started = GetCurrentTimestamp();
    RunSummary summary;
    long long total = 0;

    with_spi([&] {
        /* internal statements run as the extension owner: the caller needs
         * only EXECUTE on this function (see privilege.h) */
        AsExtensionOwner as_owner;
        auto accounts = location_accounts(location_id);
        /* On Citus, an account whose shard's node does not answer is left
         * out (its conversations cannot even be read) and reported in
         * errors; the others go on. All of them: the call fails. */
        std::vector<std::string> down;
        if (!accounts.empty() && citus_shard_checks()) {
            std::vector<AccountCreds> up;
            for (auto &a : accounts) {
                if (account_shard_reachable(a.ig_account_id))
                    up.push_back(a);
                else
                    down.push_back(a.ig_account_id);
            }
            if (up.empty()) {
                std::string list;
                for (const auto &d : down)
                    list += (list.empty() ? "" : ", ") + d;
                throw Error(ERRCODE_CONNECTION_FAILURE,
                            "cannot refresh the identities of location \"" + location_id +
                                "\": the Citus node that holds the shard of its accounts does not answer",
                            "Accounts whose worker node does not answer: " + list + ".",
                            "Try again once the node is back; the background worker retries the identities queued for them by itself.");
            }
            accounts = std::move(up);
        }
        auto targets = location_targets(accounts);
        for (const auto &d : down)
            summary.add_failure(d, "", std::nullopt,
                                "the Citus node that holds this account's shard does not answer; its identities were not read");
        total = (long long) (targets.size() + down.size());
        auto usable = usable_accounts(accounts, targets, summary);

        std::vector<AccountEvent> events;
        {
            NetworkWait wait;
            events = fetch_profiles(usable, targets, network_progress,
                                    [&](std::vector<FetchOutcome> &&batch) {
                                        pgstat_report_wait_end(); /* SQL now */
                                        with_spi([&] { apply_outcomes(batch); });
                                        summary.count(batch);
                                    });
        }
        apply_account_events(events);

        const std::string errors = summary.errors_json();
        AsExtensionOwner owner;
        spi_exec("SELECT ig_identity.record_run('sql', $1, $2, $3, $4, $5, $6::pg_catalog.jsonb)",
                 {text_param(location_id), timestamptz_param(started),
                  int4_param((int) summary.refreshed), int4_param((int) summary.failed),
                  int4_param((int) total), text_param(errors)});
    });

    return composite_result(fcinfo, {OutValue::of(summary.refreshed), OutValue::of(summary.failed),
                                     OutValue::of(total),
                                     OutValue::json(summary.errors_json())});
}

/*
 * ig_resolve_profile(ig_account_id text, ig_user_id text) RETURNS ig_identity_profile
 * Fetches one profile now, upserts it, returns the cache row.
 */
IGID_FUNCTION(ig_resolve_profile)
{
    const std::string account_id = text_arg(fcinfo, 0, "ig_account_id");
    const std::string user_id = text_arg(fcinfo, 1, "ig_user_id");
    std::optional<Datum> row;
    MemoryContext fn_cxt = CurrentMemoryContext;

    with_spi([&] {
        /* internal statements run as the extension owner: the caller needs
         * only EXECUTE on this function (see privilege.h) */
        AsExtensionOwner as_owner;
        auto account = account_by_id(account_id);
        if (!account)
            throw Error(ERRCODE_UNDEFINED_OBJECT,
                        "Instagram account \"" + account_id + "\" is not connected", "",
                        "Connect it with ig_connect_account(location_id, ig_account_id, "
                        "self_igsid, access_token, api_host).");
        if (user_id == account->ig_account_id || user_id == account->self_igsid)
            throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                        "cannot resolve the business account itself as a participant",
                        "ig_user_id \"" + user_id + "\" is the account's own id.",
                        "Pass the id of the other party of the conversation.");
        require_account_usable(account_id);

        std::vector<FetchOutcome> outcomes;
        std::vector<AccountEvent> events;
        {
            NetworkWait wait;
            events = fetch_profiles({*account}, {{account_id, user_id}}, network_progress,
                                     [&](std::vector<FetchOutcome> &&batch) {
                                         for (auto &o : batch)
                                             outcomes.push_back(std::move(o));
                                     });
        }
        apply_outcomes(outcomes);
        apply_account_events(events);
        /* A token or permission failure is an error of the call: the
         * account's new status, recorded just above, decides the message.
         * The error rolls that record back, so the stop is also left for the
         * background worker, which records it in its own transaction. */
        for (const auto &e : events)
            if (e.status == "reauth_required" || e.status == "permission_error") {
                PendingStop stop{};
                strlcpy(stop.ig_account_id, e.ig_account_id.c_str(), sizeof stop.ig_account_id);
                strlcpy(stop.status, e.status.c_str(), sizeof stop.status);
                stop.error_code = e.error_code.value_or(0);
                strlcpy(stop.error, e.error_message.c_str(), sizeof stop.error);
                if (e.token_rotated_at)
                    strlcpy(stop.token_rotated_at, e.token_rotated_at->c_str(), sizeof stop.token_rotated_at);
                note_account_stop(MyDatabaseId, stop);
                require_account_usable(account_id);
            }
        /* as the cache's owner; a VOLATILE function, so it sees the upsert
         * just made; copied out of SPI's memory, which SPI_finish frees */
        auto d = cache_row(account_id, user_id);
        if (d)
            row = pg_call([&] {
                MemoryContext old = MemoryContextSwitchTo(fn_cxt);
                Datum copy = datumCopy(*d, false, -1);
                MemoryContextSwitchTo(old);
                return copy;
            });
    });

    if (!row)
        throw Error(ERRCODE_NO_DATA_FOUND, "no identity is cached for this participant",
                    "The profile could not be fetched and nothing was known before.",
                    "Check ig_identity_status for the account's state.");
    /* the composite as it is: its timestamps never pass through text */
    return *row;
}
