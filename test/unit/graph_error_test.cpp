// graph_error_test.cpp — the error envelope, as docs/graph_api.md describes it.
#include "core/graph_error.h"

#include <gtest/gtest.h>

using namespace igid;

TEST(GraphError, DocumentedExpiredToken) {
    auto e = parse_graph_error(
        R"({"error":{"message":"Error validating access token: Session has expired","type":"OAuthException",
            "code":190,"error_subcode":463,"fbtrace_id":"EJplcsCHuLu"}})");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, 190);
    EXPECT_EQ(e->subcode, 463);
    EXPECT_FALSE(e->is_transient);
    EXPECT_EQ(e->type, "OAuthException");
    EXPECT_EQ(e->fbtrace_id, "EJplcsCHuLu");
    EXPECT_NE(e->message.find("Session has expired"), std::string::npos);
}

TEST(GraphError, SubcodeAndTransientMayBeAbsent) {
    auto e = parse_graph_error(R"({"error":{"message":"x","type":"OAuthException","code":4}})");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, 4);
    EXPECT_FALSE(e->subcode);
    EXPECT_FALSE(e->is_transient);
}

TEST(GraphError, CodesAsNumericStrings) {
    auto e = parse_graph_error(R"({"error":{"message":"x","code":"100","error_subcode":"33","is_transient":false}})");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, 100);
    EXPECT_EQ(e->subcode, 33);
    ASSERT_TRUE(e->is_transient.has_value());
    EXPECT_FALSE(*e->is_transient);
}

TEST(GraphError, IsTransientTrue) {
    auto e = parse_graph_error(R"({"error":{"message":"x","code":2,"is_transient":true}})");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->is_transient, true);
}

TEST(GraphError, NotAnEnvelope) {
    EXPECT_FALSE(parse_graph_error(R"({"id":"1"})"));
    EXPECT_FALSE(parse_graph_error(R"({"error":"string"})"));
    EXPECT_FALSE(parse_graph_error(R"({"error":{"message":"no code"}})"));
    EXPECT_FALSE(parse_graph_error(R"({"error":{"code":"abc"}})"));
    EXPECT_FALSE(parse_graph_error("<html>502</html>"));
    EXPECT_FALSE(parse_graph_error(""));
}

TEST(GraphError, MessageIsRedacted) {
    auto e = parse_graph_error(
        R"({"error":{"message":"bad https://graph.facebook.com/v21.0/me?access_token=EAAsecret","code":190}})");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->message.find("EAAsecret"), std::string::npos);
}

TEST(GraphError, TypeIsKeptButIrrelevant) {
    // Trap 6: OAuthException is not "expired"; the code is what counts.
    auto e = parse_graph_error(R"({"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":4}})");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, 4);
}
