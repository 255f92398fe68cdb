// rate_limiter.cpp — the token bucket (see rate_limiter.h).
#include "rate_limiter.h"

#include <algorithm>
#include <utility>

namespace igid {

RateLimiter::RateLimiter(double per_second, double burst, Clock clock)
    : rate_(std::max(0.0, per_second)), burst_(std::max(1.0, burst)), clock_(std::move(clock)), tokens_(burst_),
      last_(clock_()) {}

// Tokens accrue continuously from the last refill, up to the burst.
void RateLimiter::refill(TimePoint now) const {
    if (now <= last_)
        return;
    if (rate_ > 0) {
        double elapsed = std::chrono::duration<double>(now - last_).count();
        tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
    }
    last_ = now;
}

void RateLimiter::set_rate(double per_second) {
    refill(clock_());
    rate_ = std::max(0.0, per_second);
    if (rate_ == 0)
        tokens_ = burst_;
}

TimePoint RateLimiter::next_start() const {
    TimePoint now = clock_();
    if (rate_ == 0)
        return now;
    refill(now);
    if (tokens_ >= 1.0)
        return now;
    double wait_s = (1.0 - tokens_) / rate_;
    return now + std::chrono::duration_cast<TimePoint::duration>(std::chrono::duration<double>(wait_s));
}

bool RateLimiter::try_start() {
    if (rate_ == 0)
        return true;
    refill(clock_());
    // A hair of tolerance so floating-point dust never delays a due start.
    if (tokens_ < 1.0 - 1e-9)
        return false;
    tokens_ = std::max(0.0, tokens_ - 1.0);
    return true;
}

void RateLimiter::hold_until(TimePoint earliest) {
    if (rate_ == 0)
        return;
    TimePoint now = clock_();
    refill(now);
    if (earliest <= now)
        return;
    // tokens that reach 1.0 exactly at `earliest`
    double wait_s = std::chrono::duration<double>(earliest - now).count();
    tokens_ = std::min(tokens_, 1.0 - wait_s * rate_);
}

} // namespace igid
