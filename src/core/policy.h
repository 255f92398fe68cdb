// policy.h — what to do after a Graph API answer: the error-class table of
// The error policy of docs/graph_api.md as one function, plus backoff, throttle pauses and the
// usage-based slow-down. Classification uses code/subcode only — never the
// `type`, the message text, or the HTTP status (except 429/5xx without an
// error envelope).
#pragma once

#include "graph_error.h"
#include "random.h"
#include "transport_error.h"
#include "usage.h"

#include <chrono>
#include <optional>
#include <string_view>

namespace igid {

enum class ActionKind {
    ok,                  // use the answer
    retry,               // transient: retry with backoff, few attempts
    throttled,           // pause the account (all accounts when app_wide)
    reauth_required,     // stop the account: token expired/revoked/invalid
    permission_error,    // stop the account: permission or configuration
    consent_required,    // the person has not messaged the account: wait for them
    unavailable,         // person blocked/deleted/unknown: long retry delay
    field_not_permitted, // retry once with basic fields, then unavailable
    permanent,           // bad request; do not retry; log for developers
    policy_block,        // pause the account for long (24 h)
    no_information,      // 200 with {}: keep what we have, try again later
};

constexpr std::string_view action_name(ActionKind k) {
    switch (k) {
    case ActionKind::ok: return "ok";
    case ActionKind::retry: return "retry";
    case ActionKind::throttled: return "throttled";
    case ActionKind::reauth_required: return "reauth_required";
    case ActionKind::permission_error: return "permission_error";
    case ActionKind::consent_required: return "consent_required";
    case ActionKind::unavailable: return "unavailable";
    case ActionKind::field_not_permitted: return "field_not_permitted";
    case ActionKind::permanent: return "permanent";
    case ActionKind::policy_block: return "policy_block";
    case ActionKind::no_information: return "no_information";
    }
    return "permanent";
}

struct Action {
    ActionKind kind = ActionKind::ok;
    bool app_wide = false; // throttled with code 4: every account of the app

    // True when no further call should be made for the account.
    bool stops_account() const {
        return kind == ActionKind::reauth_required || kind == ActionKind::permission_error;
    }
    // True when the account must wait before its next call.
    bool pauses_account() const { return kind == ActionKind::throttled || kind == ActionKind::policy_block; }
};

// What the body turned out to be, for answers without a transport error.
enum class BodyState { ok, malformed, no_information, id_mismatch };

struct PolicyInput {
    long http_status = 0;                   // 0 when no HTTP answer
    const GraphError *error = nullptr;      // the parsed envelope, if any
    TransportError transport = TransportError::none;
    BodyState body = BodyState::ok;
};

// The whole error-class table. Order: transport errors; then the envelope's
// code/subcode (throttle, stop, policy block, person-level codes, transient,
// 100 other, unknown → permanent); then 429/5xx without an envelope; then the
// body state of a 2xx answer. A non-2xx answer without an envelope that is
// not 429/5xx counts as a malformed body (retry).
Action classify(const PolicyInput &in);

// Exponential backoff with full jitter: uniform in [0, min(cap, base·2^(attempt-1))].
// attempt is 1 for the first retry.
std::chrono::milliseconds backoff_delay(int attempt, std::chrono::milliseconds base,
                                        std::chrono::milliseconds cap, const Rng &rng);

// How long a throttled account waits: the usage header's regain time when it
// gives one (plus up to 10 % jitter), else 60 → 300 → 900 s by the count of
// consecutive throttles (1-based), each with up to 25 % jitter.
std::chrono::milliseconds throttle_pause(const Usage &usage, int consecutive_throttles, const Rng &rng);

// Policy blocks (368, 36103) pause the account this long.
constexpr std::chrono::hours kPolicyBlockPause{24};

constexpr double kUsageSlowDownPercent = 80.0;
// Used as the base when the configured rate is 0 (unlimited) and usage is high.
constexpr double kSlowDownBaseRate = 5.0;

struct UsageAdvice {
    bool pause = false;                 // usage ≥ 100 %: pause the account
    std::chrono::milliseconds pause_for{0};
    double rate = 0;                    // requests per second to use; 0 = unlimited
};

// Below 80 % (or unknown): the configured rate. From 80 % to 100 %: the rate
// falls linearly to 10 % of its base (an unlimited base becomes 5/s first).
// At 100 % or more: pause for the regain time, else 60 s.
UsageAdvice usage_advice(const Usage &usage, double base_rate);

} // namespace igid
