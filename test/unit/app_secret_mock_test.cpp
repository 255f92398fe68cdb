// app_secret_mock_test.cpp — appsecret_proof and the Instagram Login token
// refresh through the curl driver against the strict mock: an app with a
// secret refuses a missing or wrong proof; the refresh request, the one with
// the token in its URL, passes the transport's guard only for that token.
#include "core/account_check.h"
#include "core/graph_client.h"
#include "core/http.h"
#include "test_helpers.h"

#include <gtest/gtest.h>

using namespace igid;
using namespace igid::test;

namespace {

constexpr const char *kSecret = "unit-app-secret-0123456789abcdef";

class AppSecretMock : public ::testing::Test {
protected:
    MockGraphProcess mock;
    GraphAccount b = mock_account(mock, kAccountB, kTokenB, ApiHost::instagram);

    void require_secret() {
        const std::string q = "\"";
        mock.admin("POST", "/_admin/data",
                   "{" + q + "accounts" + q + ":[{" + q + "ig_account_id" + q + ":" + q + kAccountB + q + "," + q +
                       "token" + q + ":" + q + kTokenB + q + "," + q + "api_host" + q + ":" + q +
                       "graph.instagram.com" + q + "," + q + "app_secret" + q + ":" + q + kSecret + q + "}]}");
    }

    HttpResponse one(HttpRequest r) {
        HttpDriver d;
        d.submit(std::move(r));
        auto out = drain(d);
        EXPECT_EQ(out.size(), 1u);
        return out.empty() ? HttpResponse{} : out[0];
    }

    MeParse me(const GraphAccount &acct) { return parse_me(acct.host, one(me_request(acct)).body); }
};

} // namespace

TEST_F(AppSecretMock, ProofRequiredWhenTheAppHasASecret) {
    EXPECT_EQ(me(b).status, ParseStatus::ok);
    require_secret();
    auto missing = me(b);
    ASSERT_EQ(missing.status, ParseStatus::graph_error);
    EXPECT_EQ(missing.error->code, 100);
    GraphAccount wrong = b;
    wrong.app_secret = "another-apps-secret";
    auto bad = me(wrong);
    ASSERT_EQ(bad.status, ParseStatus::graph_error);
    EXPECT_EQ(bad.error->code, 100);
    GraphAccount right = b;
    right.app_secret = kSecret;
    auto ok = me(right);
    ASSERT_EQ(ok.status, ParseStatus::ok);
    EXPECT_EQ(ok.me.ig_account_id, kAccountB);
}

TEST_F(AppSecretMock, RefreshGivesANewTokenThatWorks) {
    auto r = one(*token_refresh_request(b));
    ASSERT_EQ(r.error, TransportError::none) << r.error_text;
    auto p = parse_token_refresh(r.body);
    ASSERT_EQ(p.status, ParseStatus::ok) << r.body;
    EXPECT_NE(p.access_token, kTokenB);
    EXPECT_EQ(p.expires_in, 60LL * 86400);
    GraphAccount renewed = b;
    renewed.token = p.access_token;
    EXPECT_EQ(me(renewed).status, ParseStatus::ok);
    // the new token is younger than 24 hours: Meta refuses to refresh it yet
    auto again = parse_token_refresh(one(*token_refresh_request(renewed)).body);
    ASSERT_EQ(again.status, ParseStatus::graph_error);
    EXPECT_EQ(again.error->code, 100);
}

TEST_F(AppSecretMock, RefreshCarriesTheProof) {
    require_secret();
    auto refused = parse_token_refresh(one(*token_refresh_request(b)).body);
    ASSERT_EQ(refused.status, ParseStatus::graph_error);
    EXPECT_EQ(refused.error->code, 100);
    GraphAccount right = b;
    right.app_secret = kSecret;
    EXPECT_EQ(parse_token_refresh(one(*token_refresh_request(right)).body).status, ParseStatus::ok);
}

TEST_F(AppSecretMock, PageTokensAreNotRefreshed) {
    GraphAccount a = mock_account(mock, kAccountA, kTokenA);
    EXPECT_FALSE(token_refresh_request(a));
}

// The exception is for the refresh request's own token only.
TEST_F(AppSecretMock, TokenInUrlOnlyAsTheNamedSecret) {
    HttpRequest r = *token_refresh_request(b);
    r.url_secret = "some-other-token-value";
    auto out = one(r);
    EXPECT_EQ(out.error, TransportError::refused_url);
    HttpRequest twice = *token_refresh_request(b);
    twice.url += "&access_token=" + std::string(kTokenB);
    EXPECT_EQ(one(twice).error, TransportError::refused_url);
    HttpRequest plain = *token_refresh_request(b);
    plain.url = "http://graph.instagram.com/v26.0/refresh_access_token?grant_type=ig_refresh_token&access_token=" +
                std::string(kTokenB);
    EXPECT_EQ(one(plain).error, TransportError::refused_url);
    EXPECT_EQ(json_get_int(mock.stats().get(), "total"), 0);
}

TEST_F(AppSecretMock, RefreshFailureTextCarriesNoToken) {
    HttpRequest r = *token_refresh_request(b);
    const std::string tail = r.url.substr(r.url.find("/refresh_access_token"));
    r.url = "http://127.0.0.1:1/v26.0" + tail; // a closed port
    auto out = one(r);
    EXPECT_EQ(out.error, TransportError::connect_failed) << out.error_text;
    EXPECT_EQ(out.error_text.find(kTokenB), std::string::npos) << out.error_text;
    EXPECT_EQ(out.error_text.find("access_token"), std::string::npos) << out.error_text;
}
