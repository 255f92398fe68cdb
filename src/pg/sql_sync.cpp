/*
 * sql_sync.cpp — ig_sync_inbox(location_id): pages through the Conversations
 * API for each of the location's accounts, upserts conversations and
 * messages, and captures every participant's identity from the responses
 * themselves (the cheapest identity source: it works even where the profile
 * API answers 230).  Each page carries its conversations' newest messages
 * (field expansion), so a sync costs one call per 25 conversations; only new
 * or changed conversations have their messages stored, so a second run
 * changes nothing.
 */
#include "core/conversation_messages.h"
#include "core/conversation_pager.h"
#include "core/http.h"
#include "core/json.h"
#include "core/usage.h"
#include "pg/graph_settings.h"
#include "pg/json_build.h"
#include "pg/inbox.h"
#include "pg/privilege.h"
#include "pg/refresh.h"
#include "pg/result.h"
#include "pg/settings.h"
#include "pg/wait.h"

extern "C" {
#include "miscadmin.h"
#include "utils/errcodes.h"
}

#include <algorithm>
#include <map>
#include <set>

using namespace igid;
using namespace igid::pg;

namespace {

struct SyncCounts {
    long long conversations = 0, messages = 0, calls = 0;
    std::set<std::pair<std::string, std::string>> identities; /* (account, person) captured */
};

void check_interrupts()
{
    pg_call([] { CHECK_FOR_INTERRUPTS(); });
}

/* Sends the requests and waits for every answer, answering interrupts. */
std::vector<HttpResponse> run_all(HttpDriver &http, std::vector<HttpRequest> requests, SyncCounts &counts)
{
    const size_t n = requests.size();
    for (auto &r : requests)
        http.submit(std::move(r));
    std::vector<HttpResponse> out;
    while (out.size() < n) {
        check_interrupts();
        std::vector<HttpResponse> done;
        {
            NetworkWait wait;
            done = http.step(100);
        }
        for (auto &r : done) {
            if (r.attempted)
                counts.calls++;
            out.push_back(std::move(r));
        }
    }
    return out;
}

/* Waits d, answering interrupts (a retry's backoff). */
void sleep_interruptibly(std::chrono::milliseconds d)
{
    auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
        check_interrupts();
        pg_call([] { pg_usleep(50 * 1000L); });
    }
}

/* Identities seen in one response, deduplicated by id. */
struct Identities {
    std::map<std::string, std::string> username_by_id;
    void add(const Participant &p, const AccountCreds &a)
    {
        if (p.id.empty() || p.id == a.ig_account_id || p.id == a.self_igsid || !p.username)
            return;
        username_by_id[p.id] = *p.username;
    }
};

/* Captures identities through the one merge path (never NULL over a value). */
void store_identities(const AccountCreds &a, const Identities &ids, SyncCounts &counts)
{
    if (ids.username_by_id.empty())
        return;
    std::vector<Text> users, usernames, nulls, statuses;
    std::vector<std::optional<int>> codes;
    std::vector<std::optional<double>> next;
    for (const auto &[id, username] : ids.username_by_id) {
        users.emplace_back(id);
        usernames.emplace_back(username);
        nulls.emplace_back(std::nullopt);
        statuses.emplace_back("ok");
        codes.emplace_back(std::nullopt);
        next.emplace_back(std::nullopt);
    }
    upsert_identities(text_param(a.ig_account_id), text_array_param(users), text_array_param(usernames),
                      text_array_param(nulls), text_array_param(nulls), text_array_param(statuses),
                      int4_array_param(codes), timestamptz_array_param(next));
    for (const auto &[id, username] : ids.username_by_id)
        counts.identities.emplace(a.ig_account_id, id);
}

/* What a failed sync of one account records: a stop or pause learned from
 * the call, or (a permanent, transport or exhausted failure) the error
 * alone, with the account left active and no success counted. */
AccountEvent account_event(const AccountCreds &a, const Action &action, const std::optional<GraphError> &error,
                           std::chrono::milliseconds pause_for, const std::string &detail)
{
    std::string status = action.stops_account()    ? std::string(action_name(action.kind))
                         : action.pauses_account() ? "paused"
                                                   : "active";
    AccountEvent e{a.ig_account_id, status, {}, {}, "sync: " + detail, {}, false, a.token_rotated_at};
    if (action.pauses_account())
        e.paused_until = (double) time(nullptr) + (double) pause_for.count() / 1000.0;
    if (error)
        e.error_code = (int) error->code;
    return e;
}

/* One account whose sync failed, for the run history and the error. */
struct SyncFailure {
    std::string ig_account_id, status, detail;
    std::optional<int> code;
};

/* The SQLSTATE a failed sync is raised with: what the account needs. */
int failure_sqlstate(const SyncFailure &f)
{
    if (f.status == "reauth_required")
        return ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
    if (f.status == "permission_error")
        return ERRCODE_INSUFFICIENT_PRIVILEGE;
    if (f.status == "paused")
        return ERRCODE_CONFIGURATION_LIMIT_EXCEEDED;
    if (f.code)
        return ERRCODE_EXTERNAL_ROUTINE_EXCEPTION; /* the Graph API refused the request */
    return ERRCODE_CONNECTION_FAILURE;             /* no usable answer at all */
}

/* The run's errors array: {ig_account_id, status, code, message} per failure. */
std::string failures_json(const std::vector<SyncFailure> &failures)
{
    JsonPtr arr(json_array());
    for (const auto &f : failures) {
        json_t *o = new_json_object();
        json_object_set_new(o, "ig_account_id", json_stringn(f.ig_account_id.data(), f.ig_account_id.size()));
        json_object_set_new(o, "status", json_stringn(f.status.data(), f.status.size()));
        json_object_set_new(o, "code", f.code ? json_integer(*f.code) : json_null());
        json_object_set_new(o, "message", json_stringn(f.detail.data(), f.detail.size()));
        json_array_append_new(arr.get(), o);
    }
    char *text = json_dumps(arr.get(), JSON_COMPACT | JSON_ENSURE_ASCII);
    std::string out = text ? text : "[]";
    free(text);
    return out;
}

/* One batch of messages on its way to store_messages, with the identities
 * their senders and recipients reveal. */
struct MessageRows {
    std::vector<Text> ids, convs, from, to, texts;
    std::vector<std::optional<double>> created;
    std::vector<bool> echo;
    Identities identities;

    void add(const std::string &conv, const Message &m, const AccountCreds &a)
    {
        ids.emplace_back(m.id);
        convs.push_back(conv.empty() ? Text() : Text(conv));
        from.emplace_back(m.from.id);
        to.push_back(m.to.empty() ? Text() : Text(m.to.front().id));
        texts.push_back(m.text);
        created.push_back(m.created_epoch ? std::optional<double>((double) *m.created_epoch) : std::nullopt);
        echo.push_back(m.from.id == a.ig_account_id || m.from.id == a.self_igsid);
        identities.add(m.from, a);
        for (const auto &t : m.to)
            identities.add(t, a);
    }

    void store(const AccountCreds &a, SyncCounts &counts)
    {
        if (!ids.empty()) {
            counts.messages += store_messages({text_param(a.ig_account_id), text_array_param(ids),
                                               text_array_param(convs), text_array_param(from),
                                               text_array_param(to), text_array_param(texts),
                                               timestamptz_array_param(created), bool_array_param(echo)});
        }
        store_identities(a, identities, counts);
    }
};

/* Fetches the messages of conversations whose page did not carry them (a
 * missing or malformed nested edge): one call each, as a fallback. */
void fetch_messages(HttpDriver &http, const GraphAccount &g, const AccountCreds &a,
                    const std::vector<std::string> &conversation_ids, MessageRows &rows, SyncCounts &counts)
{
    std::vector<HttpRequest> requests;
    for (const auto &id : conversation_ids)
        if (auto r = conversation_messages_request(g, id))
            requests.push_back(std::move(*r));
    for (const auto &resp : run_all(http, std::move(requests), counts)) {
        if (!resp.attempted || resp.error != TransportError::none)
            continue;
        auto parsed = parse_conversation_messages(resp.body);
        if (parsed.status != ParseStatus::ok)
            continue;
        for (const auto &p : parsed.conversation.participants)
            rows.identities.add(p, a);
        for (const auto &m : parsed.conversation.messages)
            rows.add(parsed.conversation.id, m, a);
    }
}

/* Syncs one account; returns what failed it, if something did. */
std::optional<AccountEvent> sync_account(HttpDriver &http, const AccountCreds &a,
                                         const std::string &location_id, SyncCounts &counts)
{
    GraphAccount g = graph_account(a.ig_account_id, a.token, a.api_host, a.app_secret);
    const ApiHost host = g.host;
    /* Facebook Login lists conversations under the Page (`me` with a Page
     * token), never under the IG account id, which Meta refuses there */
    ConversationPager pager(g, conversation_list_owner(host, a.ig_account_id));

    while (auto request = pager.next_request()) {
        std::vector<HttpRequest> one;
        one.push_back(std::move(*request));
        auto responses = run_all(http, std::move(one), counts);
        PagerEvent ev = pager.on_response(responses.at(0));
        if (ev.kind == PagerEvent::Kind::retry) {
            sleep_interruptibly(ev.retry_in);
            continue;
        }
        if (ev.kind == PagerEvent::Kind::failed)
            return account_event(a, ev.action, ev.error, ev.pause_for, ev.detail);

        std::vector<Text> ids, participants;
        std::vector<std::optional<double>> updated;
        Identities identities;
        for (const auto &c : ev.page.conversations) {
            auto other = other_party(c.participants, a.self_igsid, a.ig_account_id);
            ids.emplace_back(c.id);
            participants.push_back(other ? Text(other->id) : Text());
            updated.push_back(c.updated_epoch ? std::optional<double>((double) *c.updated_epoch)
                                              : std::nullopt);
            if (other)
                identities.add(*other, a);
        }
        /* each page's statements run in an SPI level of their own, whose
         * memory (parameters, results) is freed when the page is saved: the
         * session's memory stays flat however long the inbox is */
        std::vector<std::string> changed;
        with_spi([&] {
            if (!ids.empty()) {
                changed = store_conversations({text_param(a.ig_account_id), text_param(location_id),
                                               text_array_param(ids), text_array_param(participants),
                                               timestamptz_array_param(updated)});
            }
            store_identities(a, identities, counts);
        });
        counts.conversations += (long long) ids.size();

        /* messages of new or changed conversations: nested in the page, or
         * (when the page lacked them) fetched one conversation at a time */
        const std::set<std::string> changed_set(changed.begin(), changed.end());
        MessageRows rows;
        std::vector<std::string> missing;
        for (const auto &c : ev.page.conversations) {
            if (!changed_set.count(c.id))
                continue;
            if (!c.has_messages) {
                missing.push_back(c.id);
                continue;
            }
            for (const auto &m : c.messages)
                rows.add(c.id, m, a);
        }
        if (!missing.empty())
            fetch_messages(http, g, a, missing, rows, counts);
        with_spi([&] { rows.store(a, counts); });
    }
    return std::nullopt;
}

} // namespace

/*
 * ig_sync_inbox(location_id text)
 *   RETURNS TABLE (conversations int, messages int, identities int, api_calls int)
 */
IGID_FUNCTION(ig_sync_inbox)
{
    const std::string location_id = text_arg(fcinfo, 0, "location_id");
    SyncCounts counts;
    std::vector<SyncFailure> failures;
    size_t n_accounts = 0;
    const double started = (double) time(nullptr);

    with_spi([&] {
        /* internal statements run as the extension owner: the caller needs
         * only EXECUTE on this function (see privilege.h) */
        AsExtensionOwner as_owner;
        auto accounts = location_accounts(location_id);
        HttpOptions opts;
        opts.max_concurrency = settings.max_concurrency;
        opts.per_account_concurrency = settings.max_concurrency;
        opts.requests_per_second = settings.requests_per_second;
        opts.total_timeout_ms = settings.http_timeout_ms;
        opts.connect_timeout_ms = std::min(5000, settings.http_timeout_ms);
        opts.ca_file = settings.ca_file ? settings.ca_file : "";
        HttpDriver http(opts);
        std::vector<AccountEvent> events;
        for (const auto &a : accounts) {
            require_account_usable(a.ig_account_id);
            if (auto e = sync_account(http, a, location_id, counts)) {
                failures.push_back({a.ig_account_id, e->status, e->error_message, e->error_code});
                events.push_back(std::move(*e));
            } else {
                events.push_back({a.ig_account_id, "active", {}, {}, {}, {}, true, a.token_rotated_at});
            }
        }
        if (failures.empty() || graph_settings.sync_failure_level == (int) SyncFailureLevel::warning) {
            apply_account_events(events);
            spi_exec("SELECT ig_identity.record_run('sync', $1, pg_catalog.to_timestamp($2::pg_catalog.float8),"
                     " $3::pg_catalog.int4, $4::pg_catalog.int4, $5::pg_catalog.int4, $6::pg_catalog.jsonb)",
                     {text_param(location_id), text_param(std::to_string(started)),
                      text_param(std::to_string(counts.conversations)),
                      text_param(std::to_string(failures.size())), text_param(std::to_string(accounts.size())),
                      text_param(failures_json(failures))});
        }
        n_accounts = accounts.size();
    });

    /* a sync whose calls failed is not a success: say so, with the SQLSTATE
     * of what the account needs */
    if (!failures.empty()) {
        const SyncFailure &f = failures.front();
        std::string detail = "Instagram account \"" + f.ig_account_id + "\" (" + f.status + "): " + f.detail;
        if (detail.empty() || detail.back() != '.')
            detail += ".";
        if (failures.size() > 1)
            detail += " " + std::to_string(failures.size() - 1) + " more of the location's " +
                      std::to_string(n_accounts) + " accounts failed too.";
        const bool warn = graph_settings.sync_failure_level == (int) SyncFailureLevel::warning;
        const std::string message = "ig_sync_inbox failed for " + std::to_string(failures.size()) + " of " +
                                    std::to_string(n_accounts) + " accounts of location \"" + location_id + "\"";
        const std::string hint =
            warn ? "The failure is recorded in ig_identity_status (last_error) and ig_identity.refresh_runs."
                 : "SET ig_identity.sync_failure = warning to record failures in ig_identity_status and the "
                   "run history and return the counts instead of raising.";
        if (!warn)
            throw Error(failure_sqlstate(f), message, detail, hint);
        const int code = failure_sqlstate(f);
        pg_call([&] {
            ereport(WARNING, (errcode(code), errmsg("%s", message.c_str()), errdetail("%s", detail.c_str()),
                              errhint("%s", hint.c_str())));
        });
    }

    return composite_result(fcinfo, {OutValue::of(counts.conversations), OutValue::of(counts.messages),
                                     OutValue::of((long long) counts.identities.size()), OutValue::of(counts.calls)});
}
