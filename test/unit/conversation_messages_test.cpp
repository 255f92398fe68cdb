// conversation_messages_test.cpp — one conversation's messages.
#include "core/conversation_messages.h"

#include <gtest/gtest.h>

using namespace igid;

TEST(ConversationMessages, DocumentedShape) {
    ConversationMessagesResult r = parse_conversation_messages(R"({
      "participants":{"data":[{"username":"acme.store","id":"17841400000000001"},{"username":"jane.doe","id":"1234567890123456"}]},
      "messages":{"data":[
        {"id":"m2","created_time":"2025-07-28T22:44:49+0000","from":{"username":"acme.store","id":"17841400000000001"},
         "to":{"data":[{"username":"jane.doe","id":"1234567890123456"}]},"message":"thanks!"},
        {"id":"m1","created_time":"2025-07-28T22:40:00+0000","from":{"username":"jane.doe","id":"1234567890123456"},
         "to":{"data":[{"username":"acme.store","id":"17841400000000001"}]},"message":"hi"},
        {"id":"m0"}
      ]},
      "id":"aWdfZAG06"})");
    ASSERT_EQ(r.status, ParseStatus::ok);
    const ConversationMessages &c = r.conversation;
    EXPECT_EQ(c.id, "aWdfZAG06");
    ASSERT_EQ(c.participants.size(), 2u);
    ASSERT_EQ(c.messages.size(), 2u);
    EXPECT_EQ(c.skipped, 1u); // only the newest messages have readable details
    EXPECT_EQ(c.messages[0].id, "m2");
    EXPECT_EQ(c.messages[0].from.id, "17841400000000001");
    ASSERT_EQ(c.messages[0].to.size(), 1u);
    EXPECT_EQ(c.messages[0].to[0].username, "jane.doe");
    EXPECT_EQ(c.messages[0].text, "thanks!");
    EXPECT_EQ(c.messages[1].created_epoch, 1753742400);
}

TEST(ConversationMessages, MessageWithoutText) {
    ConversationMessagesResult r = parse_conversation_messages(
        R"({"id":"c","messages":{"data":[{"id":"m","from":{"id":"1"},"to":{"data":[]}}]}})");
    ASSERT_EQ(r.status, ParseStatus::ok);
    ASSERT_EQ(r.conversation.messages.size(), 1u);
    EXPECT_FALSE(r.conversation.messages[0].text);
    EXPECT_FALSE(r.conversation.messages[0].from.username);
}

TEST(ConversationMessages, MalformedAndError) {
    EXPECT_EQ(parse_conversation_messages("").status, ParseStatus::malformed);
    EXPECT_EQ(parse_conversation_messages("{}").status, ParseStatus::malformed);
    EXPECT_EQ(parse_conversation_messages(R"({"id":"c","messages":[]})").status, ParseStatus::malformed);
    EXPECT_EQ(parse_conversation_messages(R"({"id":"c","participants":5})").status, ParseStatus::malformed);
    auto e = parse_conversation_messages(R"({"error":{"code":100,"error_subcode":33,"message":"x"}})");
    ASSERT_EQ(e.status, ParseStatus::graph_error);
    EXPECT_EQ(e.error->subcode, 33);
}
