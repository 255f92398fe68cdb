// webhook_test.cpp — messaging webhook deliveries.
#include "core/webhook.h"

#include <gtest/gtest.h>

using namespace igid;

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
    EXPECT_EQ(r.skipped_events, 4u);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].mid, "m2");
}

TEST(Webhook, MalformedGivesNoPartialResult) {
    WebhookResult r = parse_webhook(R"({"object":"instagram","entry":[{"id":"1","time":1,"messaging":[
  {"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message":{"mid":"ok","text":"a"}},
  {"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message":{"text":"no mid"}}]}]})");
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(r.messages.empty());
    EXPECT_FALSE(r.reason.empty());
}

TEST(Webhook, MalformedShapes) {
    for (const char *bad : {
             "", "[]", R"({"object":"page","entry":[]})", R"({"entry":[]})", R"({"object":"instagram"})",
             R"({"object":"instagram","entry":[{"time":1,"messaging":[]}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":{}}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":[{"recipient":{"id":"1"},"timestamp":5,"message":{"mid":"m"}}]}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"message":{"mid":"m"}}]}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message":{"mid":"m","is_echo":"yes"}}]}]})",
             R"({"object":"instagram","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"timestamp":5,"message":{"mid":"m","text":7}}]}]})",
             R"({"object":"instagram","entry":[5]})"})
        EXPECT_FALSE(parse_webhook(bad).ok) << bad;
}

TEST(Webhook, EmptyEntryIsFine) {
    WebhookResult r = parse_webhook(R"({"object":"instagram","entry":[]})");
    EXPECT_TRUE(r.ok);
    EXPECT_TRUE(r.messages.empty());
}
