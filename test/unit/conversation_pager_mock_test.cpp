// conversation_pager_mock_test.cpp — paging the Conversations API through the
// mock, plus one conversation's messages and a batch of profiles.
#include "core/batch.h"
#include "core/conversation_messages.h"
#include "core/conversation_pager.h"
#include "test_helpers.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

using namespace igid;
using namespace igid::test;
using namespace std::chrono;

namespace {

struct PagerRun {
    std::vector<Conversation> conversations;
    std::vector<PagerEvent> events;
};

// Drives a pager to its end through one HttpDriver, honouring retry delays.
PagerRun run_pager(ConversationPager &pager, HttpDriver &driver) {
    PagerRun run;
    for (int guard = 0; guard < 200; ++guard) {
        auto req = pager.next_request();
        if (!req)
            break;
        driver.submit(*req);
        auto responses = drain(driver);
        EXPECT_EQ(responses.size(), 1u);
        if (responses.empty())
            break;
        PagerEvent e = pager.on_response(responses[0]);
        for (const auto &c : e.page.conversations)
            run.conversations.push_back(c);
        if (e.kind == PagerEvent::Kind::retry)
            std::this_thread::sleep_for(e.retry_in);
        run.events.push_back(std::move(e));
    }
    return run;
}

class PagerMock : public ::testing::Test {
protected:
    MockGraphProcess mock{{"--generate-conversations", "120"}};
    GraphAccount a = mock_account(mock, kAccountA, kTokenA);
    GraphAccount b = mock_account(mock, kAccountB, kTokenB, ApiHost::instagram);
};

// The contract's built-in default data (jane.doe, no.consent, …).
class DefaultDataMock : public ::testing::Test {
protected:
    MockGraphProcess mock;
    GraphAccount a = mock_account(mock, kAccountA, kTokenA);
    GraphAccount b = mock_account(mock, kAccountB, kTokenB, ApiHost::instagram);
};

} // namespace

TEST_F(PagerMock, PagesAcrossManyPages) {
    HttpDriver driver;
    for (const GraphAccount &acct : {a, b}) {
        ConversationPager pager(acct, conversation_list_owner(acct.host, acct.account_id), quick_pager());
        PagerRun run = run_pager(pager, driver);
        EXPECT_TRUE(pager.finished());
        EXPECT_FALSE(pager.failed());
        // 120 generated conversations alternate between A and B.
        const std::size_t expected = 60;
        EXPECT_EQ(run.conversations.size(), expected);
        EXPECT_EQ(pager.pages(), (expected + 24) / 25);
        std::set<std::string> ids;
        for (const auto &c : run.conversations) {
            ids.insert(c.id);
            EXPECT_TRUE(c.updated_epoch) << c.updated_time;
            auto other = other_party(c.participants, acct.account_id);
            ASSERT_TRUE(other) << c.id;
            EXPECT_NE(other->id, acct.account_id); // self is never the other party
            EXPECT_TRUE(other->username);
        }
        EXPECT_EQ(ids.size(), expected); // no page repeated
    }
    JsonPtr s = mock.stats();
    EXPECT_EQ(json_get_int(s.get(), "unauthorized"), 0);
    for (const auto &r : logged_requests(s.get())) {
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.path.find("token"), std::string::npos);
    }
}

TEST_F(PagerMock, PageOwnerCanBeThePageId) {
    HttpDriver driver;
    ConversationPager pager(a, kPageA, quick_pager());
    PagerRun run = run_pager(pager, driver);
    EXPECT_TRUE(pager.finished());
    EXPECT_EQ(run.conversations.size(), 60u);
}

TEST_F(PagerMock, ShortOrEmptyPageWithNextIsNotTheLast) {
    HttpDriver driver;
    // A first walk, for a real cursor: the one after the first 25 items.
    std::string cursor;
    ASSERT_NO_FATAL_FAILURE(first_cursor(driver, a, conversation_list_owner(a.host, kAccountA), cursor));
    // The first answer of a new walk is an empty page that still says `next`.
    mock.fault(R"({"match":{"endpoint":"conversations"},"count":1,"fault":{"type":"http_status","status":200,)"
               R"("body":{"data":[],"paging":{"cursors":{"before":")" + cursor + R"(","after":")" + cursor +
               R"("},"next":"http://127.0.0.1/v21.0/x/conversations?after=)" + cursor + R"("}}}})");
    ConversationPager pager(a, conversation_list_owner(a.host, kAccountA), quick_pager());
    PagerRun run = run_pager(pager, driver);
    ASSERT_FALSE(run.events.empty());
    EXPECT_EQ(run.events[0].kind, PagerEvent::Kind::page);
    EXPECT_TRUE(run.events[0].page.conversations.empty());
    EXPECT_TRUE(pager.finished());
    EXPECT_FALSE(pager.failed());
    EXPECT_EQ(pager.pages(), 3u);
    EXPECT_EQ(run.conversations.size(), 35u); // items 25..59
}

TEST_F(PagerMock, TransientPageFailureIsRetried) {
    mock.fault(R"({"match":{"endpoint":"conversations"},"count":2,"fault":{"type":"http_status","status":502}})");
    HttpDriver driver;
    ConversationPager pager(a, conversation_list_owner(a.host, kAccountA), quick_pager());
    PagerRun run = run_pager(pager, driver);
    EXPECT_TRUE(pager.finished());
    EXPECT_EQ(run.conversations.size(), 60u);
    ASSERT_GE(run.events.size(), 2u);
    EXPECT_EQ(run.events[0].kind, PagerEvent::Kind::retry);
    EXPECT_EQ(run.events[1].kind, PagerEvent::Kind::retry);
}

TEST_F(PagerMock, ExpiredTokenStopsPaging) {
    mock.fault(R"({"match":{"endpoint":"conversations"},"fault":{"type":"graph_error","code":190,"subcode":463}})");
    HttpDriver driver;
    ConversationPager pager(a, conversation_list_owner(a.host, kAccountA), quick_pager());
    PagerRun run = run_pager(pager, driver);
    ASSERT_EQ(run.events.size(), 1u);
    EXPECT_EQ(run.events[0].kind, PagerEvent::Kind::failed);
    EXPECT_EQ(run.events[0].action.kind, ActionKind::reauth_required);
    EXPECT_TRUE(pager.failed());
    EXPECT_FALSE(pager.next_request());
    EXPECT_EQ(run.events[0].detail.find(kTokenA), std::string::npos);
}

TEST_F(PagerMock, ThrottleStopsPagingWithAPause) {
    mock.fault(R"({"match":{"endpoint":"conversations"},"fault":{"type":"http_status","status":429}})");
    HttpDriver driver;
    ConversationPager pager(a, conversation_list_owner(a.host, kAccountA), quick_pager());
    PagerRun run = run_pager(pager, driver);
    ASSERT_EQ(run.events.size(), 1u);
    EXPECT_EQ(run.events[0].action.kind, ActionKind::throttled);
    EXPECT_GE(run.events[0].pause_for, seconds(60));
}

TEST_F(DefaultDataMock, ConversationMessages) {
    HttpDriver driver;
    ConversationPager pager(a, conversation_list_owner(a.host, kAccountA), quick_pager());
    PagerRun run = run_pager(pager, driver);
    ASSERT_EQ(run.conversations.size(), 3u);
    const Conversation &c = run.conversations[0];
    driver.submit(*conversation_messages_request(a, c.id));
    auto out = drain(driver);
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].status, 200) << out[0].body;
    ConversationMessagesResult r = parse_conversation_messages(out[0].body);
    ASSERT_EQ(r.status, ParseStatus::ok);
    EXPECT_EQ(r.conversation.id, c.id);
    ASSERT_EQ(r.conversation.participants.size(), 2u);
    ASSERT_FALSE(r.conversation.messages.empty());
    auto other = other_party(r.conversation.participants, kAccountA);
    ASSERT_TRUE(other);
    for (const Message &m : r.conversation.messages) {
        EXPECT_FALSE(m.id.empty());
        EXPECT_TRUE(m.created_epoch);
        ASSERT_EQ(m.to.size(), 1u);
        // Every message is between the account and the other party, either way.
        bool outbound = m.from.id == kAccountA;
        EXPECT_EQ(outbound ? m.to[0].id : m.from.id, other->id);
    }
}

TEST_F(DefaultDataMock, BatchOfProfiles) {
    std::vector<std::string> ids = {kJane, kJohn, kNoConsent, kGone, "1999999999999999"};
    mock.fault(R"({"match":{"user":"1000000000000102"},"fault":{"type":"mismatched_id"}})");
    HttpDriver driver;
    driver.submit(*batch_profiles_request(a, ids));
    auto out = drain(driver);
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].status, 200) << out[0].body;
    BatchResult batch = parse_batch(out[0].body);
    ASSERT_EQ(batch.status, ParseStatus::ok);
    auto items = batch_profiles(batch, ids);
    ASSERT_EQ(items.size(), ids.size());
    EXPECT_EQ(items[0].result.status, ProfileStatus::ok);
    EXPECT_EQ(items[0].result.profile->username, "jane.doe");
    EXPECT_EQ(items[1].result.status, ProfileStatus::id_mismatch);
    ASSERT_EQ(items[2].result.status, ProfileStatus::graph_error);
    EXPECT_EQ(items[2].result.error->code, 230);
    ASSERT_EQ(items[3].result.status, ProfileStatus::graph_error);
    EXPECT_EQ(items[3].result.error->code, 9010);
    ASSERT_EQ(items[4].result.status, ProfileStatus::graph_error);
    EXPECT_EQ(items[4].result.error->subcode, 33);
    EXPECT_EQ(json_get_int(json_get_object(mock.stats().get(), "by_endpoint"), "batch_items"), 5);
    EXPECT_FALSE(batch_profiles_request(b, ids)); // instagram host: no batch
}

TEST_F(DefaultDataMock, BatchNullItemIsNoAnswer) {
    mock.fault(R"({"match":{"user":"1000000000000102"},"fault":{"type":"batch_null"}})");
    std::vector<std::string> ids = {kJane, kJohn};
    HttpDriver driver;
    driver.submit(*batch_profiles_request(a, ids));
    auto out = drain(driver);
    ASSERT_EQ(out.size(), 1u);
    auto items = batch_profiles(parse_batch(out[0].body), ids);
    ASSERT_EQ(items.size(), 2u);
    EXPECT_TRUE(items[0].answered);
    EXPECT_FALSE(items[1].answered);
}
