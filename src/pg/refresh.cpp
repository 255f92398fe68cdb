/*
 * refresh.cpp — drives the core ProfileFetcher from PostgreSQL: settings in,
 * outcomes out, in the tables' terms (see refresh.h).  No PostgreSQL call is
 * made here except through the caller's progress and sink callbacks.
 */
#include "pg/graph_settings.h"
#include "pg/refresh.h"
#include "pg/settings.h"

#include "pg/json_build.h"

#include "core/graph_client.h"
#include "core/profile_fetcher.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>

namespace igid::pg {

namespace {

/* Added to the gap between two calls of one account: calls spaced exactly
 * 1/rate apart reach Meta with some jitter, and a 1 s window there could
 * then count rate + 1 of them. */
constexpr double kPaceMarginS = 0.02;

/* How long a person waits after transient failures used up their attempts. */
constexpr double kRetryLaterS = 15 * 60.0;

/* A steady-clock instant as seconds since the Unix epoch. */
double to_epoch(TimePoint t)
{
    using namespace std::chrono;
    const auto delta = duration_cast<duration<double>>(t - steady_clock::now()).count();
    return (double) time(nullptr) + delta;
}

std::string usage_json(const Usage &u)
{
    if (!u.known() && !u.regain_minutes)
        return {};
    auto num = [](const std::optional<double> &v) {
        char buf[32];
        if (!v)
            return std::string("null");
        snprintf(buf, sizeof buf, "%.1f", *v);
        return std::string(buf);
    };
    return "{\"app_percent\":" + num(u.app_percent) + ",\"business_percent\":" +
           num(u.business_percent) + ",\"regain_minutes\":" + num(u.regain_minutes) + "}";
}

/* The error text shown to users: the Graph message, else what the transport saw. */
std::string error_text(const ProfileOutcome &o)
{
    if (o.error && !o.error->message.empty())
        return o.error->message;
    if (!o.detail.empty())
        return o.detail;
    if (o.transport != TransportError::none)
        return std::string(transport_error_name(o.transport));
    return std::string(action_name(o.action.kind));
}

FetchOutcome convert(const ProfileOutcome &o)
{
    FetchOutcome f;
    f.ig_account_id = o.account_id;
    f.ig_user_id = o.igsid;
    if (o.error)
        f.error_code = (int) o.error->code;
    else if (o.http_status >= 400)
        f.error_code = (int) o.http_status;
    if (o.action.kind != ActionKind::ok)
        f.error_message = error_text(o);

    if (!o.attempted) {
        f.kind = FetchOutcome::Kind::not_attempted;
        if (o.paused_until)
            f.next_try_at = to_epoch(*o.paused_until);
        return f;
    }
    switch (o.action.kind) {
    case ActionKind::ok:
        f.kind = FetchOutcome::Kind::ok;
        if (o.profile) {
            f.username = o.profile->username;
            f.name = o.profile->name;
            f.profile_pic = o.profile->profile_pic;
        }
        break;
    case ActionKind::consent_required:
        f.kind = FetchOutcome::Kind::consent_required;
        break;
    case ActionKind::unavailable:
    case ActionKind::field_not_permitted:
        f.kind = FetchOutcome::Kind::unavailable;
        break;
    case ActionKind::permanent:
        f.kind = FetchOutcome::Kind::permanent;
        break;
    case ActionKind::retry:
    case ActionKind::no_information:
        f.kind = FetchOutcome::Kind::retry_later;
        f.next_try_at = (double) time(nullptr) + kRetryLaterS;
        break;
    default:
        /* the account was stopped or paused by this very answer: nothing is
         * learned about the person, who waits for the account */
        f.kind = FetchOutcome::Kind::not_attempted;
        if (o.paused_until)
            f.next_try_at = to_epoch(*o.paused_until);
        break;
    }
    return f;
}

/* Folds one outcome into its account's event. */
void note_account(AccountEvent &e, const ProfileOutcome &o)
{
    if (o.usage.known())
        e.usage_json = usage_json(o.usage);
    if (o.action.kind == ActionKind::ok)
        e.had_success = true;
    if (!o.attempted || e.status != "active")
        return; /* the first stop or pause is the one that matters */
    if (o.action.stops_account()) {
        e.status = std::string(action_name(o.action.kind));
        e.error_code = o.error ? std::optional<int>((int) o.error->code) : std::nullopt;
        e.error_message = error_text(o);
    } else if (o.action.pauses_account()) {
        e.status = "paused";
        if (o.paused_until)
            e.paused_until = to_epoch(*o.paused_until);
        e.error_code = o.error ? std::optional<int>((int) o.error->code)
                               : std::optional<int>((int) o.http_status);
        e.error_message = error_text(o);
    } else if ((o.action.kind == ActionKind::retry || o.action.kind == ActionKind::permanent) &&
               e.error_message.empty()) {
        /* a call that failed for the account (no answer, 5xx, bad request):
         * kept as the account's error unless another call succeeds */
        e.error_code = o.error ? std::optional<int>((int) o.error->code)
                               : o.http_status ? std::optional<int>((int) o.http_status) : std::nullopt;
        e.error_message = error_text(o);
    }
}

ProfileFetcherOptions fetcher_options()
{
    ProfileFetcherOptions opts;
    opts.http.max_concurrency = settings.max_concurrency;
    opts.http.per_account_concurrency = settings.max_concurrency;
    const double interval_s = pace_interval_s();
    opts.http.requests_per_second = interval_s > 0 ? 1.0 / interval_s : 0;
    opts.http.total_timeout_ms = settings.http_timeout_ms;
    opts.http.connect_timeout_ms = std::min(5000, settings.http_timeout_ms);
    opts.http.ca_file = settings.ca_file ? settings.ca_file : "";
    return opts;
}

} // namespace

double pace_interval_s()
{
    if (settings.requests_per_second <= 0)
        return 0;
    return 1.0 / settings.requests_per_second + kPaceMarginS;
}

std::vector<AccountEvent> fetch_profiles(const std::vector<AccountCreds> &accounts,
                                         const std::vector<Target> &targets,
                                         const Progress &on_progress, const OutcomeSink &sink,
                                         size_t batch_size, const Refill &refill)
{
    std::map<std::string, AccountEvent> events;
    ProfileFetcher fetcher(fetcher_options());
    auto add_account = [&](const AccountCreds &a) {
        if (fetcher.has_account(a.ig_account_id))
            return;
        fetcher.add_account(graph_account(a.ig_account_id, a.token, a.api_host, a.app_secret),
                            /* the rate limit from the options */ -1, a.consecutive_throttles);
        if (a.earliest_start)
            fetcher.hold_account(a.ig_account_id, *a.earliest_start);
        events[a.ig_account_id] =
            AccountEvent{a.ig_account_id, "active", {}, {}, {}, {}, false, a.token_rotated_at};
    };
    for (const auto &a : accounts)
        add_account(a);
    /* targets a refill hands over, after the caller's */
    std::vector<Target> more;
    std::vector<AccountCreds> more_accounts;
    size_t next_more = 0;

    /* Ids are handed to the fetcher a window at a time, so neither pending
     * ids nor outcomes ever grow with the number of targets. */
    /* (a refill bounds what it hands over itself: then the whole of it,
     * so that every account with work has it at hand for its pace) */
    const size_t window = refill ? std::numeric_limits<size_t>::max() : std::max<size_t>(batch_size, 64);
    size_t next = 0;
    std::vector<FetchOutcome> batch;
    batch.reserve(batch_size);
    for (;;) {
        if (refill) {
            const size_t held = fetcher.pending() + (targets.size() - next) + (more.size() - next_more);
            more_accounts.clear();
            refill(held, more_accounts, more);
            for (const auto &a : more_accounts)
                add_account(a);
        }
        while (next < targets.size() && fetcher.pending() < window) {
            fetcher.add(targets[next].ig_account_id, targets[next].ig_user_id);
            next++;
        }
        while (next >= targets.size() && next_more < more.size() && fetcher.pending() < window) {
            fetcher.add(more[next_more].ig_account_id, more[next_more].ig_user_id);
            next_more++;
        }
        if (next_more == more.size() && !more.empty()) {
            more.clear();
            next_more = 0;
        }
        if (next >= targets.size() && next_more >= more.size() && fetcher.done())
            break;
        on_progress();
        for (const auto &o : fetcher.step(100)) {
            auto it = events.find(o.account_id);
            if (it != events.end())
                note_account(it->second, o);
            batch.push_back(convert(o));
            if (batch.size() >= batch_size) {
                sink(std::move(batch));
                batch.clear();
                batch.reserve(batch_size);
            }
        }
    }
    if (!batch.empty())
        sink(std::move(batch));

    std::vector<AccountEvent> out;
    for (auto &[id, e] : events) {
        /* a fetch whose calls all failed shows its error on the account;
         * one with a success does not (its errors are per person) */
        if (e.status == "active" && e.had_success) {
            e.error_code.reset();
            e.error_message.clear();
        }
        out.push_back(std::move(e));
    }
    return out;
}

RunSummary::RunSummary(size_t max_errors, bool not_attempted_fails)
    : max_errors_(max_errors), not_attempted_fails_(not_attempted_fails), errors_(json_array())
{
}

RunSummary::~RunSummary()
{
    json_decref(static_cast<json_t *>(errors_));
}

void RunSummary::add_failure(const std::string &ig_account_id, const std::string &ig_user_id,
                             std::optional<int> code, const std::string &message)
{
    failed++;
    json_t *errors = static_cast<json_t *>(errors_);
    if (json_array_size(errors) >= max_errors_)
        return;
    json_t *e = new_json_object();
    json_object_set_new(e, "ig_account_id", json_stringn(ig_account_id.data(), ig_account_id.size()));
    json_object_set_new(e, "ig_user_id", json_stringn(ig_user_id.data(), ig_user_id.size()));
    json_object_set_new(e, "code", code ? json_integer(*code) : json_null());
    json_object_set_new(e, "message", json_stringn(message.data(), message.size()));
    json_array_append_new(errors, e);
}

void RunSummary::count(const std::vector<FetchOutcome> &batch)
{
    for (const auto &o : batch) {
        if (o.kind == FetchOutcome::Kind::ok)
            refreshed++;
        else if (o.kind != FetchOutcome::Kind::not_attempted || not_attempted_fails_)
            add_failure(o.ig_account_id, o.ig_user_id, o.error_code, o.error_message);
    }
}

std::string RunSummary::errors_json() const
{
    char *s = json_dumps(static_cast<json_t *>(errors_), JSON_COMPACT | JSON_ENSURE_ASCII);
    std::string out = s ? s : "[]";
    free(s);
    return out;
}

} // namespace igid::pg
