// iso_time_test.cpp — Graph timestamps to epoch seconds.
#include "core/iso_time.h"

#include <gtest/gtest.h>

using namespace igid;

TEST(IsoTime, GraphFormat) {
    EXPECT_EQ(parse_iso8601("2025-07-28T22:44:49+0000"), 1753742689);
    EXPECT_EQ(parse_iso8601("1970-01-01T00:00:00+0000"), 0);
}

TEST(IsoTime, OtherZones) {
    EXPECT_EQ(parse_iso8601("2025-07-28T22:44:49Z"), 1753742689);
    EXPECT_EQ(parse_iso8601("2025-07-29T00:44:49+02:00"), 1753742689);
    EXPECT_EQ(parse_iso8601("2025-07-28T21:44:49-0100"), 1753742689);
    EXPECT_EQ(parse_iso8601("2025-07-28T22:44:49.123+0000"), 1753742689);
}

TEST(IsoTime, LeapDay) {
    EXPECT_EQ(parse_iso8601("2024-02-29T00:00:00+0000"), 1709164800);
    EXPECT_FALSE(parse_iso8601("2025-02-29T00:00:00+0000"));
}

TEST(IsoTime, Rejects) {
    for (const char *bad : {"", "2025-07-28", "2025-07-28T22:44:49", "2025-13-01T00:00:00+0000",
                            "2025-07-28T24:00:00+0000", "2025-07-28T22:44:49+0000x", "yesterday",
                            "2025-07-28T22:44:49+00"})
        EXPECT_FALSE(parse_iso8601(bad)) << bad;
}
