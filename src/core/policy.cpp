// policy.cpp — the error-class table and the waiting rules (see policy.h).
#include "policy.h"

#include <algorithm>
#include <cmath>

namespace igid {

namespace {

bool is_code_or_subcode(const GraphError &e, long long c) { return e.code == c || e.subcode == c; }

Action act(ActionKind k, bool app_wide = false) {
    Action a;
    a.kind = k;
    a.app_wide = app_wide;
    return a;
}

// The error policy table (docs/graph_api.md) for an answer that carries an error envelope.
Action classify_graph_error(const GraphError &e) {
    const long long c = e.code;
    if (c == 4)
        return act(ActionKind::throttled, true);
    if (c == 17 || c == 32 || c == 341 || c == 613 || (c >= 80000 && c <= 80014))
        return act(ActionKind::throttled);
    if (c == 190 || c == 102)
        return act(ActionKind::reauth_required);
    // 1545041 ("this person isn't available") has its own row, as code or subcode.
    if (is_code_or_subcode(e, 1545041))
        return act(ActionKind::unavailable);
    // 230 sits inside the 200–299 permission range but has its own row.
    if (c == 230)
        return act(ActionKind::consent_required);
    // 3 ("API method"): Meta files it with permissions, a capability the app lacks.
    if (c == 3 || c == 10 || (c >= 200 && c <= 299))
        return act(ActionKind::permission_error);
    if (is_code_or_subcode(e, 368) || is_code_or_subcode(e, 36103))
        return act(ActionKind::policy_block);
    if (c == 9010 || c == 551)
        return act(ActionKind::unavailable);
    if (c == 100 && (e.subcode == 33 || e.subcode == 2534014 || e.subcode == 2018001))
        return act(ActionKind::unavailable);
    if (is_code_or_subcode(e, 2018218) || is_code_or_subcode(e, 2018247))
        return act(ActionKind::field_not_permitted);
    if (c == 1 || c == 2 || e.is_transient == true)
        return act(ActionKind::retry);
    return act(ActionKind::permanent);
}

std::chrono::milliseconds seconds_with_jitter(double seconds, double jitter_fraction, const Rng &rng) {
    double r = std::clamp(rng(), 0.0, 1.0);
    return std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0 * (1.0 + jitter_fraction * r)));
}

} // namespace

Action classify(const PolicyInput &in) {
    switch (in.transport) {
    case TransportError::none:
        break;
    case TransportError::too_large:
    case TransportError::refused_url:
        // Repeating would fetch the same oversized body or hit the same guard.
        return act(ActionKind::permanent);
    default:
        return act(ActionKind::retry);
    }
    if (in.error != nullptr)
        return classify_graph_error(*in.error);
    if (in.http_status == 429)
        return act(ActionKind::throttled);
    if (in.http_status >= 500 && in.http_status <= 599)
        return act(ActionKind::retry);
    if (in.http_status < 200 || in.http_status > 299)
        return act(ActionKind::retry);
    switch (in.body) {
    case BodyState::ok:
        return act(ActionKind::ok);
    case BodyState::no_information:
        return act(ActionKind::no_information);
    case BodyState::malformed:
    case BodyState::id_mismatch:
        return act(ActionKind::retry);
    }
    return act(ActionKind::retry);
}

std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds base, std::chrono::milliseconds cap,
                                        const Rng &rng) {
    if (attempt < 1)
        attempt = 1;
    double ceiling = static_cast<double>(base.count()) * std::pow(2.0, std::min(attempt - 1, 30));
    ceiling = std::min(ceiling, static_cast<double>(cap.count()));
    double r = std::clamp(rng(), 0.0, 1.0);
    return std::chrono::milliseconds(static_cast<long long>(ceiling * r));
}

std::chrono::milliseconds throttle_pause(const Usage &usage, int consecutive_throttles, const Rng &rng) {
    if (usage.regain_minutes && *usage.regain_minutes > 0)
        return seconds_with_jitter(std::min(*usage.regain_minutes, 24.0 * 60.0) * 60.0, 0.10, rng);
    static constexpr double kLadder[] = {60.0, 300.0, 900.0};
    int step = std::clamp(consecutive_throttles, 1, 3) - 1;
    return seconds_with_jitter(kLadder[step], 0.25, rng);
}

UsageAdvice usage_advice(const Usage &usage, double base_rate) {
    UsageAdvice a;
    a.rate = base_rate;
    auto pct = usage.max_percent();
    if (!pct || *pct < kUsageSlowDownPercent)
        return a;
    if (*pct >= 100.0) {
        a.pause = true;
        double minutes = (usage.regain_minutes && *usage.regain_minutes > 0) ? *usage.regain_minutes : 1.0;
        a.pause_for = std::chrono::milliseconds(static_cast<long long>(minutes * 60000.0));
        return a;
    }
    double base = base_rate > 0 ? base_rate : kSlowDownBaseRate;
    double factor = std::max(0.1, (100.0 - *pct) / (100.0 - kUsageSlowDownPercent));
    a.rate = base * factor;
    return a;
}

} // namespace igid
