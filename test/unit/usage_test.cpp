// usage_test.cpp — usage headers: percentages, regain minutes, unknown ≠ 0.
#include "core/usage.h"

#include <gtest/gtest.h>

using namespace igid;

TEST(Usage, AppUsageIsMaxOfThree) {
    EXPECT_EQ(parse_app_usage(R"({"call_count":28,"total_cputime":25,"total_time":25})"), 28.0);
    EXPECT_EQ(parse_app_usage(R"({"call_count":2,"total_cputime":95,"total_time":25})"), 95.0);
    EXPECT_EQ(parse_app_usage(R"({"call_count":0,"total_cputime":0,"total_time":0})"), 0.0);
}

TEST(Usage, AppUsageMalformedIsUnknown) {
    EXPECT_FALSE(parse_app_usage(""));
    EXPECT_FALSE(parse_app_usage("{"));
    EXPECT_FALSE(parse_app_usage("{}"));
    EXPECT_FALSE(parse_app_usage(R"({"call_count":"lots"})"));
    EXPECT_FALSE(parse_app_usage("[1,2]"));
}

TEST(Usage, BusinessUsageDocumentedShape) {
    auto b = parse_business_usage(
        R"({"17841400000000001":[{"type":"instagram","call_count":12,"total_cputime":3,"total_time":4,"estimated_time_to_regain_access":0}]})");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->percent, 12.0);
    EXPECT_EQ(b->regain_minutes, 0.0);
}

TEST(Usage, BusinessUsageMaxOverEntries) {
    auto b = parse_business_usage(
        R"({"1":[{"type":"instagram","call_count":12,"total_cputime":3,"total_time":4,"estimated_time_to_regain_access":0},
                 {"type":"messenger","call_count":40,"total_cputime":101,"total_time":4,"estimated_time_to_regain_access":7}],
            "2":[{"type":"instagram","call_count":50,"estimated_time_to_regain_access":3}]})");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->percent, 101.0);
    EXPECT_EQ(b->regain_minutes, 7.0);
}

TEST(Usage, BusinessUsageMalformedIsUnknown) {
    EXPECT_FALSE(parse_business_usage(""));
    EXPECT_FALSE(parse_business_usage("{}"));
    EXPECT_FALSE(parse_business_usage(R"({"1":"x"})"));
    EXPECT_FALSE(parse_business_usage(R"({"1":[{"type":"instagram"}]})"));
}

TEST(Usage, MissingHeadersAreUnknownNotZero) {
    Usage u = parse_usage_headers(std::nullopt, std::nullopt);
    EXPECT_FALSE(u.known());
    EXPECT_FALSE(u.max_percent());
    EXPECT_FALSE(u.app_percent);
    EXPECT_FALSE(u.business_percent);
}

TEST(Usage, Combined) {
    Usage u = parse_usage_headers(std::string_view(R"({"call_count":85,"total_cputime":1,"total_time":1})"),
                                  std::string_view(R"({"9":[{"call_count":90,"estimated_time_to_regain_access":3}]})"));
    EXPECT_EQ(u.app_percent, 85.0);
    EXPECT_EQ(u.business_percent, 90.0);
    EXPECT_EQ(u.regain_minutes, 3.0);
    EXPECT_EQ(u.max_percent(), 90.0);
}

TEST(Usage, OneMalformedOneGood) {
    Usage u = parse_usage_headers(std::string_view("garbage"), std::string_view(R"({"9":[{"call_count":10}]})"));
    EXPECT_FALSE(u.app_percent);
    EXPECT_EQ(u.max_percent(), 10.0);
}
