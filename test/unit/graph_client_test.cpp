// graph_client_test.cpp — base URLs, id checks, request builders; the token
// never in a URL.
#include "core/graph_client.h"

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
    EXPECT_EQ(graph_base_url("", ApiHost::facebook), "https://graph.facebook.com/v21.0");
    EXPECT_EQ(graph_base_url("", ApiHost::instagram), "https://graph.instagram.com/v21.0");
    EXPECT_EQ(graph_base_url("http://127.0.0.1:8123/v21.0/", ApiHost::instagram), "http://127.0.0.1:8123/v21.0");
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
    EXPECT_EQ(r->url, "https://graph.facebook.com/v21.0/1000000000000101?fields=name,username,profile_pic,"
                      "follower_count,is_user_follow_business,is_business_follow_user,is_verified_user");
    EXPECT_EQ(r->account, "17841400000000001");
    expect_token_only_in_header(*r);
    auto basic = profile_request(account(), "1000000000000101", true);
    EXPECT_EQ(basic->url, "https://graph.facebook.com/v21.0/1000000000000101?fields=name,username,profile_pic");
    EXPECT_FALSE(profile_request(account(), "me"));
    EXPECT_FALSE(profile_request(account(), "1/../../x"));
}

TEST(GraphClient, MeRequest) {
    HttpRequest r = me_request(account(ApiHost::instagram));
    EXPECT_EQ(r.url, "https://graph.instagram.com/v21.0/me?fields=user_id,username");
    expect_token_only_in_header(r);
}

TEST(GraphClient, ConversationsRequest) {
    auto first = conversations_request(account(), "1000000000000001");
    ASSERT_TRUE(first);
    EXPECT_EQ(first->url, "https://graph.facebook.com/v21.0/1000000000000001/conversations?platform=instagram"
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
    EXPECT_EQ(r->url, "https://graph.facebook.com/v21.0/aWdfZAG06?fields=participants,messages.limit(20)"
                      "%7Bid,created_time,from,to,message%7D");
    EXPECT_FALSE(conversation_messages_request(account(), "a/b"));
}

TEST(GraphClient, BatchRequest) {
    std::vector<std::string> ids = {"1000000000000101", "1000000000000102"};
    auto r = batch_profiles_request(account(), ids, true);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->method, "POST");
    EXPECT_EQ(r->url, "https://graph.facebook.com/v21.0/");
    EXPECT_EQ(r->body.rfind("batch=", 0), 0u);
    EXPECT_NE(r->body.find("1000000000000102%3Ffields%3Dname%2Cusername%2Cprofile_pic"), std::string::npos);
    expect_token_only_in_header(*r);
    EXPECT_FALSE(batch_profiles_request(account(ApiHost::instagram), ids));
    EXPECT_FALSE(batch_profiles_request(account(), {}));
    EXPECT_FALSE(batch_profiles_request(account(), std::vector<std::string>(51, "1")));
    EXPECT_TRUE(batch_profiles_request(account(), std::vector<std::string>(50, "1")));
    EXPECT_FALSE(batch_profiles_request(account(), {"1", "x"}));
}
