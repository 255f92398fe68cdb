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
#include "core/usage.h"
#include "pg/inbox.h"
#include "pg/privilege.h"
#include "pg/refresh.h"
#include "pg/result.h"
#include "pg/settings.h"

extern "C" {
#include "miscadmin.h"
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
        for (auto &r : http.step(100)) {
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

/* An account-level stop or pause learned from a failed call. */
std::optional<AccountEvent> account_event(const AccountCreds &a, const Action &action,
                                          const std::optional<GraphError> &error,
                                          std::chrono::milliseconds pause_for, const std::string &detail)
{
    if (!action.stops_account() && !action.pauses_account())
        return std::nullopt;
    AccountEvent e{a.ig_account_id, action.stops_account() ? std::string(action_name(action.kind)) : "paused",
                   {}, {}, detail, {}, false, a.token_rotated_at};
    if (action.pauses_account())
        e.paused_until = (double) time(nullptr) + (double) pause_for.count() / 1000.0;
    if (error)
        e.error_code = (int) error->code;
    return e;
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

/* Syncs one account; returns its stop/pause, if one happened. */
std::optional<AccountEvent> sync_account(HttpDriver &http, const AccountCreds &a,
                                         const std::string &location_id, SyncCounts &counts)
{
    const std::string override_url = settings.graph_api_url ? settings.graph_api_url : "";
    ApiHost host = api_host_from_name(a.api_host).value_or(ApiHost::facebook);
    GraphAccount g{a.ig_account_id, a.token, host, graph_base_url(override_url, host)};
    ConversationPager pager(g, a.ig_account_id);

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
        std::vector<std::string> changed;
        if (!ids.empty()) {
            changed = store_conversations({text_param(a.ig_account_id), text_param(location_id),
                                           text_array_param(ids), text_array_param(participants),
                                           timestamptz_array_param(updated)});
        }
        counts.conversations += (long long) ids.size();
        store_identities(a, identities, counts);

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
        rows.store(a, counts);
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
        HttpDriver http(opts);
        std::vector<AccountEvent> events;
        for (const auto &a : accounts) {
            require_account_usable(a.ig_account_id);
            if (auto e = sync_account(http, a, location_id, counts))
                events.push_back(std::move(*e));
            else
                events.push_back({a.ig_account_id, "active", {}, {}, {}, {}, true, a.token_rotated_at});
        }
        apply_account_events(events);
    });

    return composite_result(fcinfo, {OutValue::of(counts.conversations), OutValue::of(counts.messages),
                                     OutValue::of((long long) counts.identities.size()), OutValue::of(counts.calls)});
}
