// rate_limiter.h — a per-account token bucket: how many requests may start
// per second, and when the next one may.
#pragma once

#include "clock.h"

namespace igid {

// Capacity defaults to one token, so starts are at least 1/rate apart and no
// half-open one-second window sees more than `rate` starts. A rate of 0 means
// unlimited.
class RateLimiter {
public:
    explicit RateLimiter(double per_second = 0, double burst = 1, Clock clock = steady_now);

    // Changes the rate, keeping the tokens already earned (capped at burst).
    void set_rate(double per_second);
    double rate() const { return rate_; }

    // The earliest time a request may start (now or earlier when ready).
    TimePoint next_start() const;

    // Takes a token and returns true when a request may start now.
    bool try_start();

    // No start before `earliest` (a pace kept over from an earlier limiter:
    // the worker's next fetch of an account it called a moment ago).
    void hold_until(TimePoint earliest);

private:
    void refill(TimePoint now) const;

    double rate_;
    double burst_;
    Clock clock_;
    mutable double tokens_;
    mutable TimePoint last_;
};

} // namespace igid
