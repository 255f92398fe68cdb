// token_destination_test.cpp — an access token goes only to the configured
// Graph base URL.
//
//   - every request builder puts its request under the account's base URL
//     (same scheme, host and path prefix), whatever the ids or cursor hold,
//     and never puts the token in the URL or body;
//   - the curl driver never follows a redirect: a 301/302/303/307/308 from
//     the mock whose Location points at a second local listener is returned
//     as is, and that listener sees no request at all (so no Authorization
//     header either); a control request proves the listener records
//     Authorization headers when one does arrive;
//   - a Conversations page whose `paging.next` (an absolute URL chosen by the
//     server) points at that listener is not followed: paging goes on from
//     the cursor, at the configured base, and the listener sees nothing.
#include "core/conversation_pager.h"
#include "core/graph_client.h"
#include "core/http.h"
#include "core/url.h"
#include "test_helpers.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <atomic>
#include <cctype>
#include <iterator>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace igid;
using namespace igid::test;
using namespace std::chrono;

namespace {

// A loopback HTTP listener that records the head of every request it gets
// and answers 200 {}. It stands for "somewhere else" a server may point to.
class RecordingListener {
public:
    RecordingListener() {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0)
            throw std::runtime_error("socket failed");
        int one = 1;
        setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        socklen_t len = sizeof addr;
        if (bind(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || listen(fd_, 16) != 0 ||
            getsockname(fd_, reinterpret_cast<sockaddr *>(&addr), &len) != 0)
            throw std::runtime_error("bind/listen failed");
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ~RecordingListener() {
        stop_ = true;
        thread_.join();
        close(fd_);
    }
    RecordingListener(const RecordingListener &) = delete;
    RecordingListener &operator=(const RecordingListener &) = delete;

    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v21.0"; }

    // Connections accepted so far, and the request heads read from them.
    int connections() const { return connections_.load(); }
    std::vector<std::string> heads() const {
        std::lock_guard<std::mutex> g(mu_);
        return heads_;
    }
    int heads_with_authorization() const {
        int n = 0;
        for (const std::string &h : heads()) {
            std::string lower = h;
            for (char &c : lower)
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            n += lower.find("\r\nauthorization:") != std::string::npos;
        }
        return n;
    }

private:
    void serve() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, 50) <= 0)
                continue;
            int c = accept(fd_, nullptr, nullptr);
            if (c < 0)
                continue;
            ++connections_;
            std::string head;
            char buf[4096];
            auto deadline = steady_clock::now() + seconds(5);
            while (head.find("\r\n\r\n") == std::string::npos && steady_clock::now() < deadline) {
                pollfd q{c, POLLIN, 0};
                if (poll(&q, 1, 100) <= 0)
                    continue;
                ssize_t n = read(c, buf, sizeof buf);
                if (n <= 0)
                    break;
                head.append(buf, static_cast<std::size_t>(n));
            }
            {
                std::lock_guard<std::mutex> g(mu_);
                heads_.push_back(head);
            }
            static const char answer[] =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                "Connection: close\r\n\r\n{}";
            ssize_t ignored = write(c, answer, sizeof answer - 1);
            (void)ignored;
            close(c);
        }
    }

    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0};
    mutable std::mutex mu_;
    std::vector<std::string> heads_;
    std::thread thread_;
};

// scheme://host[:port] and the path prefix of a base URL, as curl sees them.
void expect_under_base(const HttpRequest &r, const GraphAccount &acct, const std::string &what) {
    EXPECT_EQ(r.url.rfind(acct.base_url + "/", 0), 0u) << what << ": " << r.url;
    auto target = url_target(r.url);
    auto base = url_target(acct.base_url);
    ASSERT_TRUE(target) << what << ": " << r.url;
    ASSERT_TRUE(base);
    EXPECT_EQ(target->scheme, base->scheme) << what << ": " << r.url;
    EXPECT_EQ(target->host, base->host) << what << ": " << r.url;
    EXPECT_EQ(r.url.find(acct.token), std::string::npos) << what;
    EXPECT_EQ(r.body.find(acct.token), std::string::npos) << what;
    EXPECT_EQ(r.bearer_token, acct.token) << what;
}

} // namespace

TEST(TokenDestination, EveryRequestStaysUnderTheConfiguredBase) {
    const char *hostile[] = {"http://evil.example/x", "//evil.example/x", "@evil.example", "../../../x",
                             "..%2F..%2Fx", "x#@evil.example", "1?access_token=x", "a b\r\nHost: evil.example",
                             "QVFIU%2F%2Fevil", "https:evil.example"};
    for (const char *override_url : {"", "http://127.0.0.1:8123/v21.0", "https://proxy.internal/graph/v21.0"}) {
        for (ApiHost host : {ApiHost::facebook, ApiHost::instagram}) {
            GraphAccount acct{"17841400000000001", "tok-unit-destination", host, graph_base_url(override_url, host), {}};
            expect_under_base(*profile_request(acct, "1000000000000101"), acct, "profile");
            expect_under_base(*profile_request(acct, "1000000000000101", true), acct, "profile basic");
            expect_under_base(me_request(acct), acct, "me");
            expect_under_base(*conversations_request(acct, "17841400000000001"), acct, "conversations");
            expect_under_base(*conversation_messages_request(acct, "aWdfZAG06MTpJR01lc3NhZA"), acct, "messages");
            if (host == ApiHost::facebook)
                expect_under_base(*batch_profiles_request(acct, {"1000000000000101", "1000000000000102"}), acct,
                                  "batch");
            for (const char *h : hostile) {
                // Ids are validated: a hostile id gives no request at all.
                EXPECT_FALSE(profile_request(acct, h)) << h;
                EXPECT_FALSE(conversations_request(acct, h)) << h;
                EXPECT_FALSE(conversation_messages_request(acct, h)) << h;
                EXPECT_FALSE(batch_profiles_request(acct, {"1000000000000101", h})) << h;
                // A cursor is the server's text: it is encoded, never a URL.
                auto r = conversations_request(acct, "17841400000000001", h);
                ASSERT_TRUE(r) << h;
                expect_under_base(*r, acct, std::string("cursor ") + h);
                const std::string tail = "&after=" + url_encode(h);
                EXPECT_TRUE(r->url.size() > tail.size() &&
                            r->url.compare(r->url.size() - tail.size(), tail.size(), tail) == 0)
                    << r->url;
            }
        }
    }
}

class TokenDestinationMock : public ::testing::Test {
protected:
    MockGraphProcess mock{{"--generate-conversations", "60"}};
    GraphAccount a = mock_account(mock, kAccountA, kTokenA);
    RecordingListener elsewhere;
};

TEST_F(TokenDestinationMock, ListenerRecordsAuthorizationWhenSentThere) {
    // The control: a request addressed to the listener itself is recorded,
    // with its Authorization header, so the zero counts below are real.
    HttpDriver d;
    HttpRequest r;
    r.account = "control";
    r.url = elsewhere.base_url() + "/me";
    r.bearer_token = "not-a-token";
    d.submit(r);
    auto out = drain(d);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].status, 200) << out[0].error_text;
    EXPECT_EQ(elsewhere.connections(), 1);
    EXPECT_EQ(elsewhere.heads_with_authorization(), 1);
}

TEST_F(TokenDestinationMock, RedirectsAreNotFollowed) {
    HttpDriver d;
    const int statuses[] = {301, 302, 303, 307, 308};
    std::uint64_t id = 0;
    for (int status : statuses) {
        mock.fault(R"({"match":{"user":")" + std::string(kJane) + R"("},"count":1,"fault":{"type":"http_status",)"
                   R"("status":)" + std::to_string(status) + R"(,"body":"",)"
                   R"("headers":{"Location":")" + elsewhere.base_url() + "/" + kJane +
                   R"(?fields=username"}}})");
        HttpRequest r = *profile_request(a, kJane);
        r.id = ++id;
        d.submit(r);
        auto out = drain(d);
        ASSERT_EQ(out.size(), 1u) << status;
        EXPECT_EQ(out[0].status, status) << out[0].error_text;
    }
    auto reqs = logged_requests_at_least(mock, std::size(statuses));
    ASSERT_EQ(reqs.size(), std::size(statuses)); // each redirect was served by the mock...
    for (std::size_t i = 0; i < reqs.size(); ++i)
        EXPECT_EQ(reqs[i].status, statuses[i]);
    EXPECT_EQ(elsewhere.connections(), 0); // ...and nothing reached the place it named
    EXPECT_EQ(elsewhere.heads_with_authorization(), 0);
}

TEST_F(TokenDestinationMock, PagingNextElsewhereIsNotFollowed) {
    HttpDriver driver;
    // A real cursor: the one after the first 25 of account A's 30 conversations.
    std::string cursor;
    ASSERT_NO_FATAL_FAILURE(first_cursor(driver, a, conversation_list_owner(a.host, kAccountA), cursor));
    mock.reset();
    // The next answer says: go on at the listener.
    mock.fault(R"({"match":{"endpoint":"conversations"},"count":1,"fault":{"type":"http_status","status":200,)"
               R"("body":{"data":[],"paging":{"cursors":{"before":")" + cursor + R"(","after":")" + cursor +
               R"("},"next":")" + elsewhere.base_url() + "/" + kAccountA + "/conversations?after=" + cursor +
               R"("}}}})");
    ConversationPager pager(a, conversation_list_owner(a.host, kAccountA), quick_pager());
    std::size_t conversations = 0;
    for (int guard = 0; guard < 20; ++guard) {
        auto req = pager.next_request();
        if (!req)
            break;
        expect_under_base(*req, a, "page request");
        driver.submit(*req);
        auto out = drain(driver);
        ASSERT_EQ(out.size(), 1u);
        PagerEvent e = pager.on_response(out[0]);
        ASSERT_NE(e.kind, PagerEvent::Kind::failed) << e.detail;
        conversations += e.page.conversations.size();
    }
    EXPECT_TRUE(pager.finished());
    EXPECT_EQ(conversations, 5u); // items 25..29, fetched from the mock with the cursor
    EXPECT_EQ(stat_count(mock.stats().get(), "by_endpoint", "conversations"), 2);
    EXPECT_EQ(elsewhere.connections(), 0);
}
