// account_check_test.cpp — /me per login flavour from the fixture corpus
// (test/fixtures/graph), the ids check of ig_connect_account, and who owns
// a conversation list.
#include "core/account_check.h"
#include "core/graph_client.h"
#include "core/policy.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace igid;

namespace {
std::string fixture(const std::string &name) {
    std::ifstream in(std::string(IGID_SOURCE_DIR) + "/test/fixtures/graph/" + name);
    EXPECT_TRUE(in.good()) << name;
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}
} // namespace

TEST(AccountCheck, FacebookLoginMeIsThePage) {
    MeParse p = parse_me(ApiHost::facebook, fixture("me_facebook_login.json"));
    ASSERT_EQ(p.status, ParseStatus::ok);
    EXPECT_EQ(p.me.page_id, "1000000000000001");
    EXPECT_EQ(p.me.ig_account_id, "17841400000000001");
    EXPECT_EQ(check_me(ApiHost::facebook, p.me, "17841400000000001"), AccountMismatch::none);
    EXPECT_EQ(check_me(ApiHost::facebook, p.me, "17841400000000002"), AccountMismatch::other_account);
    EXPECT_EQ(check_me(ApiHost::facebook, p.me, "1000000000000001"), AccountMismatch::page_id_given);
}

TEST(AccountCheck, FacebookLoginPageWithoutInstagram) {
    MeParse p = parse_me(ApiHost::facebook, fixture("me_facebook_login_unlinked.json"));
    ASSERT_EQ(p.status, ParseStatus::ok);
    EXPECT_TRUE(p.me.ig_account_id.empty());
    EXPECT_EQ(check_me(ApiHost::facebook, p.me, "17841400000000001"), AccountMismatch::no_linked_account);
}

TEST(AccountCheck, InstagramLoginUserIdNotAppScopedId) {
    MeParse p = parse_me(ApiHost::instagram, fixture("me_instagram_login.json"));
    ASSERT_EQ(p.status, ParseStatus::ok);
    EXPECT_EQ(p.me.ig_account_id, "17841400000000002");
    EXPECT_EQ(p.me.app_scoped_id, "2600000000000002");
    EXPECT_EQ(check_me(ApiHost::instagram, p.me, "17841400000000002"), AccountMismatch::none);
    // trap 11: the app-scoped id is never the account id
    EXPECT_EQ(check_me(ApiHost::instagram, p.me, "2600000000000002"), AccountMismatch::app_scoped_id_given);
    EXPECT_EQ(check_me(ApiHost::instagram, p.me, "17841400000000001"), AccountMismatch::other_account);
    // the Facebook Login shape read as Instagram Login has no user_id: malformed
    EXPECT_EQ(parse_me(ApiHost::instagram, fixture("me_facebook_login.json")).status, ParseStatus::malformed);
}

TEST(AccountCheck, MalformedAndErrors) {
    EXPECT_EQ(parse_me(ApiHost::facebook, "").status, ParseStatus::malformed);
    EXPECT_EQ(parse_me(ApiHost::facebook, "{}").status, ParseStatus::malformed);
    EXPECT_EQ(parse_me(ApiHost::facebook, R"({"id":"1","instagram_business_account":"x"})").status,
              ParseStatus::malformed);
    EXPECT_EQ(parse_me(ApiHost::instagram, R"({"user_id":"../x"})").status, ParseStatus::malformed);
    MeParse e = parse_me(ApiHost::instagram, fixture("error_token_expired.json"));
    ASSERT_EQ(e.status, ParseStatus::graph_error);
    EXPECT_EQ(e.error->code, 190);
    EXPECT_EQ(e.error->subcode, 463);
    MeParse proof = parse_me(ApiHost::facebook, fixture("error_appsecret_proof_missing.json"));
    ASSERT_EQ(proof.status, ParseStatus::graph_error);
    EXPECT_EQ(proof.error->code, 100);
}

TEST(AccountCheck, ConversationListOwner) {
    // trap 10: with a Page token the list is under the Page, never the IG id
    EXPECT_EQ(conversation_list_owner(ApiHost::facebook, "17841400000000001"), "me");
    EXPECT_EQ(conversation_list_owner(ApiHost::facebook, "17841400000000001", "1000000000000001"),
              "1000000000000001");
    EXPECT_EQ(conversation_list_owner(ApiHost::facebook, "17841400000000001", "x/../y"), "me");
    EXPECT_EQ(conversation_list_owner(ApiHost::instagram, "17841400000000002", "1000000000000002"),
              "17841400000000002");
    GraphAccount a{"17841400000000001", "tok-unit-owner", ApiHost::facebook,
                   graph_base_url("", ApiHost::facebook), {}};
    auto r = conversations_request(a, "me");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->url.rfind("https://graph.facebook.com/v26.0/me/conversations?platform=instagram", 0), 0u) << r->url;
    EXPECT_FALSE(conversations_request(a, "mee"));
    // the refusal Meta gives for the IG id as owner is a plain bad request
    auto err = parse_graph_error(fixture("error_conversations_ig_owner.json"));
    ASSERT_TRUE(err);
    EXPECT_EQ(err->code, 100);
}

TEST(AccountCheck, MeRequestPerFlavour) {
    GraphAccount fb{"17841400000000001", "tok-unit-me", ApiHost::facebook, graph_base_url("", ApiHost::facebook), {}};
    GraphAccount ig{"17841400000000002", "tok-unit-me", ApiHost::instagram, graph_base_url("", ApiHost::instagram), {}};
    EXPECT_EQ(me_request(fb).url, "https://graph.facebook.com/v26.0/me?fields=id,name,instagram_business_account");
    EXPECT_EQ(me_request(ig).url, "https://graph.instagram.com/v26.0/me?fields=user_id,username");
    EXPECT_EQ(me_request(ig).url.find("tok-unit-me"), std::string::npos);
}

// The refresh answer and its refusals, from the fixture corpus.
TEST(TokenRefreshFixtures, ParsesMetasShapes) {
    TokenRefreshParse ok = parse_token_refresh(fixture("refresh_access_token.json"));
    ASSERT_EQ(ok.status, ParseStatus::ok);
    EXPECT_EQ(ok.access_token, "IGAAexampleRefreshedTokenNotReal");
    EXPECT_EQ(ok.expires_in, 5184000);
    TokenRefreshParse expired = parse_token_refresh(fixture("error_token_expired.json"));
    ASSERT_EQ(expired.status, ParseStatus::graph_error);
    EXPECT_EQ(expired.error->code, 190);
    EXPECT_EQ(expired.error->subcode, 463);
    TokenRefreshParse proof = parse_token_refresh(fixture("error_appsecret_proof_missing.json"));
    ASSERT_EQ(proof.status, ParseStatus::graph_error);
    EXPECT_EQ(proof.error->code, 100);
}
