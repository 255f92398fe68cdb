// conversation_pager.h — walks one account's Conversations API pages: request
// after request from the `after` cursor until there is no `paging.next`.
// The caller sends each request (through an HttpDriver) and feeds the answer
// back; the pager parses it, retries transient failures with backoff, and
// stops on anything else.
#pragma once

#include "conversations.h"
#include "graph_client.h"
#include "policy.h"
#include "random.h"

#include <chrono>
#include <optional>
#include <set>
#include <string>

namespace igid {

struct ConversationPagerOptions {
    int max_attempts = 3;         // per page, for transient failures
    std::size_t max_pages = 1000; // a bound against a server that never ends
    std::chrono::milliseconds backoff_base{500};
    std::chrono::milliseconds backoff_cap{30000};
    Rng rng;                      // default_rng() when empty
};

struct PagerEvent {
    enum class Kind {
        page,     // a page arrived; more may follow (see ConversationPager::finished)
        retry,    // transient failure: send next_request() again after retry_in
        failed,   // stopped: see action/error/detail
    };
    Kind kind = Kind::failed;
    ConversationsPage page;           // with Kind::page
    Action action;                    // ok for pages; the reason otherwise
    std::optional<GraphError> error;
    Usage usage;
    std::chrono::milliseconds retry_in{0};
    std::chrono::milliseconds pause_for{0}; // throttled / policy block: how long the account waits
    std::string detail;               // short, redacted
};

class ConversationPager {
public:
    // owner_id: "me" or an id from conversation_list_owner().
    ConversationPager(GraphAccount account, std::string owner_id, ConversationPagerOptions options = {});

    // The request for the current page; nullopt once finished or failed.
    std::optional<HttpRequest> next_request() const;

    // Consumes the answer to next_request().
    PagerEvent on_response(const HttpResponse &response);

    bool finished() const { return finished_; }
    bool failed() const { return failed_; }
    std::size_t pages() const { return pages_; }

private:
    PagerEvent fail(PagerEvent e);

    GraphAccount account_;
    std::string owner_id_;
    ConversationPagerOptions options_;
    std::string cursor_;
    std::set<std::string> seen_cursors_;
    int attempts_ = 0;
    int consecutive_throttles_ = 0;
    std::size_t pages_ = 0;
    bool finished_ = false;
    bool failed_ = false;
};

} // namespace igid
