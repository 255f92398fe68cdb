// profile_fetcher.cpp — many profiles, many accounts, the policy applied (see profile_fetcher.h).
#include "profile_fetcher.h"

#include "redact.h"

#include <deque>
#include <map>
#include <thread>
#include <unordered_map>

namespace igid {

namespace {

BodyState body_state(ProfileStatus s) {
    switch (s) {
    case ProfileStatus::ok:
    case ProfileStatus::graph_error:
        return BodyState::ok;
    case ProfileStatus::no_information:
        return BodyState::no_information;
    case ProfileStatus::id_mismatch:
        return BodyState::id_mismatch;
    case ProfileStatus::malformed:
        return BodyState::malformed;
    }
    return BodyState::malformed;
}

// One short line saying what the last answer was, for logs and the status view.
std::string describe(const HttpResponse &r, const ProfileResult &pr) {
    if (r.error != TransportError::none)
        return std::string(transport_error_name(r.error)) + ": " + r.error_text;
    if (pr.error) {
        std::string s = "graph error " + std::to_string(pr.error->code);
        if (pr.error->subcode)
            s += "/" + std::to_string(*pr.error->subcode);
        return s + ": " + pr.error->message;
    }
    if (r.status < 200 || r.status > 299)
        return "http status " + std::to_string(r.status) + " without an error envelope";
    switch (pr.status) {
    case ProfileStatus::ok: return "ok";
    case ProfileStatus::no_information: return "empty answer ({}): no information";
    case ProfileStatus::id_mismatch: return "answer for a different id: rejected";
    case ProfileStatus::malformed: return "malformed answer";
    case ProfileStatus::graph_error: return "unusable error envelope";
    }
    return "unknown";
}

} // namespace

struct ProfileFetcher::Impl {
    struct Pending {
        std::string igsid;
        int attempts = 0;
        bool basic_fields = false;
    };

    struct Account {
        GraphAccount graph;
        double base_rate = 0;
        int consecutive_throttles = 0;
        std::deque<Pending> fresh;                     // never sent yet
        std::multimap<TimePoint, Pending> retries;     // waiting for their backoff
        int in_driver = 0;                             // queued or running in the driver
        std::optional<Action> blocked;                 // why no call may be made
        std::optional<TimePoint> blocked_until;        // nullopt with blocked: for good
        std::string blocked_detail;
    };

    struct Sent {
        std::string account;
        Pending pending;
    };

    ProfileFetcherOptions options;
    HttpDriver driver;
    std::map<std::string, Account> accounts;
    std::unordered_map<std::uint64_t, Sent> sent;
    std::vector<ProfileOutcome> outbox;
    std::uint64_t next_id = 1;

    explicit Impl(ProfileFetcherOptions opts) : options(std::move(opts)), driver(prepare(options)) {
        if (!options.rng)
            options.rng = default_rng();
        if (options.max_attempts < 1)
            options.max_attempts = 1;
    }

    static HttpOptions prepare(ProfileFetcherOptions &o) {
        if (!o.http.clock)
            o.http.clock = steady_now;
        return o.http;
    }

    TimePoint now() const { return options.http.clock(); }

    int driver_slots() const { return std::max(1, options.http.per_account_concurrency) * 2; }

    // Lifts a pause that has ended; a stop stays.
    bool is_blocked(Account &a) {
        if (a.blocked && a.blocked_until && *a.blocked_until <= now()) {
            a.blocked.reset();
            a.blocked_until.reset();
            a.blocked_detail.clear();
        }
        return a.blocked.has_value();
    }

    ProfileOutcome outcome(const Account &a, const Pending &p) const {
        ProfileOutcome o;
        o.account_id = a.graph.account_id;
        o.igsid = p.igsid;
        o.attempts = p.attempts;
        return o;
    }

    void emit_not_attempted(const Account &a, const Pending &p) {
        ProfileOutcome o = outcome(a, p);
        o.attempted = false;
        o.action = a.blocked.value_or(Action{});
        o.paused_until = a.blocked_until;
        o.detail = "not attempted: " + a.blocked_detail;
        outbox.push_back(std::move(o));
    }

    // Stops calls for an account and hands back everything it still had.
    void block(Account &a, Action why, std::optional<TimePoint> until, std::string detail) {
        if (a.blocked && a.blocked->stops_account() && !why.stops_account())
            return; // a pause never lifts a stop
        a.blocked = why;
        a.blocked_until = until;
        a.blocked_detail = std::move(detail);
        for (const Pending &p : a.fresh)
            emit_not_attempted(a, p);
        for (const auto &entry : a.retries)
            emit_not_attempted(a, entry.second);
        a.fresh.clear();
        a.retries.clear();
        driver.pause_account(a.graph.account_id, until.value_or(TimePoint::max()));
    }

    void apply_usage(Account &a, const Usage &usage) {
        if (!usage.known())
            return;
        UsageAdvice advice = usage_advice(usage, a.base_rate);
        if (advice.pause) {
            Action why;
            why.kind = ActionKind::throttled;
            block(a, why, now() + advice.pause_for,
                  "usage at " + std::to_string(static_cast<int>(*usage.max_percent())) + "%");
            return;
        }
        driver.set_account_rate(a.graph.account_id, advice.rate);
    }

    void add_account(GraphAccount graph, double rate, int throttles) {
        std::string id = graph.account_id;
        Account &a = accounts[id];
        a.graph = std::move(graph);
        a.base_rate = rate >= 0 ? rate : options.http.requests_per_second;
        a.consecutive_throttles = std::max(0, throttles);
        driver.set_account_rate(id, a.base_rate);
    }

    void add(std::string_view account_id, std::string_view igsid) {
        auto it = accounts.find(std::string(account_id));
        if (it == accounts.end() || !is_valid_igsid(igsid)) {
            ProfileOutcome o;
            o.account_id = std::string(account_id);
            o.igsid = redact(igsid);
            o.attempted = false;
            o.action.kind = ActionKind::permanent;
            o.detail = it == accounts.end() ? "unknown account" : "invalid IGSID";
            outbox.push_back(std::move(o));
            return;
        }
        Account &a = it->second;
        Pending p;
        p.igsid = std::string(igsid);
        if (is_blocked(a))
            emit_not_attempted(a, p);
        else
            a.fresh.push_back(std::move(p));
    }

    // Hands due ids to the driver, a few per account so memory stays bounded.
    void feed() {
        TimePoint t = now();
        for (auto &entry : accounts) {
            Account &a = entry.second;
            if (is_blocked(a))
                continue;
            while (a.in_driver < driver_slots()) {
                Pending p;
                if (!a.retries.empty() && a.retries.begin()->first <= t) {
                    p = std::move(a.retries.begin()->second);
                    a.retries.erase(a.retries.begin());
                } else if (!a.fresh.empty()) {
                    p = std::move(a.fresh.front());
                    a.fresh.pop_front();
                } else {
                    break;
                }
                auto request = profile_request(a.graph, p.igsid, p.basic_fields);
                if (!request)
                    continue;
                request->id = next_id++;
                ++p.attempts;
                sent.emplace(request->id, Sent{a.graph.account_id, std::move(p)});
                driver.submit(std::move(*request));
                ++a.in_driver;
            }
        }
    }

    std::optional<TimePoint> next_retry() const {
        std::optional<TimePoint> best;
        for (const auto &entry : accounts)
            if (!entry.second.retries.empty()) {
                TimePoint t = entry.second.retries.begin()->first;
                best = best ? std::min(*best, t) : t;
            }
        return best;
    }

    void handle(HttpResponse &r) {
        auto it = sent.find(r.id);
        if (it == sent.end())
            return;
        Sent s = std::move(it->second);
        sent.erase(it);
        Account &a = accounts[s.account];
        a.in_driver = std::max(0, a.in_driver - 1);
        Pending &p = s.pending;
        if (!r.attempted) {
            --p.attempts;
            if (is_blocked(a))
                emit_not_attempted(a, p);
            else
                a.fresh.push_front(std::move(p)); // the pause ended meanwhile
            return;
        }
        Usage usage = parse_usage_headers(
            r.app_usage ? std::optional<std::string_view>(*r.app_usage) : std::nullopt,
            r.business_usage ? std::optional<std::string_view>(*r.business_usage) : std::nullopt);
        ProfileResult pr;
        PolicyInput in;
        in.http_status = r.status;
        in.transport = r.error;
        if (r.error == TransportError::none) {
            pr = parse_profile(r.body, p.igsid);
            if (pr.error)
                in.error = &*pr.error;
            in.body = body_state(pr.status);
        }
        Action action = classify(in);

        ProfileOutcome o = outcome(a, p);
        o.action = action;
        o.http_status = r.status;
        o.transport = r.error;
        o.usage = usage;
        o.detail = redact(describe(r, pr), {a.graph.token});
        if (pr.error) {
            o.error = pr.error;
            o.error->message = redact(o.error->message, {a.graph.token});
        }

        const TimePoint t = now();
        switch (action.kind) {
        case ActionKind::ok:
            a.consecutive_throttles = 0;
            o.profile = std::move(pr.profile);
            outbox.push_back(std::move(o));
            apply_usage(a, usage);
            return;
        case ActionKind::retry:
            if (p.attempts < options.max_attempts) {
                auto delay = backoff_delay(p.attempts, options.backoff_base, options.backoff_cap, options.rng);
                a.retries.emplace(t + delay, std::move(p));
                apply_usage(a, usage);
                return;
            }
            o.detail = "gave up after " + std::to_string(p.attempts) + " attempts: " + o.detail;
            outbox.push_back(std::move(o));
            apply_usage(a, usage);
            return;
        case ActionKind::field_not_permitted:
            if (!p.basic_fields) {
                p.basic_fields = true;
                a.retries.emplace(t, std::move(p));
                return;
            }
            o.action.kind = ActionKind::unavailable;
            outbox.push_back(std::move(o));
            return;
        case ActionKind::throttled: {
            ++a.consecutive_throttles;
            TimePoint until = t + throttle_pause(usage, a.consecutive_throttles, options.rng);
            o.paused_until = until;
            std::string why = o.detail;
            outbox.push_back(std::move(o));
            if (action.app_wide) {
                for (auto &entry : accounts)
                    block(entry.second, action, until, "app-wide throttle: " + why);
            } else {
                block(a, action, until, why);
            }
            return;
        }
        case ActionKind::policy_block: {
            TimePoint until = t + kPolicyBlockPause;
            o.paused_until = until;
            std::string why = o.detail;
            outbox.push_back(std::move(o));
            block(a, action, until, why);
            return;
        }
        case ActionKind::reauth_required:
        case ActionKind::permission_error: {
            std::string why = o.detail;
            outbox.push_back(std::move(o));
            block(a, action, std::nullopt, why);
            return;
        }
        default:
            outbox.push_back(std::move(o));
            apply_usage(a, usage);
            return;
        }
    }

    std::vector<ProfileOutcome> step(int max_wait_ms) {
        feed();
        int wait = outbox.empty() ? std::max(0, max_wait_ms) : 0;
        if (auto due = next_retry()) {
            auto ms = std::chrono::ceil<std::chrono::milliseconds>(*due - now()).count();
            wait = static_cast<int>(std::clamp<long long>(ms, 0, wait));
        }
        if (driver.idle()) {
            // Nothing on the wire: only a backoff to wait out (bounded by max_wait_ms).
            if (wait > 0 && next_retry())
                std::this_thread::sleep_for(std::chrono::milliseconds(wait));
        } else {
            for (HttpResponse &r : driver.step(wait))
                handle(r);
        }
        feed();
        std::vector<ProfileOutcome> out;
        out.swap(outbox);
        return out;
    }

    std::size_t pending() const {
        std::size_t n = sent.size();
        for (const auto &entry : accounts)
            n += entry.second.fresh.size() + entry.second.retries.size();
        return n;
    }

    void cancel() {
        driver.cancel_all();
        sent.clear();
        outbox.clear();
        for (auto &entry : accounts) {
            entry.second.fresh.clear();
            entry.second.retries.clear();
            entry.second.in_driver = 0;
        }
    }
};

ProfileFetcher::ProfileFetcher(ProfileFetcherOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
ProfileFetcher::~ProfileFetcher() = default;

void ProfileFetcher::add_account(GraphAccount account, double requests_per_second, int consecutive_throttles) {
    impl_->add_account(std::move(account), requests_per_second, consecutive_throttles);
}

void ProfileFetcher::hold_account(std::string_view account_id, TimePoint earliest) {
    impl_->driver.hold_account(std::string(account_id), earliest);
}

bool ProfileFetcher::has_account(std::string_view account_id) const {
    return impl_->accounts.count(std::string(account_id)) > 0;
}

void ProfileFetcher::add(std::string_view account_id, std::string_view igsid) { impl_->add(account_id, igsid); }

std::vector<ProfileOutcome> ProfileFetcher::step(int max_wait_ms) { return impl_->step(max_wait_ms); }

bool ProfileFetcher::done() const { return impl_->outbox.empty() && impl_->pending() == 0; }

void ProfileFetcher::cancel() { impl_->cancel(); }

std::size_t ProfileFetcher::pending() const { return impl_->pending(); }

} // namespace igid
