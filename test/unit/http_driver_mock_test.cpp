// http_driver_mock_test.cpp — the curl multi driver against the local mock:
// concurrency, caps, rate limits, pauses, faults, the size cap and the guards.
#include "core/graph_client.h"
#include "core/http.h"
#include "core/profile.h"
#include "test_helpers.h"

#include <gtest/gtest.h>


using namespace igid;
using namespace igid::test;
using namespace std::chrono;

namespace {

class HttpDriverMock : public ::testing::Test {
protected:
    MockGraphProcess mock;
    GraphAccount a = mock_account(mock, kAccountA, kTokenA);
    GraphAccount b = mock_account(mock, kAccountB, kTokenB, ApiHost::instagram);

    HttpRequest profile(const GraphAccount &acc, const char *igsid, std::uint64_t id = 0) {
        HttpRequest r = *profile_request(acc, igsid);
        r.id = id;
        return r;
    }

    HttpResponse one(HttpOptions opts, HttpRequest r) {
        HttpDriver d(std::move(opts));
        d.submit(std::move(r));
        auto out = drain(d);
        EXPECT_EQ(out.size(), 1u);
        return out.empty() ? HttpResponse{} : out[0];
    }
};

} // namespace

TEST_F(HttpDriverMock, FetchesAProfileWithHeaders) {
    HttpResponse r = one({}, profile(a, kJane, 7));
    EXPECT_EQ(r.id, 7u);
    EXPECT_EQ(r.account, kAccountA);
    EXPECT_TRUE(r.attempted);
    EXPECT_EQ(r.error, TransportError::none) << r.error_text;
    EXPECT_EQ(r.status, 200);
    ASSERT_TRUE(r.app_usage);
    ASSERT_TRUE(r.business_usage);
    ASSERT_TRUE(r.content_type);
    EXPECT_NE(r.content_type->find("application/json"), std::string::npos);
    ProfileResult p = parse_profile(r.body, kJane);
    ASSERT_EQ(p.status, ProfileStatus::ok);
    EXPECT_EQ(p.profile->username, "jane.doe");
    EXPECT_EQ(json_get_int(mock.stats().get(), "unauthorized"), 0);
}

TEST_F(HttpDriverMock, TransfersOverlap) {
    mock.config(R"({"latency_ms":300})");
    HttpOptions o;
    o.max_concurrency = 8;
    o.per_account_concurrency = 8;
    HttpDriver d(o);
    for (int i = 0; i < 16; ++i)
        d.submit(profile(a, kJane, i));
    auto t0 = steady_clock::now();
    auto out = drain(d);
    auto took = steady_clock::now() - t0;
    ASSERT_EQ(out.size(), 16u);
    for (auto &r : out)
        EXPECT_EQ(r.status, 200);
    JsonPtr s = mock.stats();
    EXPECT_GE(json_get_int(s.get(), "max_in_flight").value_or(0), 6); // really concurrent at the mock
    EXPECT_LE(max_overlap(out), 8);                                    // never above the cap
    EXPECT_LT(took, milliseconds(16 * 300 / 2)); // far from sequential
}

TEST_F(HttpDriverMock, GlobalAndPerAccountCaps) {
    mock.config(R"({"latency_ms":150})");
    HttpOptions o;
    o.max_concurrency = 3;
    o.per_account_concurrency = 2;
    HttpDriver d(o);
    for (int i = 0; i < 8; ++i) {
        d.submit(profile(a, kJane, i));
        d.submit(profile(b, kJane, 100 + i));
    }
    auto out = drain(d);
    ASSERT_EQ(out.size(), 16u);
    EXPECT_LE(max_overlap(out), 3);
    EXPECT_LE(max_overlap(out, kAccountA), 2);
    EXPECT_LE(max_overlap(out, kAccountB), 2);
    EXPECT_GE(max_overlap(out, kAccountA), 1);
    // and the mock really saw transfers overlap
    JsonPtr s = mock.stats();
    EXPECT_GE(json_get_int(s.get(), "max_in_flight").value_or(0), 2);
}

TEST_F(HttpDriverMock, PerAccountRateLimitRespected) {
    const double rate = 8;
    HttpOptions o;
    o.max_concurrency = 16;
    o.per_account_concurrency = 16;
    o.requests_per_second = rate;
    HttpDriver d(o);
    for (int i = 0; i < 20; ++i) {
        d.submit(profile(a, kJane, i));
        d.submit(profile(b, kJane, 100 + i));
    }
    auto t0 = steady_clock::now();
    auto out = drain(d);
    auto took = duration<double>(steady_clock::now() - t0).count();
    ASSERT_EQ(out.size(), 40u);
    // Both accounts run side by side: ~19/8 s, not twice that.
    EXPECT_GT(took, 19 / rate - 0.2);
    EXPECT_LT(took, 19 / rate + 3.0); // generous: a loaded 2-core machine
    // The driver's promise is about when it starts transfers: never more
    // than R starts in any 1 s window, per account, by its own clock.
    for (const std::string acct : {kAccountA, kAccountB}) {
        std::vector<double> starts;
        for (auto &r : out)
            if (r.account == acct)
                starts.push_back(duration<double>(r.started - t0).count());
        std::sort(starts.begin(), starts.end());
        ASSERT_EQ(starts.size(), 20u);
        for (std::size_t i = 0; i < starts.size(); ++i) {
            std::size_t n = 0;
            for (std::size_t j = i; j < starts.size() && starts[j] < starts[i] + 1.0; ++j)
                ++n;
            EXPECT_LE(n, static_cast<std::size_t>(rate)) << acct << " window at " << i;
        }
    }
    // The mock sees the same pacing; its clock adds network and accept-queue
    // jitter on a loaded machine, hence one request of tolerance. The mock
    // logs a request after answering it, so its log may trail the last
    // answer by a moment: wait for all 40 entries.
    auto reqs = logged_requests_at_least(mock, 40);
    for (const char *acct : {kAccountA, kAccountB}) {
        std::vector<double> starts;
        for (auto &r : reqs)
            if (r.account == acct)
                starts.push_back(r.t);
        std::sort(starts.begin(), starts.end());
        ASSERT_EQ(starts.size(), 20u);
        for (std::size_t i = 0; i < starts.size(); ++i) {
            std::size_t n = 0;
            for (std::size_t j = i; j < starts.size() && starts[j] < starts[i] + 1.0; ++j)
                ++n;
            EXPECT_LE(n, static_cast<std::size_t>(rate) + 1) << acct << " window at " << i;
        }
    }
}

TEST_F(HttpDriverMock, OversizedBodyIsTooLarge) {
    mock.fault(R"({"match":{"user":"1000000000000101"},"fault":{"type":"oversized","bytes":2000000}})");
    HttpOptions o;
    o.max_response_bytes = 64 * 1024;
    HttpResponse r = one(o, profile(a, kJane));
    EXPECT_EQ(r.error, TransportError::too_large);
    EXPECT_TRUE(r.body.empty());
    EXPECT_NE(r.error_text.find("65536"), std::string::npos);
}

TEST_F(HttpDriverMock, BodyJustUnderTheCapIsKept) {
    mock.fault(R"({"match":{"user":"1000000000000101"},"fault":{"type":"oversized","bytes":60000}})");
    HttpOptions o;
    o.max_response_bytes = 64 * 1024;
    HttpResponse r = one(o, profile(a, kJane));
    EXPECT_EQ(r.error, TransportError::none) << r.error_text;
    EXPECT_GE(r.body.size(), 59000u);
}

TEST_F(HttpDriverMock, HangTimesOut) {
    mock.fault(R"({"match":{"user":"1000000000000101"},"fault":{"type":"hang","seconds":30}})");
    HttpOptions o;
    o.total_timeout_ms = 400;
    auto t0 = steady_clock::now();
    HttpResponse r = one(o, profile(a, kJane));
    EXPECT_EQ(r.error, TransportError::timeout) << r.error_text;
    EXPECT_LT(steady_clock::now() - t0, seconds(3));
}

TEST_F(HttpDriverMock, SlowDripTimesOut) {
    mock.fault(R"({"match":{"user":"1000000000000101"},"fault":{"type":"slow_drip","bytes_per_second":20}})");
    HttpOptions o;
    o.total_timeout_ms = 500;
    HttpResponse r = one(o, profile(a, kJane));
    EXPECT_EQ(r.error, TransportError::timeout) << r.error_text;
}

TEST_F(HttpDriverMock, ResetIsReset) {
    mock.fault(R"({"match":{"user":"1000000000000101"},"fault":{"type":"reset"}})");
    HttpResponse r = one({}, profile(a, kJane));
    EXPECT_EQ(r.error, TransportError::reset) << r.error_text;
}

TEST_F(HttpDriverMock, ShortBodyIsReset) {
    mock.fault(R"({"match":{"user":"1000000000000101"},"fault":{"type":"short_body"}})");
    HttpResponse r = one({}, profile(a, kJane));
    EXPECT_EQ(r.error, TransportError::reset) << r.error_text;
}

TEST_F(HttpDriverMock, StepIsBoundedByMaxWait) {
    mock.fault(R"({"match":{},"fault":{"type":"hang","seconds":30}})");
    HttpDriver d;
    d.submit(profile(a, kJane));
    for (int i = 0; i < 5; ++i) {
        auto t0 = steady_clock::now();
        auto out = d.step(100);
        EXPECT_TRUE(out.empty());
        EXPECT_LT(steady_clock::now() - t0, milliseconds(400));
    }
    EXPECT_EQ(d.in_flight(), 1u);
}

TEST_F(HttpDriverMock, CancelAllAbortsPromptly) {
    mock.fault(R"({"match":{},"fault":{"type":"hang","seconds":30}})");
    HttpDriver d;
    for (int i = 0; i < 6; ++i)
        d.submit(profile(a, kJane, i));
    d.step(50);
    d.step(50);
    EXPECT_GT(d.in_flight(), 0u);
    auto t0 = steady_clock::now();
    d.cancel_all();
    EXPECT_LT(steady_clock::now() - t0, milliseconds(200));
    EXPECT_TRUE(d.idle());
    EXPECT_TRUE(d.step(10).empty());
}

TEST_F(HttpDriverMock, DestructorAbortsPromptly) {
    mock.fault(R"({"match":{},"fault":{"type":"hang","seconds":30}})");
    auto t0 = steady_clock::now();
    {
        HttpDriver d;
        for (int i = 0; i < 4; ++i)
            d.submit(profile(a, kJane, i));
        d.step(50);
    }
    EXPECT_LT(steady_clock::now() - t0, milliseconds(500));
}

TEST_F(HttpDriverMock, PausedAccountIsNotAttempted) {
    HttpDriver d;
    auto until = steady_clock::now() + minutes(5);
    d.pause_account(kAccountA, until);
    d.submit(profile(a, kJane, 1));
    d.submit(profile(b, kJane, 2));
    auto out = drain(d);
    ASSERT_EQ(out.size(), 2u);
    for (auto &r : out) {
        if (r.id == 1) {
            EXPECT_FALSE(r.attempted);
            EXPECT_EQ(r.paused_until, until);
        } else {
            EXPECT_TRUE(r.attempted);
            EXPECT_EQ(r.status, 200);
        }
    }
    EXPECT_EQ(stat_count(mock.stats().get(), "by_account", kAccountA), 0);
    d.pause_account(kAccountA, steady_clock::now() - seconds(1));
    d.submit(profile(a, kJane, 3));
    out = drain(d);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].attempted);
}

TEST_F(HttpDriverMock, RefusesPlainHttpToNonLoopbackAndTokenInUrl) {
    HttpDriver d;
    HttpRequest r1;
    r1.id = 1;
    r1.account = "x";
    r1.url = "http://graph.facebook.com/v21.0/me";
    r1.bearer_token = kTokenA;
    HttpRequest r2 = r1;
    r2.id = 2;
    r2.url = mock.base_url() + "/me?access_token=" + kTokenA;
    HttpRequest r3 = r1;
    r3.id = 3;
    r3.url = "file:///etc/passwd";
    HttpRequest r4 = r1;
    r4.id = 4;
    r4.method = "DELETE";
    r4.url = mock.base_url() + "/me";
    for (auto *r : {&r1, &r2, &r3, &r4})
        d.submit(*r);
    auto out = drain(d);
    ASSERT_EQ(out.size(), 4u);
    for (auto &r : out) {
        EXPECT_EQ(r.error, TransportError::refused_url) << r.id;
        EXPECT_EQ(r.error_text.find(kTokenA), std::string::npos);
    }
    EXPECT_EQ(json_get_int(mock.stats().get(), "total"), 0);
}

TEST_F(HttpDriverMock, ConnectFailureTextCarriesNoToken) {
    HttpDriver d;
    HttpRequest r = profile(a, kJane);
    // A closed loopback port.
    r.url = "http://127.0.0.1:1/v21.0/" + std::string(kJane) + "?fields=username&after=" + kTokenA;
    d.submit(r);
    auto out = drain(d);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].error, TransportError::connect_failed) << out[0].error_text;
    EXPECT_EQ(out[0].error_text.find(kTokenA), std::string::npos) << out[0].error_text;
}

TEST_F(HttpDriverMock, WrongTokenIsAnswered190) {
    GraphAccount bad = a;
    bad.token = "not-a-token";
    HttpResponse r = one({}, profile(bad, kJane));
    EXPECT_EQ(r.error, TransportError::none);
    auto p = parse_profile(r.body, kJane);
    ASSERT_EQ(p.status, ProfileStatus::graph_error);
    EXPECT_EQ(p.error->code, 190);
}

TEST_F(HttpDriverMock, ManyRequestsReuseConnections) {
    HttpOptions o;
    o.max_concurrency = 4;
    o.per_account_concurrency = 4;
    HttpDriver d(o);
    for (int i = 0; i < 200; ++i)
        d.submit(profile(i % 2 ? a : b, kJane, i));
    auto t0 = steady_clock::now();
    auto out = drain(d);
    ASSERT_EQ(out.size(), 200u);
    for (auto &r : out)
        ASSERT_EQ(r.status, 200) << r.error_text;
    // Keep-alive makes this quick even with a Python server.
    EXPECT_LT(steady_clock::now() - t0, seconds(10));
}

// https to the plain-http mock: the handshake fails before any request is
// sent; the error says it is TLS and that nothing went out, and the mock
// sees no Graph call (so no token left the client).
TEST_F(HttpDriverMock, TlsHandshakeFailureSendsNothing) {
    HttpRequest r = profile(a, kJane);
    r.url = "https://127.0.0.1:" + std::to_string(mock.port()) + "/v21.0/" + kJane + "?fields=username";
    HttpResponse out = one({}, r);
    EXPECT_EQ(out.error, TransportError::tls) << out.error_text;
    EXPECT_EQ(out.error_text.rfind("TLS failure (nothing was sent): ", 0), 0u) << out.error_text;
    EXPECT_EQ(out.error_text.find(kTokenA), std::string::npos) << out.error_text;
    EXPECT_EQ(json_get_int(mock.stats().get(), "total"), 0);
}

// A CA bundle that cannot be read is a TLS failure too, never a silent
// fallback to the system store or to no verification.
TEST_F(HttpDriverMock, UnreadableCaFileIsATlsFailure) {
    HttpOptions o;
    o.ca_file = "/nonexistent/ig_identity-test-ca.pem";
    HttpRequest r = profile(a, kJane);
    r.url = "https://127.0.0.1:" + std::to_string(mock.port()) + "/v21.0/" + kJane + "?fields=username";
    HttpResponse out = one(o, r);
    EXPECT_EQ(out.error, TransportError::tls) << out.error_text;
    EXPECT_EQ(json_get_int(mock.stats().get(), "total"), 0);
}

// The bundle applies to https only: plain http to loopback is unaffected.
TEST_F(HttpDriverMock, CaFileDoesNotAffectPlainLoopbackHttp) {
    HttpOptions o;
    o.ca_file = "/nonexistent/ig_identity-test-ca.pem";
    HttpResponse out = one(o, profile(a, kJane));
    EXPECT_EQ(out.error, TransportError::none) << out.error_text;
    EXPECT_EQ(out.status, 200);
}
