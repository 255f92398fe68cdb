// conversations_test.cpp — Conversations API pages, paging, and the other party.
#include "core/conversations.h"

#include <gtest/gtest.h>

using namespace igid;

namespace {
const char *kDocumented = R"({"data":[{"id":"aWdfZAG06","updated_time":"2025-07-28T22:44:49+0000",
  "participants":{"data":[{"username":"acme.store","id":"17841400000000001"},
                          {"username":"jane.doe","id":"1234567890123456"}]}}],
 "paging":{"cursors":{"before":"QVFI","after":"QVFJ"},
           "next":"https://graph.facebook.com/v21.0/.../conversations?...&after=QVFJ"}})";
const char *kSelf = "17841400000000001";
} // namespace

TEST(Conversations, DocumentedPage) {
    ConversationsResult r = parse_conversations(kDocumented);
    ASSERT_EQ(r.status, ParseStatus::ok);
    ASSERT_EQ(r.page.conversations.size(), 1u);
    const Conversation &c = r.page.conversations[0];
    EXPECT_EQ(c.id, "aWdfZAG06");
    EXPECT_EQ(c.updated_time, "2025-07-28T22:44:49+0000");
    EXPECT_EQ(c.updated_epoch, 1753742689);
    ASSERT_EQ(c.participants.size(), 2u);
    EXPECT_EQ(r.page.after, "QVFJ");
}

TEST(Conversations, NextUrlIsNeverKept) {
    ConversationsResult r = parse_conversations(kDocumented);
    ASSERT_TRUE(r.page.after);
    EXPECT_EQ(r.page.after->find("http"), std::string::npos);
}

TEST(Conversations, ShortPageWithNextIsNotTheLast) {
    // One conversation where 25 were asked for, yet `next` exists: continue.
    ConversationsResult r = parse_conversations(kDocumented);
    EXPECT_TRUE(r.page.after);
}

TEST(Conversations, EmptyDataWithNextStillContinues) {
    ConversationsResult r = parse_conversations(
        R"({"data":[],"paging":{"cursors":{"before":"A","after":"B"},"next":"https://x/y?after=B"}})");
    ASSERT_EQ(r.status, ParseStatus::ok);
    EXPECT_TRUE(r.page.conversations.empty());
    EXPECT_EQ(r.page.after, "B");
}

TEST(Conversations, NoNextMeansLastPageEvenWithCursor) {
    ConversationsResult r = parse_conversations(R"({"data":[{"id":"c1"}],"paging":{"cursors":{"before":"A","after":"B"}}})");
    ASSERT_EQ(r.status, ParseStatus::ok);
    EXPECT_FALSE(r.page.after);
}

TEST(Conversations, EmptyDataNoPaging) {
    ConversationsResult r = parse_conversations(R"({"data":[]})");
    ASSERT_EQ(r.status, ParseStatus::ok);
    EXPECT_FALSE(r.page.after);
}

TEST(Conversations, NextWithoutCursorIsMalformed) {
    EXPECT_EQ(parse_conversations(R"({"data":[],"paging":{"next":"https://x/y?after=B"}})").status,
              ParseStatus::malformed);
}

TEST(Conversations, BadItemsAreSkippedAndCounted) {
    ConversationsResult r = parse_conversations(
        R"({"data":[{"updated_time":"x"},{"id":"c2","updated_time":"garbage",
            "participants":{"data":[{"username":"nobody"},{"id":"42","username":"ok"}]}}, 7]})");
    ASSERT_EQ(r.status, ParseStatus::ok);
    ASSERT_EQ(r.page.conversations.size(), 1u);
    EXPECT_FALSE(r.page.conversations[0].updated_epoch);
    EXPECT_EQ(r.page.conversations[0].updated_time, "garbage");
    ASSERT_EQ(r.page.conversations[0].participants.size(), 1u);
    EXPECT_EQ(r.page.skipped, 3u);
}

TEST(Conversations, MalformedAndError) {
    EXPECT_EQ(parse_conversations("").status, ParseStatus::malformed);
    EXPECT_EQ(parse_conversations("{}").status, ParseStatus::malformed);
    EXPECT_EQ(parse_conversations(R"({"data":{}})").status, ParseStatus::malformed);
    ConversationsResult e = parse_conversations(R"({"error":{"message":"x","type":"OAuthException","code":190}})");
    ASSERT_EQ(e.status, ParseStatus::graph_error);
    EXPECT_EQ(e.error->code, 190);
}

TEST(OtherParty, SelfIsNeverTheOtherParty) {
    ConversationsResult r = parse_conversations(kDocumented);
    auto other = other_party(r.page.conversations[0].participants, kSelf);
    ASSERT_TRUE(other);
    EXPECT_EQ(other->id, "1234567890123456");
    EXPECT_EQ(other->username, "jane.doe");
}

TEST(OtherParty, SelfListedSecondStillExcluded) {
    std::vector<Participant> ps = {{"1234567890123456", std::string("jane.doe")}, {kSelf, std::string("acme.store")}};
    EXPECT_EQ(other_party(ps, kSelf)->id, "1234567890123456");
}

TEST(OtherParty, OnlySelf) {
    std::vector<Participant> ps = {{kSelf, std::string("acme.store")}};
    EXPECT_FALSE(other_party(ps, kSelf));
    EXPECT_FALSE(other_party({}, kSelf));
}

TEST(OtherParty, AlsoSelfExcluded) {
    std::vector<Participant> ps = {{"999", std::nullopt}, {"1234", std::string("jane")}};
    EXPECT_EQ(other_party(ps, "17841400000000001", "999")->id, "1234");
}

TEST(OtherParty, MalformedParticipantsGiveNoOtherParty) {
    ConversationsResult r = parse_conversations(R"({"data":[{"id":"c","participants":"nope"}]})");
    ASSERT_EQ(r.status, ParseStatus::ok);
    EXPECT_FALSE(other_party(r.page.conversations[0].participants, kSelf));
}

TEST(Conversations, NestedMessagesComeWithThePage) {
    // The sync asks for messages.limit(20){...} inside the list call.
    ConversationsResult r = parse_conversations(R"({"data":[
      {"id":"c1","participants":{"data":[{"username":"jane.doe","id":"1234567890123456"}]},
       "messages":{"data":[
         {"id":"m2","created_time":"2025-07-28T22:44:49+0000","from":{"username":"jane.doe","id":"1234567890123456"},
          "to":{"data":[{"username":"acme.store","id":"17841400000000001"}]},"message":"hi"},
         {"id":"m1","from":{"id":"17841400000000001"}},
         {"id":"bad"}],
        "paging":{"cursors":{"after":"X"}}}},
      {"id":"c2"}]})");
    ASSERT_EQ(r.status, ParseStatus::ok);
    ASSERT_EQ(r.page.conversations.size(), 2u);
    const Conversation &c = r.page.conversations[0];
    EXPECT_TRUE(c.has_messages);
    ASSERT_EQ(c.messages.size(), 2u);
    EXPECT_EQ(c.messages[0].id, "m2");
    EXPECT_EQ(c.messages[0].text, "hi");
    EXPECT_EQ(c.messages[0].created_epoch, 1753742689);
    ASSERT_EQ(c.messages[0].to.size(), 1u);
    EXPECT_EQ(c.messages[1].from.id, "17841400000000001");
    EXPECT_EQ(r.page.skipped, 1u); // the message without `from`
    EXPECT_FALSE(r.page.conversations[1].has_messages);
    EXPECT_TRUE(r.page.conversations[1].messages.empty());
}

TEST(Conversations, MalformedMessagesEdgeKeepsTheConversation) {
    ConversationsResult r = parse_conversations(R"({"data":[{"id":"c1","messages":{"data":5}}]})");
    ASSERT_EQ(r.status, ParseStatus::ok);
    ASSERT_EQ(r.page.conversations.size(), 1u);
    EXPECT_FALSE(r.page.conversations[0].has_messages);
    EXPECT_EQ(r.page.skipped, 1u);
}
