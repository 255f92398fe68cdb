// http.h — a curl multi driver: many HTTPS transfers at once, driven from
// outside in short steps so a PostgreSQL caller can check for interrupts
// between them.
//
// Limits: a global concurrency cap, a per-account cap, a per-account rate
// (token bucket) and per-account pauses. Requests of a paused account that
// have not started are returned as "not attempted" (attempted == false, with
// the pause end) at the next step, and so is anything submitted for the
// account while it is paused; transfers already running finish normally.
//
// Safety: the token travels only in an `Authorization: Bearer` header and is
// scrubbed from every error text; https only (plain http only to a loopback
// host, decided per request, and never through a proxy the environment
// names); no redirects; no verbose output; connect and total timeouts; a
// response size cap (too_large); CURLOPT_NOSIGNAL; peer and host name
// verified against the system CA store or HttpOptions::ca_file.
#pragma once

#include "clock.h"
#include "transport_error.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace igid {

struct HttpRequest {
    std::uint64_t id = 0;     // the caller's tag, returned in the response
    std::string account;      // key for per-account caps, rate and pauses
    std::string method = "GET"; // GET or POST
    std::string url;          // must not carry the token (but see url_secret)
    std::string body;         // POST: application/x-www-form-urlencoded
    std::string bearer_token; // sent as Authorization: Bearer
    // The token refresh only (Meta documents it with the token in the query):
    // the credential this url carries. Such a url passes the no-token guard
    // only when it carries exactly this value, and error texts never show
    // the url or the value.
    std::string url_secret;
    long timeout_ms = 0;      // 0: HttpOptions::total_timeout_ms
};

struct HttpResponse {
    std::uint64_t id = 0;
    std::string account;
    bool attempted = true;                  // false: never started (account paused)
    std::optional<TimePoint> paused_until;  // set when !attempted
    long status = 0;                        // HTTP status, 0 without an answer
    TransportError error = TransportError::none;
    std::string error_text;                 // redacted; empty when error == none
    std::string body;
    std::optional<std::string> app_usage;      // X-App-Usage
    std::optional<std::string> business_usage; // X-Business-Use-Case-Usage
    std::optional<std::string> content_type;
    TimePoint started{};
    TimePoint finished{};
};

struct HttpOptions {
    int max_concurrency = 8;          // transfers at once, all accounts
    int per_account_concurrency = 4;  // transfers at once, one account
    double requests_per_second = 0;   // per account, default for new accounts; 0 = unlimited
    long connect_timeout_ms = 5000;
    long total_timeout_ms = 15000;
    std::size_t max_response_bytes = 1024 * 1024;
    std::string ca_file;              // CA bundle (PEM) for https; empty: the system store
    Clock clock = steady_now;         // for rates and pauses only
};

class HttpDriver {
public:
    // Throws std::runtime_error when libcurl cannot be initialised.
    explicit HttpDriver(HttpOptions options = {});
    ~HttpDriver(); // aborts every transfer
    HttpDriver(const HttpDriver &) = delete;
    HttpDriver &operator=(const HttpDriver &) = delete;

    // Queues a request; it starts when caps, rate and pauses allow.
    void submit(HttpRequest request);

    // Starts what may start, runs transfers, waits at most max_wait_ms (less
    // when a rate-limited start falls due sooner) and returns what finished.
    // Returns at once when something finished or nothing is pending.
    std::vector<HttpResponse> step(int max_wait_ms);

    void set_account_rate(const std::string &account, double requests_per_second);
    // No request of the account starts before `earliest` (see RateLimiter::hold_until).
    void hold_account(const std::string &account, TimePoint earliest);
    // Pauses an account until `until`; a time in the past lifts the pause.
    void pause_account(const std::string &account, TimePoint until);
    std::optional<TimePoint> paused_until(const std::string &account) const;

    // Aborts running transfers and drops queued requests, without responses.
    void cancel_all();

    std::size_t queued() const;
    std::size_t queued(const std::string &account) const;
    std::size_t in_flight() const;
    std::size_t in_flight(const std::string &account) const;
    bool idle() const { return queued() == 0 && in_flight() == 0; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace igid
