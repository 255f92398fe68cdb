// policy_test.cpp — the error-class table of docs/graph_api.md, row by row, plus
// backoff bounds, throttle pauses and the usage slow-down.
#include "core/policy.h"

#include <gtest/gtest.h>

using namespace igid;
using namespace std::chrono;

namespace {

GraphError err(long long code, std::optional<long long> subcode = std::nullopt,
               std::optional<bool> transient = std::nullopt, std::string type = "OAuthException") {
    GraphError e;
    e.code = code;
    e.subcode = subcode;
    e.is_transient = transient;
    e.type = std::move(type);
    return e;
}

Action for_error(const GraphError &e, long status = 400) {
    PolicyInput in;
    in.http_status = status;
    in.error = &e;
    return classify(in);
}

ActionKind kind_for(long long code, std::optional<long long> subcode = std::nullopt) {
    return for_error(err(code, subcode)).kind;
}

Action for_status(long status, BodyState body = BodyState::ok) {
    PolicyInput in;
    in.http_status = status;
    in.body = body;
    return classify(in);
}

Action for_transport(TransportError t) {
    PolicyInput in;
    in.transport = t;
    return classify(in);
}

Rng fixed(double v) {
    return [v]() { return v; };
}

} // namespace

TEST(Policy, ReauthRequired190AnySubcodeAnd102) {
    for (auto sub : {std::optional<long long>{}, std::optional<long long>{463}, std::optional<long long>{460},
                     std::optional<long long>{467}, std::optional<long long>{458}})
        EXPECT_EQ(kind_for(190, sub), ActionKind::reauth_required);
    EXPECT_EQ(kind_for(102), ActionKind::reauth_required);
    EXPECT_TRUE(for_error(err(190)).stops_account());
}

TEST(Policy, PermissionError10And200To299) {
    EXPECT_EQ(kind_for(10), ActionKind::permission_error);
    for (long long c : {200, 210, 250, 299})
        EXPECT_EQ(kind_for(c), ActionKind::permission_error) << c;
    EXPECT_TRUE(for_error(err(10)).stops_account());
}

TEST(Policy, Subcode1545041IsNotAPermissionError) {
    EXPECT_EQ(kind_for(200, 1545041), ActionKind::unavailable);
    EXPECT_EQ(kind_for(551, 1545041), ActionKind::unavailable);
    EXPECT_EQ(kind_for(1545041), ActionKind::unavailable);
}

TEST(Policy, ThrottleCodes) {
    for (long long c : {17, 32, 341, 613, 80000, 80002, 80006, 80014}) {
        Action a = for_error(err(c));
        EXPECT_EQ(a.kind, ActionKind::throttled) << c;
        EXPECT_FALSE(a.app_wide) << c;
        EXPECT_TRUE(a.pauses_account());
    }
    EXPECT_NE(kind_for(79999), ActionKind::throttled);
    EXPECT_NE(kind_for(80015), ActionKind::throttled);
}

TEST(Policy, Code4IsAppWide) {
    Action a = for_error(err(4, std::nullopt, true));
    EXPECT_EQ(a.kind, ActionKind::throttled);
    EXPECT_TRUE(a.app_wide);
}

TEST(Policy, Http429WithoutEnvelopeThrottles) {
    EXPECT_EQ(for_status(429).kind, ActionKind::throttled);
}

TEST(Policy, TransientCodes) {
    EXPECT_EQ(kind_for(1), ActionKind::retry);
    EXPECT_EQ(kind_for(2), ActionKind::retry);
    EXPECT_EQ(for_error(err(12345, std::nullopt, true)).kind, ActionKind::retry);
    EXPECT_EQ(for_error(err(100, 999, true)).kind, ActionKind::retry);
}

TEST(Policy, Http5xxWithoutEnvelopeRetries) {
    for (long s : {500, 502, 503, 504})
        EXPECT_EQ(for_status(s).kind, ActionKind::retry) << s;
}

TEST(Policy, TransportErrors) {
    EXPECT_EQ(for_transport(TransportError::timeout).kind, ActionKind::retry);
    EXPECT_EQ(for_transport(TransportError::reset).kind, ActionKind::retry);
    EXPECT_EQ(for_transport(TransportError::connect_failed).kind, ActionKind::retry);
    EXPECT_EQ(for_transport(TransportError::tls).kind, ActionKind::retry);
    EXPECT_EQ(for_transport(TransportError::other).kind, ActionKind::retry);
    EXPECT_EQ(for_transport(TransportError::too_large).kind, ActionKind::permanent);
    EXPECT_EQ(for_transport(TransportError::refused_url).kind, ActionKind::permanent);
}

TEST(Policy, MalformedOrTruncatedBodyRetries) {
    EXPECT_EQ(for_status(200, BodyState::malformed).kind, ActionKind::retry);
    EXPECT_EQ(for_status(200, BodyState::id_mismatch).kind, ActionKind::retry);
    EXPECT_EQ(for_status(400).kind, ActionKind::retry); // a 400 with no envelope is a broken answer
}

TEST(Policy, ConsentRequired230) {
    EXPECT_EQ(kind_for(230), ActionKind::consent_required);
    EXPECT_FALSE(for_error(err(230)).stops_account());
}

TEST(Policy, Unavailable) {
    EXPECT_EQ(kind_for(9010), ActionKind::unavailable);
    EXPECT_EQ(kind_for(551), ActionKind::unavailable);
    EXPECT_EQ(kind_for(100, 33), ActionKind::unavailable);
    EXPECT_EQ(kind_for(100, 2534014), ActionKind::unavailable);
    EXPECT_EQ(kind_for(100, 2018001), ActionKind::unavailable);
}

TEST(Policy, FieldNotPermitted) {
    EXPECT_EQ(kind_for(2018218), ActionKind::field_not_permitted);
    EXPECT_EQ(kind_for(2018247), ActionKind::field_not_permitted);
    EXPECT_EQ(kind_for(100, 2018218), ActionKind::field_not_permitted);
    EXPECT_EQ(kind_for(100, 2018247), ActionKind::field_not_permitted);
}

TEST(Policy, Code100OtherIsPermanent) {
    EXPECT_EQ(kind_for(100), ActionKind::permanent);
    EXPECT_EQ(kind_for(100, 1234), ActionKind::permanent);
}

TEST(Policy, PolicyBlock) {
    EXPECT_EQ(kind_for(368), ActionKind::policy_block);
    EXPECT_EQ(kind_for(36103), ActionKind::policy_block);
    EXPECT_TRUE(for_error(err(368)).pauses_account());
}

TEST(Policy, OkAndNoInformation) {
    EXPECT_EQ(for_status(200).kind, ActionKind::ok);
    EXPECT_EQ(for_status(200, BodyState::no_information).kind, ActionKind::no_information);
}

TEST(Policy, NeverClassifiesOnHttpStatusWhenAnEnvelopeExists) {
    // A 500 carrying 190 is still reauth; a 400 carrying code 2 is still transient;
    // a 200 carrying 230 is still consent.
    EXPECT_EQ(for_error(err(190), 500).kind, ActionKind::reauth_required);
    EXPECT_EQ(for_error(err(2), 400).kind, ActionKind::retry);
    EXPECT_EQ(for_error(err(230), 200).kind, ActionKind::consent_required);
    EXPECT_EQ(for_error(err(100), 429).kind, ActionKind::permanent);
}

TEST(Policy, NeverClassifiesOnTypeOrMessage) {
    // Trap 6: OAuthException is not "token expired".
    GraphError e = err(4, std::nullopt, std::nullopt, "OAuthException");
    e.message = "Error validating access token: Session has expired";
    EXPECT_EQ(for_error(e).kind, ActionKind::throttled);
    GraphError f = err(190, 463, std::nullopt, "IGApiException");
    EXPECT_EQ(for_error(f).kind, ActionKind::reauth_required);
}

// Meta's error guide: 3 is a capability or permission the app lacks, not a row fault.
TEST(Policy, ApiMethodIsPermissionError) {
    EXPECT_EQ(kind_for(3), ActionKind::permission_error);
}

TEST(Policy, UnknownCodeIsPermanent) {
    EXPECT_EQ(kind_for(803), ActionKind::permanent);
}

TEST(Backoff, FullJitterBounds) {
    const milliseconds base{500}, cap{30000};
    EXPECT_EQ(backoff_delay(1, base, cap, fixed(0.0)), milliseconds(0));
    EXPECT_EQ(backoff_delay(1, base, cap, fixed(1.0)), milliseconds(500));
    EXPECT_EQ(backoff_delay(2, base, cap, fixed(1.0)), milliseconds(1000));
    EXPECT_EQ(backoff_delay(3, base, cap, fixed(0.5)), milliseconds(1000));
    EXPECT_EQ(backoff_delay(10, base, cap, fixed(1.0)), cap);
    EXPECT_EQ(backoff_delay(1000, base, cap, fixed(1.0)), cap);
    EXPECT_EQ(backoff_delay(0, base, cap, fixed(1.0)), milliseconds(500));
}

TEST(Backoff, RandomStaysInRange) {
    Rng rng = default_rng();
    for (int attempt = 1; attempt < 12; ++attempt)
        for (int i = 0; i < 100; ++i) {
            auto d = backoff_delay(attempt, milliseconds(100), milliseconds(5000), rng);
            EXPECT_GE(d.count(), 0);
            EXPECT_LE(d.count(), std::min<long long>(5000, 100LL << (attempt - 1)));
        }
}

TEST(ThrottlePause, LadderWithJitter) {
    Usage none;
    EXPECT_EQ(throttle_pause(none, 1, fixed(0.0)), seconds(60));
    EXPECT_EQ(throttle_pause(none, 2, fixed(0.0)), seconds(300));
    EXPECT_EQ(throttle_pause(none, 3, fixed(0.0)), seconds(900));
    EXPECT_EQ(throttle_pause(none, 9, fixed(0.0)), seconds(900));
    EXPECT_EQ(throttle_pause(none, 1, fixed(1.0)), seconds(75));
    EXPECT_EQ(throttle_pause(none, 3, fixed(1.0)), milliseconds(1125000));
}

TEST(ThrottlePause, UsesRegainTime) {
    Usage u;
    u.business_percent = 100;
    u.regain_minutes = 7;
    EXPECT_EQ(throttle_pause(u, 1, fixed(0.0)), minutes(7));
    EXPECT_EQ(throttle_pause(u, 3, fixed(1.0)), milliseconds(462000));
    u.regain_minutes = 0; // zero means "not given": fall back to the ladder
    EXPECT_EQ(throttle_pause(u, 2, fixed(0.0)), seconds(300));
}

TEST(UsageAdvice, UnknownOrLowKeepsRate) {
    EXPECT_EQ(usage_advice(Usage{}, 2.0).rate, 2.0);
    Usage u;
    u.app_percent = 79;
    EXPECT_EQ(usage_advice(u, 2.0).rate, 2.0);
    EXPECT_EQ(usage_advice(u, 0).rate, 0.0);
    EXPECT_FALSE(usage_advice(u, 2.0).pause);
}

TEST(UsageAdvice, SlowsDownAbove80) {
    Usage u;
    u.business_percent = 90;
    UsageAdvice a = usage_advice(u, 2.0);
    EXPECT_FALSE(a.pause);
    EXPECT_DOUBLE_EQ(a.rate, 1.0);
    u.business_percent = 99;
    EXPECT_DOUBLE_EQ(usage_advice(u, 2.0).rate, 0.2);
    UsageAdvice unlimited = usage_advice(u, 0);
    EXPECT_GT(unlimited.rate, 0.0); // an unlimited account gets a finite rate
    EXPECT_LT(unlimited.rate, kSlowDownBaseRate);
}

TEST(UsageAdvice, PausesAt100) {
    Usage u;
    u.app_percent = 100;
    UsageAdvice a = usage_advice(u, 2.0);
    EXPECT_TRUE(a.pause);
    EXPECT_EQ(a.pause_for, minutes(1));
    u.regain_minutes = 5;
    EXPECT_EQ(usage_advice(u, 2.0).pause_for, minutes(5));
}

TEST(Policy, ActionNames) {
    EXPECT_EQ(action_name(ActionKind::reauth_required), "reauth_required");
    EXPECT_EQ(action_name(ActionKind::consent_required), "consent_required");
    EXPECT_EQ(transport_error_name(TransportError::too_large), "too_large");
}
