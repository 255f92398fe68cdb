// webhook_test.cpp — messaging webhook deliveries.
#include "core/webhook.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace igid;

namespace {

std::string fixture(const std::string &name) {
    std::ifstream in(std::string(IGID_SOURCE_DIR) + "/test/fixtures/graph/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    EXPECT_FALSE(ss.str().empty()) << name;
    return ss.str();
}

const char *A = "17841400000000001";

} // namespace

TEST(Webhook, DocumentedInbound) {
    WebhookResult r = parse_webhook(R"({"object":"instagram","entry":[{"id":"17841400000000001","time":1752834911539,
 "messaging":[{"sender":{"id":"1234567890123456"},"recipient":{"id":"17841400000000001"},
  "timestamp":1752834910447,"message":{"mid":"aWdfZAG1faXRlbTox","text":"hi"}}]}]})");
    ASSERT_TRUE(r.ok) << r.reason;
    ASSERT_EQ(r.messages.size(), 1u);
    const WebhookMessage &m = r.messages[0];
    EXPECT_EQ(m.account_id, "17841400000000001");
    EXPECT_EQ(m.mid, "aWdfZAG1faXRlbTox");
    EXPECT_EQ(m.from_id, "1234567890123456");
    EXPECT_EQ(m.to_id, "17841400000000001");
    EXPECT_EQ(m.participant_id, "1234567890123456");
    EXPECT_EQ(m.timestamp_ms, 1752834910447);
    EXPECT_EQ(m.text, "hi");
    EXPECT_FALSE(m.is_echo);
    EXPECT_FALSE(m.is_deleted);
}

TEST(Webhook, EchoParticipantIsTheRecipient) {
    // Trap 8: the business sent it; the person is the recipient.
    WebhookResult r = parse_webhook(R"({"object":"instagram","entry":[{"id":"17841400000000001","time":1,
 "messaging":[{"sender":{"id":"17841400000000001"},"recipient":{"id":"1234567890123456"},
  "timestamp":1752834910447,"message":{"mid":"m1","text":"hello back","is_echo":true}}]}]})");
    ASSERT_TRUE(r.ok);
    const WebhookMessage &m = r.messages[0];
    EXPECT_TRUE(m.is_echo);
    EXPECT_EQ(m.from_id, "17841400000000001");
    EXPECT_EQ(m.to_id, "1234567890123456");
    EXPECT_EQ(m.participant_id, "1234567890123456");
}

TEST(Webhook, DeletedWithoutText) {
    WebhookResult r = parse_webhook(R"({"object":"instagram","entry":[{"id":"1","time":1,
 "messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message":{"mid":"m","is_deleted":true}}]}]})");
    ASSERT_TRUE(r.ok);
    EXPECT_TRUE(r.messages[0].is_deleted);
    EXPECT_FALSE(r.messages[0].text);
}

TEST(Webhook, OtherEventsSkippedAndCounted) {
    WebhookResult r = parse_webhook(R"({"object":"instagram","entry":[{"id":"1","time":1,"messaging":[
  {"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"reaction":{"mid":"m","action":"react","reaction":"love"}},
  {"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"read":{"mid":"m"}},
  {"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"postback":{"mid":"m","payload":"x"}},
  {"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message_edit":{"mid":"m","text":"y","num_edit":1}},
  {"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":6,"message":{"mid":"m2","text":"real"}}
 ]},{"id":"1","time":2,"changes":[{"field":"comments"}]}]})");
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_EQ(r.skipped_events, 4u); // reaction, read, edit, one changes item
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].mid, "m2");
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].kind, "postback");
    EXPECT_TRUE(r.dead_letters.empty());
}

TEST(Webhook, MalformedEventIsADeadLetterTheRestIsKept) {
    WebhookResult r = parse_webhook(R"({"object":"instagram","entry":[{"id":"1","time":1,"messaging":[
  {"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message":{"mid":"ok","text":"a"}},
  {"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message":{"text":"no mid"}}]}]})");
    ASSERT_TRUE(r.ok);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].mid, "ok");
    ASSERT_EQ(r.dead_letters.size(), 1u);
    EXPECT_EQ(r.dead_letters[0].account_id, "1");
    EXPECT_EQ(r.dead_letters[0].reason, "message without mid");
    // the dead letter is a delivery of its own, with only the bad event
    WebhookResult again = parse_webhook(r.dead_letters[0].raw);
    ASSERT_TRUE(again.ok) << r.dead_letters[0].raw;
    EXPECT_TRUE(again.messages.empty());
    ASSERT_EQ(again.dead_letters.size(), 1u);
    EXPECT_EQ(again.dead_letters[0].raw, r.dead_letters[0].raw);
}

TEST(Webhook, WholeDeliveryRefusedOnlyWhenItIsNoDelivery) {
    for (const char *bad : {"", "[]", R"({"object":"page","entry":[]})", R"({"entry":[]})",
                            R"({"object":"instagram"})", R"({"object":"instagram","entry":{}})"})
        EXPECT_FALSE(parse_webhook(bad).ok) << bad;
}

TEST(Webhook, MalformedShapesBecomeDeadLetters) {
    for (const char *bad : {
             R"({"object":"instagram","entry":[{"time":1,"messaging":[]}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":{}}]})",
             R"({"object":"instagram","entry":[{"id":"1","standby":5}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":[7]}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":[{"recipient":{"id":"1"},"timestamp":5,"message":{"mid":"m"}}]}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"message":{"mid":"m"}}]}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message":{"mid":"m","is_echo":"yes"}}]}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message":{"mid":"m","text":7}}]}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message":{"mid":"m","attachments":{}}}]}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message":{"mid":"m","attachments":[{"payload":{}}]}}]}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message":{"mid":"m","reply_to":"x"}}]}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"postback":"x"}]}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"typing":{}}]}]})",
             R"({"object":"instagram","entry":[5]})"}) {
        WebhookResult r = parse_webhook(bad);
        EXPECT_TRUE(r.ok) << bad;
        EXPECT_TRUE(r.messages.empty()) << bad;
        ASSERT_EQ(r.dead_letters.size(), 1u) << bad;
        EXPECT_FALSE(r.dead_letters[0].reason.empty());
        // parsing the dead letter again gives the same dead letter
        WebhookResult again = parse_webhook(r.dead_letters[0].raw);
        ASSERT_EQ(again.dead_letters.size(), 1u) << r.dead_letters[0].raw;
        EXPECT_EQ(again.dead_letters[0].reason, r.dead_letters[0].reason);
    }
}

TEST(Webhook, EmptyEntryIsFine) {
    WebhookResult r = parse_webhook(R"({"object":"instagram","entry":[]})");
    EXPECT_TRUE(r.ok);
    EXPECT_TRUE(r.messages.empty());
}

// One test per fixture of test/fixtures/graph/webhook_*.json.

TEST(WebhookFixture, Standby) {
    WebhookResult r = parse_webhook(fixture("webhook_standby.json"));
    ASSERT_TRUE(r.ok) << r.reason;
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].mid, "wh.standby.1");
    EXPECT_EQ(r.messages[0].text, "is anyone there?");
    EXPECT_EQ(r.messages[0].participant_id, "1111222233334444");
    EXPECT_EQ(r.messages[0].kind, "text");
    EXPECT_TRUE(r.dead_letters.empty());
}

TEST(WebhookFixture, Attachments) {
    WebhookResult r = parse_webhook(fixture("webhook_attachments.json"));
    ASSERT_TRUE(r.ok) << r.reason;
    ASSERT_EQ(r.messages.size(), 7u);
    const char *types[] = {"image", "video", "audio", "file", "share", "story_mention", "ig_reel"};
    for (size_t i = 0; i < 7; i++) {
        const WebhookMessage &m = r.messages[i];
        EXPECT_EQ(m.kind, "attachment") << m.mid;
        ASSERT_TRUE(m.attachments) << m.mid;
        EXPECT_NE(m.attachments->find(std::string("\"type\":\"") + types[i] + "\""), std::string::npos)
            << *m.attachments;
        EXPECT_NE(m.attachments->find("\"payload\":{"), std::string::npos) << *m.attachments;
    }
    EXPECT_FALSE(r.messages[0].text);
    EXPECT_EQ(r.messages[6].text, "look at this"); // text and attachment together
    EXPECT_TRUE(r.dead_letters.empty());
}

TEST(WebhookFixture, ReplyTo) {
    WebhookResult r = parse_webhook(fixture("webhook_reply_to.json"));
    ASSERT_TRUE(r.ok) << r.reason;
    ASSERT_EQ(r.messages.size(), 2u);
    EXPECT_EQ(r.messages[0].reply_to, R"({"mid":"wh.standby.1"})");
    ASSERT_TRUE(r.messages[1].reply_to);
    EXPECT_NE(r.messages[1].reply_to->find(R"("story":{)"), std::string::npos);
    EXPECT_EQ(r.messages[1].kind, "text");
}

TEST(WebhookFixture, Unsupported) {
    WebhookResult r = parse_webhook(fixture("webhook_unsupported.json"));
    ASSERT_TRUE(r.ok) << r.reason;
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_TRUE(r.messages[0].is_unsupported);
    EXPECT_EQ(r.messages[0].kind, "unsupported");
    EXPECT_FALSE(r.messages[0].text);
}

TEST(WebhookFixture, Unsend) {
    WebhookResult r = parse_webhook(fixture("webhook_unsend.json"));
    ASSERT_TRUE(r.ok) << r.reason;
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_TRUE(r.messages[0].is_deleted);
    EXPECT_EQ(r.messages[0].kind, "deleted");
    EXPECT_EQ(r.messages[0].mid, "wh.standby.1");
}

TEST(WebhookFixture, Postback) {
    WebhookResult r = parse_webhook(fixture("webhook_postback.json"));
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_TRUE(r.messages.empty());
    ASSERT_EQ(r.events.size(), 2u);
    EXPECT_EQ(r.events[0].kind, "postback");
    EXPECT_EQ(r.events[0].account_id, A);
    EXPECT_EQ(r.events[0].participant_id, "5555666677778888");
    EXPECT_EQ(r.events[0].mid, "wh.postback.1");
    EXPECT_EQ(r.events[0].timestamp_ms, 1752900005001);
    EXPECT_NE(r.events[0].payload.find("ICEBREAKER_HOURS"), std::string::npos);
}

TEST(WebhookFixture, Referral) {
    WebhookResult r = parse_webhook(fixture("webhook_referral.json"));
    ASSERT_TRUE(r.ok) << r.reason;
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].kind, "referral");
    EXPECT_EQ(r.events[0].participant_id, "9999000011112222");
    EXPECT_FALSE(r.events[0].mid);
    EXPECT_EQ(r.events[0].payload, R"({"ref":"spring_sale","source":"IGME_LINK","type":"OPEN_THREAD"})");
}

TEST(WebhookFixture, ReactionsAndReadsSkippedAndCounted) {
    WebhookResult r = parse_webhook(fixture("webhook_reaction_read.json"));
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_TRUE(r.messages.empty());
    EXPECT_TRUE(r.events.empty());
    EXPECT_TRUE(r.dead_letters.empty());
    EXPECT_EQ(r.skipped_events, 3u);
}

TEST(WebhookFixture, DashboardTestChangesSkipped) {
    WebhookResult r = parse_webhook(fixture("webhook_changes_test.json"));
    ASSERT_TRUE(r.ok) << r.reason;
    EXPECT_TRUE(r.messages.empty());
    EXPECT_EQ(r.skipped_events, 1u);
}

TEST(WebhookFixture, PartlyBad) {
    WebhookResult r = parse_webhook(fixture("webhook_partly_bad.json"));
    ASSERT_TRUE(r.ok) << r.reason;
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].mid, "wh.good.1");
    ASSERT_EQ(r.dead_letters.size(), 3u);
    EXPECT_EQ(r.dead_letters[0].reason, "message without mid");
    EXPECT_EQ(r.dead_letters[0].account_id, A);
    EXPECT_EQ(r.dead_letters[1].reason.rfind("unknown event", 0), 0u);
    EXPECT_EQ(r.dead_letters[2].reason, "entry without id");
    EXPECT_FALSE(r.dead_letters[2].account_id);
    EXPECT_NE(r.dead_letters[2].raw.find("wh.orphan.1"), std::string::npos);
}
