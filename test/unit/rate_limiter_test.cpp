// rate_limiter_test.cpp — the token bucket against a fake clock.
#include "core/rate_limiter.h"

#include <gtest/gtest.h>

using namespace igid;
using namespace std::chrono;

namespace {
struct FakeClock {
    TimePoint now{};
    Clock clock() {
        return [this]() { return now; };
    }
};
} // namespace

TEST(RateLimiter, UnlimitedAlwaysStarts) {
    FakeClock fc;
    RateLimiter rl(0, 1, fc.clock());
    for (int i = 0; i < 1000; ++i)
        EXPECT_TRUE(rl.try_start());
    EXPECT_EQ(rl.next_start(), fc.now);
}

TEST(RateLimiter, EvenlySpaced) {
    FakeClock fc;
    RateLimiter rl(2, 1, fc.clock());
    EXPECT_TRUE(rl.try_start());
    EXPECT_FALSE(rl.try_start());
    EXPECT_EQ(rl.next_start(), fc.now + milliseconds(500));
    fc.now += milliseconds(499);
    EXPECT_FALSE(rl.try_start());
    fc.now += milliseconds(1);
    EXPECT_TRUE(rl.try_start());
    EXPECT_FALSE(rl.try_start());
}

TEST(RateLimiter, NoMoreThanRateInAnyWindow) {
    FakeClock fc;
    RateLimiter rl(5, 1, fc.clock());
    std::vector<TimePoint> starts;
    for (int ms = 0; ms < 10000; ++ms) {
        fc.now = TimePoint{} + milliseconds(ms);
        while (rl.try_start())
            starts.push_back(fc.now);
    }
    EXPECT_GE(starts.size(), 49u);
    EXPECT_LE(starts.size(), 51u);
    for (std::size_t i = 0; i < starts.size(); ++i) {
        std::size_t n = 0;
        for (std::size_t j = i; j < starts.size() && starts[j] < starts[i] + seconds(1); ++j)
            ++n;
        EXPECT_LE(n, 5u);
    }
}

TEST(RateLimiter, IdleTimeDoesNotBankBeyondBurst) {
    FakeClock fc;
    RateLimiter rl(1, 1, fc.clock());
    fc.now += hours(1);
    EXPECT_TRUE(rl.try_start());
    EXPECT_FALSE(rl.try_start());
}

TEST(RateLimiter, BurstAllowsThatMany) {
    FakeClock fc;
    RateLimiter rl(1, 3, fc.clock());
    EXPECT_TRUE(rl.try_start());
    EXPECT_TRUE(rl.try_start());
    EXPECT_TRUE(rl.try_start());
    EXPECT_FALSE(rl.try_start());
}

TEST(RateLimiter, FractionalRate) {
    FakeClock fc;
    RateLimiter rl(0.5, 1, fc.clock());
    EXPECT_TRUE(rl.try_start());
    EXPECT_EQ(rl.next_start(), fc.now + seconds(2));
}

TEST(RateLimiter, SetRateSlowsDown) {
    FakeClock fc;
    RateLimiter rl(10, 1, fc.clock());
    EXPECT_TRUE(rl.try_start());
    rl.set_rate(1);
    EXPECT_EQ(rl.next_start(), fc.now + seconds(1));
    rl.set_rate(0);
    EXPECT_TRUE(rl.try_start());
}

// A pace carried over from an earlier limiter: nothing starts before the
// earliest time, then the rate holds as usual.
TEST(RateLimiter, HoldUntilCarriesThePaceOver) {
    FakeClock fc;
    RateLimiter rl(2, 1, fc.clock());
    rl.hold_until(fc.now + milliseconds(500));
    EXPECT_FALSE(rl.try_start());
    EXPECT_EQ(rl.next_start(), fc.now + milliseconds(500));
    fc.now += milliseconds(500);
    EXPECT_TRUE(rl.try_start());
    EXPECT_FALSE(rl.try_start());
    EXPECT_EQ(rl.next_start(), fc.now + milliseconds(500));
    // a time already past changes nothing; no rate, no hold
    fc.now += seconds(1);
    rl.hold_until(fc.now - seconds(1));
    EXPECT_TRUE(rl.try_start());
    RateLimiter unlimited(0, 1, fc.clock());
    unlimited.hold_until(fc.now + seconds(5));
    EXPECT_TRUE(unlimited.try_start());
}
