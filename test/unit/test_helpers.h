// test_helpers.h — small helpers shared by the tests that talk to the mock.
#pragma once

#include "core/conversation_pager.h"
#include "core/graph_client.h"
#include "core/http.h"
#include "core/json.h"
#include "mock_graph_process.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace igid::test {

inline GraphAccount mock_account(const MockGraphProcess &mock, const char *id, const char *token,
                                 ApiHost host = ApiHost::facebook) {
    GraphAccount a;
    a.account_id = id;
    a.token = token;
    a.host = host;
    a.base_url = graph_base_url(mock.base_url(), host);
    return a;
}

// Steps the driver until it is idle (or the deadline passes).
inline std::vector<HttpResponse> drain(HttpDriver &driver, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    std::vector<HttpResponse> all;
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!driver.idle() && std::chrono::steady_clock::now() < deadline)
        for (HttpResponse &r : driver.step(100))
            all.push_back(std::move(r));
    return all;
}

// Pager options with short, fixed backoffs for tests.
inline ConversationPagerOptions quick_pager() {
    ConversationPagerOptions o;
    o.backoff_base = std::chrono::milliseconds(20);
    o.backoff_cap = std::chrono::milliseconds(50);
    o.rng = []() { return 0.5; };
    return o;
}

// A real cursor: the `after` of the first page of owner's conversations.
inline void first_cursor(HttpDriver &driver, const GraphAccount &a, const std::string &owner, std::string &cursor) {
    ConversationPager probe(a, owner, quick_pager());
    driver.submit(*probe.next_request());
    auto first = drain(driver);
    ASSERT_EQ(first.size(), 1u);
    PagerEvent e = probe.on_response(first[0]);
    ASSERT_TRUE(e.page.after);
    cursor = *e.page.after;
}

struct LoggedRequest {
    double t = 0, end = 0;
    std::string path, account, endpoint;
    long status = 0;
};

inline std::vector<LoggedRequest> logged_requests(const json_t *stats) {
    std::vector<LoggedRequest> out;
    const json_t *reqs = json_get_array(stats, "requests");
    std::size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r) {
        LoggedRequest l;
        l.t = json_get_number(r, "t").value_or(0);
        l.end = json_get_number(r, "end").value_or(0);
        l.path = json_get_string(r, "path").value_or("");
        l.account = json_get_string(r, "account").value_or("");
        l.endpoint = json_get_string(r, "endpoint").value_or("");
        l.status = static_cast<long>(json_get_int(r, "status").value_or(0));
        out.push_back(std::move(l));
    }
    return out;
}

// The mock appends a request to its log after answering it, so the log may
// trail the last answer by a moment: waits (up to 2.5 s) until it holds at
// least n entries, then returns it.
inline std::vector<LoggedRequest> logged_requests_at_least(MockGraphProcess &mock, std::size_t n) {
    auto reqs = logged_requests(mock.stats().get());
    for (int tries = 0; reqs.size() < n && tries < 50; ++tries) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        reqs = logged_requests(mock.stats().get());
    }
    return reqs;
}

// The most transfers (of one account, or of all when account is empty) the
// driver had in flight at once, by its own clock: the promise the caps make.
// (The mock's log cannot show it exactly: a request's end is stamped after
// its answer is written, by which time the driver may have started the next.)
inline int max_overlap(const std::vector<HttpResponse> &out, const std::string &account = "") {
    std::vector<std::pair<TimePoint, int>> events;
    for (const auto &r : out)
        if (r.attempted && (account.empty() || r.account == account)) {
            events.emplace_back(r.finished, -1); // an end sorts before a start at the same instant
            events.emplace_back(r.started, 1);
        }
    std::sort(events.begin(), events.end());
    int cur = 0, best = 0;
    for (auto &e : events)
        best = std::max(best, cur += e.second);
    return best;
}

inline long long stat_count(const json_t *stats, const char *group, const std::string &key) {
    return json_get_int(json_get_object(stats, group), key.c_str()).value_or(0);
}

} // namespace igid::test
