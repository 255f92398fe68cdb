// profile_fetcher.h — fetches many profiles for many accounts at once and
// applies the policy itself: retries with backoff, the basic-fields retry,
// pauses and stops per account, and the usage-based slow-down.
//
// It holds only pending ids, never responses: each step() hands out the
// outcomes finished since the last step. When an account is throttled,
// policy-blocked or stopped, every id of it not yet sent is returned as "not
// attempted" (attempted == false, with the reason and the pause end) and no
// further call is made for it — ids added later included, until the pause ends.
#pragma once

#include "graph_client.h"
#include "graph_error.h"
#include "policy.h"
#include "profile.h"
#include "random.h"
#include "usage.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace igid {

struct ProfileFetcherOptions {
    HttpOptions http;                          // caps, timeouts, size cap, default rate, clock
    int max_attempts = 3;                      // transient failures before a final `retry` outcome
    std::chrono::milliseconds backoff_base{500};
    std::chrono::milliseconds backoff_cap{30000};
    Rng rng;                                   // default_rng() when empty
};

struct ProfileOutcome {
    std::string account_id;
    std::string igsid;
    Action action;                          // ok, or what to do about this id/account
    bool attempted = true;                  // false: never sent (account paused/stopped)
    std::optional<Profile> profile;         // only with action ok
    std::optional<GraphError> error;        // the last error envelope, if any
    long http_status = 0;                   // of the last attempt
    TransportError transport = TransportError::none;
    std::string detail;                     // short, redacted: what happened
    Usage usage;                            // from the last answer
    int attempts = 0;                       // HTTP requests made for this id
    std::optional<TimePoint> paused_until;  // the account's pause end, when paused
};

class ProfileFetcher {
public:
    explicit ProfileFetcher(ProfileFetcherOptions options = {});
    ~ProfileFetcher();
    ProfileFetcher(const ProfileFetcher &) = delete;
    ProfileFetcher &operator=(const ProfileFetcher &) = delete;

    // Registers (or updates) an account. requests_per_second < 0 keeps the
    // HttpOptions default; consecutive_throttles carries the ladder position
    // over from earlier runs.
    void add_account(GraphAccount account, double requests_per_second = -1, int consecutive_throttles = 0);

    // No call for the account starts before `earliest`: the pace of calls
    // made by an earlier fetcher carries over (the rate set still applies).
    void hold_account(std::string_view account_id, TimePoint earliest);

    // Whether the account was added.
    bool has_account(std::string_view account_id) const;

    // Queues one id. An unknown account or an invalid IGSID gives an
    // immediate `permanent` outcome; a paused/stopped account a not-attempted one.
    void add(std::string_view account_id, std::string_view igsid);

    // Runs the transfers for at most max_wait_ms and returns finished outcomes.
    std::vector<ProfileOutcome> step(int max_wait_ms);

    // True when nothing is pending, running or waiting to be handed out.
    bool done() const;

    // Drops everything pending and aborts running transfers.
    void cancel();

    std::size_t pending() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace igid
