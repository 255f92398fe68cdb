// graph_client_test.cpp — base URLs, id checks, request builders; the token
// never in a URL.
#include "core/graph_client.h"
#include "core/url.h"

#include <gtest/gtest.h>

using namespace igid;

namespace {
GraphAccount account(ApiHost host = ApiHost::facebook, std::string override_url = "") {
    GraphAccount a;
    a.account_id = "17841400000000001";
    a.token = "secret-token-XYZ-123456";
    a.host = host;
    a.base_url = graph_base_url(override_url, host);
    return a;
}
void expect_token_only_in_header(const HttpRequest &r) {
    EXPECT_EQ(r.url.find("secret-token"), std::string::npos) << r.url;
    EXPECT_EQ(r.url.find("access_token"), std::string::npos) << r.url;
    EXPECT_EQ(r.body.find("secret-token"), std::string::npos);
    EXPECT_EQ(r.bearer_token, "secret-token-XYZ-123456");
}
} // namespace

TEST(GraphClient, Hosts) {
    EXPECT_EQ(api_host_from_name("graph.facebook.com"), ApiHost::facebook);
    EXPECT_EQ(api_host_from_name("graph.instagram.com"), ApiHost::instagram);
    EXPECT_FALSE(api_host_from_name("evil.com"));
    EXPECT_FALSE(api_host_from_name("GRAPH.FACEBOOK.COM.evil"));
}

TEST(GraphClient, BaseUrl) {
    EXPECT_EQ(graph_base_url("", ApiHost::facebook), "https://graph.facebook.com/v26.0");
    EXPECT_EQ(graph_base_url("", ApiHost::instagram), "https://graph.instagram.com/v26.0");
    EXPECT_EQ(graph_base_url("http://127.0.0.1:8123/v26.0/", ApiHost::instagram), "http://127.0.0.1:8123/v26.0");
}

// The version is a path segment after the host that graph_api_url or the
// account's api_host gives; it never moves a token to another host.
TEST(GraphClient, BaseUrlVersion) {
    EXPECT_EQ(graph_base_url("", ApiHost::facebook, "v25.0"), "https://graph.facebook.com/v25.0");
    EXPECT_EQ(graph_base_url("", ApiHost::instagram, "v22.0"), "https://graph.instagram.com/v22.0");
    EXPECT_EQ(graph_base_url("", ApiHost::instagram, ""), "https://graph.instagram.com/v26.0");
    // a 1.0-style override with its own version: the configured one replaces it
    EXPECT_EQ(graph_base_url("http://127.0.0.1:8123/v21.0", ApiHost::facebook, "v24.0"),
              "http://127.0.0.1:8123/v24.0");
    EXPECT_EQ(graph_base_url("http://127.0.0.1:8123", ApiHost::facebook, "v24.0"), "http://127.0.0.1:8123/v24.0");
    EXPECT_EQ(graph_base_url("https://proxy.internal/graph/", ApiHost::instagram, "v26.0"),
              "https://proxy.internal/graph/v26.0");
    // a host that looks like a version is a host, not a segment to drop
    EXPECT_EQ(graph_base_url("https://v21.0", ApiHost::facebook, "v26.0"), "https://v21.0/v26.0");
    for (ApiHost host : {ApiHost::facebook, ApiHost::instagram})
        for (const char *v : {"v21.0", "v26.0", "v100.0"}) {
            auto target = url_target(graph_base_url("", host, v) + "/me");
            ASSERT_TRUE(target);
            EXPECT_EQ(target->host, api_host_name(host)) << v;
        }
}

TEST(GraphClient, VersionSyntax) {
    for (const char *good : {"v21.0", "v26.0", "v9.0", "v100.0", "v26.10"})
        EXPECT_TRUE(is_valid_graph_version(good)) << good;
    for (const char *bad : {"", "v", "26.0", "V26.0", "v26", "v26.", "v.0", "v026.0", "v26.0.1", "v26.000",
                            "v26.0/", "v26.0?x", "v2a.0", "v1000.0", " v26.0", "v26.0 "})
        EXPECT_FALSE(is_valid_graph_version(bad)) << bad;
    EXPECT_LT(compare_graph_versions("v9.0", "v21.0"), 0);
    EXPECT_LT(compare_graph_versions("v20.9", "v21.0"), 0);
    EXPECT_EQ(compare_graph_versions("v21.0", kOldestGraphVersion), 0);
    EXPECT_GT(compare_graph_versions(kDefaultGraphVersion, kOldestGraphVersion), 0);
    EXPECT_GT(compare_graph_versions("v21.1", "v21.0"), 0);
}

// Meta's definition: hex HMAC-SHA256 of the access token, keyed with the app
// secret. The expected value was computed with Python's hmac module.
TEST(GraphClient, AppsecretProof) {
    EXPECT_EQ(appsecret_proof("s3cr3t-app", "mock-token-B-0123456789"),
              "e5c947c99415cd8ccad773f4c77f0f44b3e4c4e272380c5b0f11c41a1e9ffa01");
}

TEST(GraphClient, ProofOnEveryRequest) {
    GraphAccount a = account(ApiHost::facebook);
    a.app_secret = "s3cr3t-app";
    const std::string proof = appsecret_proof(a.app_secret, a.token);
    ASSERT_EQ(proof.size(), 64u);
    const std::string param = "appsecret_proof=" + proof;
    auto ends_with_proof = [&](const std::string &url, char sep) {
        return url.size() > param.size() && url.compare(url.size() - param.size(), param.size(), param) == 0 &&
               url[url.size() - param.size() - 1] == sep;
    };
    EXPECT_TRUE(ends_with_proof(profile_request(a, "1000000000000101")->url, '&'));
    EXPECT_TRUE(ends_with_proof(me_request(a).url, '&'));
    EXPECT_TRUE(ends_with_proof(conversations_request(a, "me", "QVFI")->url, '&'));
    EXPECT_TRUE(ends_with_proof(conversation_messages_request(a, "aWdfZAG06")->url, '&'));
    auto batch = batch_profiles_request(a, {"1000000000000101"});
    ASSERT_TRUE(batch);
    EXPECT_TRUE(ends_with_proof(batch->body, '&'));
    EXPECT_EQ(batch->url.find("appsecret_proof"), std::string::npos);
    for (const HttpRequest &r : {*profile_request(a, "1000000000000101"), me_request(a), *batch}) {
        expect_token_only_in_header(r);
        EXPECT_EQ(r.url.find(a.app_secret), std::string::npos);
        EXPECT_EQ(r.body.find(a.app_secret), std::string::npos);
    }
    // no secret, no proof
    EXPECT_EQ(me_request(account()).url.find("appsecret_proof"), std::string::npos);
    EXPECT_EQ(batch_profiles_request(account(), {"1000000000000101"})->body.find("appsecret_proof"),
              std::string::npos);
}

// The one request with the token in its URL, as Meta documents it.
TEST(GraphClient, TokenRefreshRequest) {
    EXPECT_FALSE(token_refresh_request(account(ApiHost::facebook)));
    GraphAccount ig = account(ApiHost::instagram);
    auto r = token_refresh_request(ig);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->method, "GET");
    EXPECT_EQ(r->url, "https://graph.instagram.com/v26.0/refresh_access_token?grant_type=ig_refresh_token"
                      "&access_token=secret-token-XYZ-123456");
    EXPECT_EQ(r->url_secret, ig.token);
    EXPECT_TRUE(r->bearer_token.empty());
    ig.app_secret = "s3cr3t-app";
    ig.token = "IGQVJnew/x+y=z";
    r = token_refresh_request(ig);
    ASSERT_TRUE(r);
    EXPECT_NE(r->url.find("&access_token=IGQVJnew%2Fx%2By%3Dz&appsecret_proof=" +
                          appsecret_proof("s3cr3t-app", "IGQVJnew/x+y=z")),
              std::string::npos)
        << r->url;
}

TEST(GraphClient, ParseTokenRefresh) {
    auto ok = parse_token_refresh(R"({"access_token":"IGQVJnew","token_type":"bearer","expires_in":5184000})");
    EXPECT_EQ(ok.status, ParseStatus::ok);
    EXPECT_EQ(ok.access_token, "IGQVJnew");
    EXPECT_EQ(ok.expires_in, 5184000);
    auto err = parse_token_refresh(R"({"error":{"message":"Session has expired","code":190,"error_subcode":463}})");
    EXPECT_EQ(err.status, ParseStatus::graph_error);
    ASSERT_TRUE(err.error);
    EXPECT_EQ(err.error->code, 190);
    for (const char *bad : {"", "{}", "[]", R"({"access_token":"IGQVJnew"})", R"({"expires_in":5184000})",
                            R"({"access_token":"","expires_in":5184000})",
                            R"({"access_token":"a b","expires_in":5184000})",
                            R"({"access_token":"IGQVJnew","expires_in":0})", R"({"access_token":"IGQVJnew","expires_in":-5})",
                            R"({"access_token":7,"expires_in":5184000})"})
        EXPECT_EQ(parse_token_refresh(bad).status, ParseStatus::malformed) << bad;
}

TEST(GraphClient, IgsidValidation) {
    EXPECT_TRUE(is_valid_igsid("1234567890123456"));
    for (const char *bad : {"", "12a", "../me", "1?x=1", "1/conversations", " 1", "-1",
                            "123456789012345678901234567890123"})
        EXPECT_FALSE(is_valid_igsid(bad)) << bad;
    EXPECT_TRUE(is_valid_object_id("aWdfZAG06_-="));
    EXPECT_FALSE(is_valid_object_id("a/b"));
    EXPECT_FALSE(is_valid_object_id("a?b"));
}

TEST(GraphClient, ProfileRequest) {
    auto r = profile_request(account(), "1000000000000101");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->method, "GET");
    EXPECT_EQ(r->url, "https://graph.facebook.com/v26.0/1000000000000101?fields=name,username,profile_pic,"
                      "follower_count,is_user_follow_business,is_business_follow_user,is_verified_user");
    EXPECT_EQ(r->account, "17841400000000001");
    expect_token_only_in_header(*r);
    auto basic = profile_request(account(), "1000000000000101", true);
    EXPECT_EQ(basic->url, "https://graph.facebook.com/v26.0/1000000000000101?fields=name,username,profile_pic");
    EXPECT_FALSE(profile_request(account(), "me"));
    EXPECT_FALSE(profile_request(account(), "1/../../x"));
}

TEST(GraphClient, MeRequest) {
    HttpRequest r = me_request(account(ApiHost::instagram));
    EXPECT_EQ(r.url, "https://graph.instagram.com/v26.0/me?fields=user_id,username");
    expect_token_only_in_header(r);
}

TEST(GraphClient, ConversationsRequest) {
    auto first = conversations_request(account(), "1000000000000001");
    ASSERT_TRUE(first);
    EXPECT_EQ(first->url, "https://graph.facebook.com/v26.0/1000000000000001/conversations?platform=instagram"
                          "&fields=id,updated_time,participants,"
                          "messages.limit(20)%7Bid,created_time,from,to,message%7D&limit=25");
    auto next = conversations_request(account(), "1000000000000001", "QVFI+/==");
    EXPECT_EQ(next->url, first->url + "&after=QVFI%2B%2F%3D%3D");
    expect_token_only_in_header(*next);
    EXPECT_FALSE(conversations_request(account(), "abc"));
}

TEST(GraphClient, ConversationMessagesRequest) {
    auto r = conversation_messages_request(account(), "aWdfZAG06");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->url, "https://graph.facebook.com/v26.0/aWdfZAG06?fields=participants,messages.limit(20)"
                      "%7Bid,created_time,from,to,message%7D");
    EXPECT_FALSE(conversation_messages_request(account(), "a/b"));
}

TEST(GraphClient, BatchRequest) {
    std::vector<std::string> ids = {"1000000000000101", "1000000000000102"};
    auto r = batch_profiles_request(account(), ids, true);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->method, "POST");
    EXPECT_EQ(r->url, "https://graph.facebook.com/v26.0/");
    EXPECT_EQ(r->body.rfind("batch=", 0), 0u);
    EXPECT_NE(r->body.find("1000000000000102%3Ffields%3Dname%2Cusername%2Cprofile_pic"), std::string::npos);
    expect_token_only_in_header(*r);
    EXPECT_FALSE(batch_profiles_request(account(ApiHost::instagram), ids));
    EXPECT_FALSE(batch_profiles_request(account(), {}));
    EXPECT_FALSE(batch_profiles_request(account(), std::vector<std::string>(51, "1")));
    EXPECT_TRUE(batch_profiles_request(account(), std::vector<std::string>(50, "1")));
    EXPECT_FALSE(batch_profiles_request(account(), {"1", "x"}));
}
