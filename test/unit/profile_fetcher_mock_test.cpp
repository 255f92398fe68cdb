// profile_fetcher_mock_test.cpp — the ProfileFetcher against the local mock:
// each fault class answered with the right Action, retries, pauses and stops
// per account, usage slow-down, and no token in anything it produces.
#include "core/profile_fetcher.h"
#include "test_helpers.h"

#include <gtest/gtest.h>

#include <map>

using namespace igid;
using namespace igid::test;
using namespace std::chrono;

namespace {

ProfileFetcherOptions quick_options() {
    ProfileFetcherOptions o;
    o.backoff_base = milliseconds(20);
    o.backoff_cap = milliseconds(100);
    o.http.total_timeout_ms = 3000;
    o.http.max_concurrency = 8;
    o.http.per_account_concurrency = 4;
    o.rng = []() { return 0.5; };
    return o;
}

std::vector<ProfileOutcome> run(ProfileFetcher &f, milliseconds limit = seconds(30)) {
    std::vector<ProfileOutcome> all;
    auto deadline = steady_clock::now() + limit;
    while (!f.done() && steady_clock::now() < deadline)
        for (ProfileOutcome &o : f.step(100))
            all.push_back(std::move(o));
    EXPECT_TRUE(f.done());
    return all;
}

std::map<std::string, ProfileOutcome> by_igsid(std::vector<ProfileOutcome> v) {
    std::map<std::string, ProfileOutcome> m;
    for (auto &o : v)
        m[o.account_id + "/" + o.igsid] = std::move(o);
    return m;
}

void expect_no_token(const std::vector<ProfileOutcome> &outs) {
    for (const auto &o : outs) {
        for (const char *t : {kTokenA, kTokenB}) {
            EXPECT_EQ(o.detail.find(t), std::string::npos) << o.detail;
            if (o.error) {
                EXPECT_EQ(o.error->message.find(t), std::string::npos);
            }
        }
    }
}

class FetcherMock : public ::testing::Test {
protected:
    MockGraphProcess mock;
    GraphAccount a = mock_account(mock, kAccountA, kTokenA);
    GraphAccount b = mock_account(mock, kAccountB, kTokenB, ApiHost::instagram);

    ProfileOutcome single(const std::string &fault_json, const char *igsid = kJane,
                          ProfileFetcherOptions o = quick_options()) {
        if (!fault_json.empty())
            mock.fault(fault_json);
        ProfileFetcher f(std::move(o));
        f.add_account(a);
        f.add(kAccountA, igsid);
        auto out = run(f);
        EXPECT_EQ(out.size(), 1u);
        expect_no_token(out);
        return out.empty() ? ProfileOutcome{} : out[0];
    }
};

std::string user_fault(const char *user, const std::string &fault, int count = 0) {
    std::string s = R"({"match":{"user":")" + std::string(user) + R"("},)";
    if (count > 0)
        s += R"("count":)" + std::to_string(count) + ",";
    return s + R"("fault":)" + fault + "}";
}

} // namespace

TEST_F(FetcherMock, FetchesForManyAccounts) {
    ProfileFetcher f(quick_options());
    f.add_account(a);
    f.add_account(b);
    for (const char *u : {kJane, kJohn, kStories, kNoConsent, kGone, "1999999999999999"}) {
        f.add(kAccountA, u);
        f.add(kAccountB, u);
    }
    auto outs = run(f);
    ASSERT_EQ(outs.size(), 12u);
    expect_no_token(outs);
    auto m = by_igsid(outs);
    for (const char *acct : {kAccountA, kAccountB}) {
        std::string k = std::string(acct) + "/";
        const ProfileOutcome &jane = m[k + kJane];
        ASSERT_EQ(jane.action.kind, ActionKind::ok) << jane.detail;
        EXPECT_EQ(jane.profile->username, "jane.doe");
        EXPECT_EQ(jane.profile->name, "Jane Doe");
        EXPECT_TRUE(jane.profile->profile_pic);
        EXPECT_EQ(jane.attempts, 1);
        EXPECT_EQ(jane.http_status, 200);
        EXPECT_TRUE(jane.usage.known());
        const ProfileOutcome &john = m[k + kJohn];
        ASSERT_EQ(john.action.kind, ActionKind::ok);
        EXPECT_EQ(john.profile->username, "john.smith");
        EXPECT_FALSE(john.profile->name); // null name is not a value
        EXPECT_EQ(m[k + kNoConsent].action.kind, ActionKind::consent_required);
        EXPECT_EQ(m[k + kNoConsent].error->code, 230);
        EXPECT_EQ(m[k + kGone].action.kind, ActionKind::unavailable);
        EXPECT_EQ(m[k + "1999999999999999"].action.kind, ActionKind::unavailable); // 100/33
    }
    EXPECT_EQ(json_get_int(mock.stats().get(), "unauthorized"), 0);
}

TEST_F(FetcherMock, ProfilePicChangesEveryFetch) {
    ProfileFetcher f(quick_options());
    f.add_account(a);
    f.add(kAccountA, kJane);
    f.add(kAccountA, kJane);
    auto outs = run(f);
    ASSERT_EQ(outs.size(), 2u);
    ASSERT_TRUE(outs[0].profile && outs[1].profile);
    EXPECT_NE(outs[0].profile->profile_pic, outs[1].profile->profile_pic);
}

TEST_F(FetcherMock, AbsentName) {
    ProfileOutcome o = single(user_fault(kJane, R"({"type":"absent_name"})"));
    ASSERT_EQ(o.action.kind, ActionKind::ok);
    EXPECT_FALSE(o.profile->name);
    EXPECT_EQ(o.profile->username, "jane.doe");
}

TEST_F(FetcherMock, NullProfilePic) {
    ProfileOutcome o = single(user_fault(kJane, R"({"type":"null_profile_pic"})"));
    ASSERT_EQ(o.action.kind, ActionKind::ok);
    EXPECT_FALSE(o.profile->profile_pic);
    EXPECT_EQ(o.profile->username, "jane.doe");
}

TEST_F(FetcherMock, EmptyObjectIsNoInformation) {
    ProfileOutcome o = single(user_fault(kJane, R"({"type":"empty_object"})"));
    EXPECT_EQ(o.action.kind, ActionKind::no_information);
    EXPECT_FALSE(o.profile);
    EXPECT_EQ(o.attempts, 1);
}

TEST_F(FetcherMock, MismatchedIdIsRejected) {
    ProfileOutcome o = single(user_fault(kJane, R"({"type":"mismatched_id"})"));
    EXPECT_EQ(o.action.kind, ActionKind::retry);
    EXPECT_FALSE(o.profile);
    EXPECT_EQ(o.attempts, 3);
    EXPECT_NE(o.detail.find("different id"), std::string::npos);
}

TEST_F(FetcherMock, TransientFaultsAreRetriedThenSucceed) {
    for (std::string fault : {R"({"type":"http_status","status":500})", R"({"type":"http_status","status":503})",
                              R"({"type":"malformed_json"})", R"({"type":"truncated_json"})",
                              R"({"type":"short_body"})", R"({"type":"reset"})",
                              R"({"type":"graph_error","code":2,"is_transient":true,"http_status":500})",
                              R"({"type":"graph_error","code":1})"}) {
        mock.reset();
        ProfileOutcome o = single(user_fault(kJane, fault, 2));
        EXPECT_EQ(o.action.kind, ActionKind::ok) << fault << " " << o.detail;
        EXPECT_EQ(o.attempts, 3) << fault;
        EXPECT_TRUE(o.profile) << fault;
    }
}

TEST_F(FetcherMock, TransientFaultGivesUpAfterMaxAttempts) {
    ProfileOutcome o = single(user_fault(kJane, R"({"type":"http_status","status":502})"));
    EXPECT_EQ(o.action.kind, ActionKind::retry);
    EXPECT_EQ(o.attempts, 3);
    EXPECT_EQ(o.http_status, 502);
    EXPECT_NE(o.detail.find("gave up after 3"), std::string::npos);
    EXPECT_EQ(stat_count(mock.stats().get(), "by_user", kJane), 3);
}

TEST_F(FetcherMock, HangTimesOut) {
    ProfileFetcherOptions opts = quick_options();
    opts.http.total_timeout_ms = 300;
    opts.max_attempts = 2;
    ProfileOutcome o = single(user_fault(kJane, R"({"type":"hang","seconds":30})"), kJane, opts);
    EXPECT_EQ(o.action.kind, ActionKind::retry);
    EXPECT_EQ(o.transport, TransportError::timeout);
    EXPECT_EQ(o.attempts, 2);
}

TEST_F(FetcherMock, SlowDripTimesOut) {
    ProfileFetcherOptions opts = quick_options();
    opts.http.total_timeout_ms = 300;
    opts.max_attempts = 1;
    ProfileOutcome o = single(user_fault(kJane, R"({"type":"slow_drip","bytes_per_second":20})"), kJane, opts);
    EXPECT_EQ(o.action.kind, ActionKind::retry);
    EXPECT_EQ(o.transport, TransportError::timeout);
}

TEST_F(FetcherMock, OversizedIsTooLargeAndNotRetried) {
    ProfileFetcherOptions opts = quick_options();
    opts.http.max_response_bytes = 32 * 1024;
    ProfileOutcome o = single(user_fault(kJane, R"({"type":"oversized","bytes":1000000})"), kJane, opts);
    EXPECT_EQ(o.transport, TransportError::too_large);
    EXPECT_EQ(o.action.kind, ActionKind::permanent);
    EXPECT_EQ(o.attempts, 1);
}

TEST_F(FetcherMock, FieldNotPermittedRetriesWithBasicFieldsOnce) {
    ProfileOutcome o = single(user_fault(kJane, R"({"type":"graph_error","code":100,"subcode":2018218})", 1));
    ASSERT_EQ(o.action.kind, ActionKind::ok) << o.detail;
    EXPECT_EQ(o.attempts, 2);
    EXPECT_EQ(o.profile->username, "jane.doe");
    EXPECT_FALSE(o.profile->follower_count); // basic fields only
    auto reqs = logged_requests_at_least(mock, 2u);
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_NE(reqs[1].path.find("fields=name,username,profile_pic"), std::string::npos);
    EXPECT_EQ(reqs[1].path.find("follower_count"), std::string::npos);
}

TEST_F(FetcherMock, FieldNotPermittedTwiceIsUnavailable) {
    ProfileOutcome o = single(user_fault(kJane, R"({"type":"graph_error","code":2018247})"));
    EXPECT_EQ(o.action.kind, ActionKind::unavailable);
    EXPECT_EQ(o.attempts, 2);
}

struct ErrorRow {
    const char *name;
    const char *fault;
    ActionKind kind;
    bool account_wide; // the account's other ids come back not attempted
};

void PrintTo(const ErrorRow &row, std::ostream *os) { *os << row.name; }

class FetcherErrorFamily : public FetcherMock, public ::testing::WithParamInterface<ErrorRow> {};

TEST_P(FetcherErrorFamily, AnsweredWithTheRightAction) {
    const ErrorRow &row = GetParam();
    mock.fault(user_fault(kJane, row.fault));
    ProfileFetcherOptions opts = quick_options();
    opts.http.per_account_concurrency = 1; // so the other ids are still pending when the error lands
    ProfileFetcher f(opts);
    f.add_account(a);
    f.add_account(b);
    f.add(kAccountA, kJane);
    f.add(kAccountA, kJohn);
    f.add(kAccountA, kStories);
    f.add(kAccountB, kJohn);
    auto outs = run(f);
    expect_no_token(outs);
    ASSERT_EQ(outs.size(), 4u);
    auto m = by_igsid(outs);
    const ProfileOutcome &jane = m[std::string(kAccountA) + "/" + kJane];
    EXPECT_EQ(jane.action.kind, row.kind) << row.fault << " " << jane.detail;
    EXPECT_TRUE(jane.attempted);
    ASSERT_TRUE(jane.error) << row.fault;
    EXPECT_FALSE(jane.profile);
    const ProfileOutcome &john = m[std::string(kAccountA) + "/" + kJohn];
    const ProfileOutcome &stories = m[std::string(kAccountA) + "/" + kStories];
    if (row.account_wide) {
        EXPECT_FALSE(john.attempted) << row.fault;
        EXPECT_FALSE(stories.attempted);
        EXPECT_EQ(john.action.kind, row.kind);
        EXPECT_EQ(john.attempts, 0);
        EXPECT_EQ(stat_count(mock.stats().get(), "by_account", kAccountA), 1) << row.fault;
        if (row.kind == ActionKind::throttled || row.kind == ActionKind::policy_block) {
            ASSERT_TRUE(john.paused_until);
            EXPECT_GT(*john.paused_until, steady_clock::now() + seconds(50));
        }
        // A later add for a stopped/paused account makes no call either.
        f.add(kAccountA, kJohn);
        auto later = f.step(10);
        ASSERT_EQ(later.size(), 1u);
        EXPECT_FALSE(later[0].attempted);
    } else {
        EXPECT_EQ(john.action.kind, ActionKind::ok);
        EXPECT_EQ(stories.action.kind, ActionKind::ok);
    }
    EXPECT_EQ(m[std::string(kAccountB) + "/" + kJohn].action.kind, ActionKind::ok);
}

INSTANTIATE_TEST_SUITE_P(
    Table, FetcherErrorFamily,
    ::testing::Values(
        ErrorRow{"reauth_190_463", R"({"type":"graph_error","code":190,"subcode":463})", ActionKind::reauth_required, true},
        ErrorRow{"reauth_190_460_http401", R"({"type":"graph_error","code":190,"subcode":460,"http_status":401})", ActionKind::reauth_required, true},
        ErrorRow{"reauth_102", R"({"type":"graph_error","code":102})", ActionKind::reauth_required, true},
        ErrorRow{"permission_10", R"({"type":"graph_error","code":10,"http_status":403})", ActionKind::permission_error, true},
        ErrorRow{"permission_200", R"({"type":"graph_error","code":200})", ActionKind::permission_error, true},
        ErrorRow{"permission_299", R"({"type":"graph_error","code":299})", ActionKind::permission_error, true},
        ErrorRow{"throttle_17", R"({"type":"graph_error","code":17})", ActionKind::throttled, true},
        ErrorRow{"throttle_32", R"({"type":"graph_error","code":32})", ActionKind::throttled, true},
        ErrorRow{"throttle_341", R"({"type":"graph_error","code":341})", ActionKind::throttled, true},
        ErrorRow{"throttle_613", R"({"type":"graph_error","code":613})", ActionKind::throttled, true},
        ErrorRow{"throttle_80002", R"({"type":"graph_error","code":80002})", ActionKind::throttled, true},
        ErrorRow{"throttle_80014", R"({"type":"graph_error","code":80014})", ActionKind::throttled, true},
        ErrorRow{"policy_368", R"({"type":"graph_error","code":368})", ActionKind::policy_block, true},
        ErrorRow{"policy_36103", R"({"type":"graph_error","code":36103})", ActionKind::policy_block, true},
        ErrorRow{"consent_230", R"({"type":"graph_error","code":230})", ActionKind::consent_required, false},
        ErrorRow{"unavailable_9010", R"({"type":"graph_error","code":9010,"error_type":"IGApiException"})", ActionKind::unavailable, false},
        ErrorRow{"unavailable_551", R"({"type":"graph_error","code":551})", ActionKind::unavailable, false},
        ErrorRow{"unavailable_551_1545041", R"({"type":"graph_error","code":551,"subcode":1545041})", ActionKind::unavailable, false},
        ErrorRow{"unavailable_100_33", R"({"type":"graph_error","code":100,"subcode":33})", ActionKind::unavailable, false},
        ErrorRow{"unavailable_100_2534014", R"({"type":"graph_error","code":100,"subcode":2534014})", ActionKind::unavailable, false},
        ErrorRow{"unavailable_100_2018001", R"({"type":"graph_error","code":100,"subcode":2018001})", ActionKind::unavailable, false},
        ErrorRow{"permanent_100", R"({"type":"graph_error","code":100})", ActionKind::permanent, false}),
    [](const ::testing::TestParamInfo<ErrorRow> &info) { return std::string(info.param.name); });

TEST_F(FetcherMock, Http429PausesOnlyThatAccount) {
    mock.fault(R"({"match":{"account":"17841400000000001"},"fault":{"type":"http_status","status":429}})");
    ProfileFetcherOptions opts = quick_options();
    opts.http.per_account_concurrency = 1;
    ProfileFetcher f(opts);
    f.add_account(a);
    f.add_account(b);
    for (const char *u : {kJane, kJohn, kStories}) {
        f.add(kAccountA, u);
        f.add(kAccountB, u);
    }
    auto outs = run(f);
    ASSERT_EQ(outs.size(), 6u);
    int throttled = 0, not_attempted = 0, ok = 0;
    for (auto &o : outs) {
        if (o.account_id == kAccountB) {
            EXPECT_EQ(o.action.kind, ActionKind::ok);
            ++ok;
            continue;
        }
        EXPECT_EQ(o.action.kind, ActionKind::throttled);
        ASSERT_TRUE(o.paused_until);
        o.attempted ? ++throttled : ++not_attempted;
    }
    EXPECT_EQ(throttled, 1);
    EXPECT_EQ(not_attempted, 2);
    EXPECT_EQ(ok, 3);
    EXPECT_EQ(stat_count(mock.stats().get(), "by_account", kAccountA), 1);
}

TEST_F(FetcherMock, ThrottleUsesTheRegainTime) {
    mock.fault(R"({"match":{"user":"1000000000000101"},"fault":{"type":"graph_error","code":80002}})");
    mock.fault(R"({"match":{"user":"1000000000000101"},"fault":{"type":"usage","buc":{"call_count":100,"estimated_time_to_regain_access":7}}})");
    auto t0 = steady_clock::now();
    ProfileOutcome o = single("");
    EXPECT_EQ(o.action.kind, ActionKind::throttled);
    ASSERT_TRUE(o.paused_until);
    EXPECT_GE(*o.paused_until, t0 + minutes(7));
    EXPECT_LE(*o.paused_until, t0 + minutes(8));
}

TEST_F(FetcherMock, Code4PausesEveryAccount) {
    mock.fault(user_fault(kJane, R"({"type":"graph_error","code":4,"http_status":403,"is_transient":true})"));
    ProfileFetcherOptions opts = quick_options();
    opts.http.per_account_concurrency = 1;
    opts.http.max_concurrency = 1;
    ProfileFetcher f(opts);
    f.add_account(a);
    f.add_account(b);
    f.add(kAccountA, kJane);
    for (const char *u : {kJohn, kStories}) {
        f.add(kAccountA, u);
        f.add(kAccountB, u);
    }
    auto outs = run(f);
    ASSERT_EQ(outs.size(), 5u);
    int attempted = 0;
    for (auto &o : outs) {
        if (o.igsid == kJane) {
            EXPECT_EQ(o.action.kind, ActionKind::throttled);
            EXPECT_TRUE(o.action.app_wide);
            ++attempted;
        } else if (!o.attempted) {
            EXPECT_EQ(o.action.kind, ActionKind::throttled);
        } else {
            ++attempted;
        }
    }
    // With one transfer at a time, at most one other call can have been made.
    EXPECT_LE(attempted, 2);
    EXPECT_LE(json_get_int(mock.stats().get(), "total").value_or(99), 2);
}

TEST_F(FetcherMock, WrongTokenStopsTheAccount) {
    GraphAccount bad = a;
    bad.token = "expired-token-0000000";
    ProfileFetcherOptions opts = quick_options();
    opts.http.per_account_concurrency = 1;
    ProfileFetcher f(opts);
    f.add_account(bad);
    for (const char *u : {kJane, kJohn, kStories})
        f.add(kAccountA, u);
    auto outs = run(f);
    ASSERT_EQ(outs.size(), 3u);
    EXPECT_EQ(outs[0].action.kind, ActionKind::reauth_required);
    for (auto &o : outs) {
        EXPECT_EQ(o.action.kind, ActionKind::reauth_required);
        EXPECT_EQ(o.detail.find("expired-token-0000000"), std::string::npos);
        EXPECT_FALSE(o.paused_until); // a stop, not a pause
    }
    EXPECT_EQ(json_get_int(mock.stats().get(), "total"), 1);
}

TEST_F(FetcherMock, UsageAbove80SlowsTheAccount) {
    mock.config(R"({"usage":{"buc":{"call_count":90}}})");
    ProfileFetcherOptions opts = quick_options();
    opts.http.requests_per_second = 20;
    opts.http.per_account_concurrency = 8;
    ProfileFetcher f(opts);
    f.add_account(a);
    for (int i = 0; i < 8; ++i)
        f.add(kAccountA, kJane);
    auto outs = run(f);
    ASSERT_EQ(outs.size(), 8u);
    for (auto &o : outs) {
        EXPECT_EQ(o.action.kind, ActionKind::ok);
        EXPECT_EQ(o.usage.business_percent, 90.0);
    }
    auto reqs = logged_requests_at_least(mock, 8u);
    ASSERT_EQ(reqs.size(), 8u);
    std::vector<double> starts;
    for (auto &r : reqs)
        starts.push_back(r.t);
    std::sort(starts.begin(), starts.end());
    // At 90 % the rate halves: 20/s → 10/s, so the last starts are ≥ ~100 ms apart.
    EXPECT_GT(starts[7] - starts[3], 4 * 0.1 - 0.06);
}

TEST_F(FetcherMock, UsageAt100PausesTheAccount) {
    mock.config(R"({"usage":{"app":{"call_count":100},"buc":{"call_count":100,"estimated_time_to_regain_access":3}}})");
    ProfileFetcherOptions opts = quick_options();
    opts.http.per_account_concurrency = 1;
    ProfileFetcher f(opts);
    f.add_account(a);
    for (const char *u : {kJane, kJohn, kStories})
        f.add(kAccountA, u);
    auto t0 = steady_clock::now();
    auto outs = run(f);
    ASSERT_EQ(outs.size(), 3u);
    EXPECT_EQ(outs[0].action.kind, ActionKind::ok); // the answer itself is good
    for (std::size_t i = 1; i < outs.size(); ++i) {
        EXPECT_FALSE(outs[i].attempted);
        EXPECT_EQ(outs[i].action.kind, ActionKind::throttled);
        ASSERT_TRUE(outs[i].paused_until);
        EXPECT_GE(*outs[i].paused_until, t0 + minutes(3));
    }
    EXPECT_EQ(json_get_int(mock.stats().get(), "total"), 1);
}

TEST_F(FetcherMock, InvalidIdsAndUnknownAccountsMakeNoCall) {
    ProfileFetcher f(quick_options());
    f.add_account(a);
    f.add(kAccountA, "me");
    f.add(kAccountA, "../17841400000000001/conversations");
    f.add("999", kJane);
    auto outs = run(f);
    ASSERT_EQ(outs.size(), 3u);
    for (auto &o : outs) {
        EXPECT_EQ(o.action.kind, ActionKind::permanent);
        EXPECT_FALSE(o.attempted);
    }
    EXPECT_EQ(json_get_int(mock.stats().get(), "total"), 0);
}

TEST_F(FetcherMock, ManyIdsFlowThrough) {
    MockGraphProcess big({"--generate-users", "400"});
    ProfileFetcherOptions opts = quick_options();
    ProfileFetcher f(opts);
    f.add_account(mock_account(big, kAccountA, kTokenA));
    f.add_account(mock_account(big, kAccountB, kTokenB, ApiHost::instagram));
    int n = 0;
    for (int i = 0; i < 400; ++i) {
        char id[32];
        std::snprintf(id, sizeof id, "%016lld", 2000000000000000LL + i);
        f.add(i % 2 ? kAccountA : kAccountB, id);
        ++n;
    }
    auto outs = run(f, seconds(60));
    ASSERT_EQ(outs.size(), static_cast<std::size_t>(n));
    int ok = 0;
    for (auto &o : outs)
        ok += o.action.kind == ActionKind::ok;
    EXPECT_EQ(ok, n);
    EXPECT_EQ(json_get_int(big.stats().get(), "total").value_or(0), n);
}
