// batch_test.cpp — batch answers: second parse of each body, null items.
#include "core/batch.h"

#include <gtest/gtest.h>

using namespace igid;

TEST(Batch, ItemsParsedTwice) {
    BatchResult b = parse_batch(R"([
      {"code":200,"headers":[{"name":"Content-Type","value":"application/json"},
                             {"name":"x-app-usage","value":"{\"call_count\":12,\"total_cputime\":1,\"total_time\":1}"}],
       "body":"{\"username\":\"jane.doe\",\"name\":null,\"id\":\"1000000000000101\"}"},
      {"code":400,"headers":[],"body":"{\"error\":{\"message\":\"(#230) x\",\"type\":\"OAuthException\",\"code\":230}}"},
      null
    ])");
    ASSERT_EQ(b.status, ParseStatus::ok);
    ASSERT_EQ(b.items.size(), 3u);
    EXPECT_EQ(b.items[0].usage.app_percent, 12.0);
    std::vector<std::string> ids = {"1000000000000101", "1000000000000104", "1000000000000105"};
    auto items = batch_profiles(b, ids);
    ASSERT_EQ(items.size(), 3u);
    ASSERT_TRUE(items[0].answered);
    EXPECT_EQ(items[0].code, 200);
    ASSERT_EQ(items[0].result.status, ProfileStatus::ok);
    EXPECT_EQ(items[0].result.profile->username, "jane.doe");
    ASSERT_TRUE(items[1].answered);
    EXPECT_EQ(items[1].result.status, ProfileStatus::graph_error);
    EXPECT_EQ(items[1].result.error->code, 230);
    EXPECT_FALSE(items[2].answered);
    EXPECT_EQ(items[2].igsid, "1000000000000105");
}

TEST(Batch, EachBodyCheckedAgainstItsOwnId) {
    BatchResult b = parse_batch(R"([{"code":200,"body":"{\"username\":\"x\",\"id\":\"2\"}"}])");
    auto items = batch_profiles(b, {"1"});
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].result.status, ProfileStatus::id_mismatch);
}

TEST(Batch, MissingTrailingItemsAreUnanswered) {
    BatchResult b = parse_batch(R"([{"code":200,"body":"{\"username\":\"x\",\"id\":\"1\"}"}])");
    auto items = batch_profiles(b, {"1", "2"});
    ASSERT_EQ(items.size(), 2u);
    EXPECT_TRUE(items[0].answered);
    EXPECT_FALSE(items[1].answered);
}

TEST(Batch, MoreItemsThanAskedIsMalformed) {
    BatchResult b = parse_batch(R"([null,null])");
    EXPECT_TRUE(batch_profiles(b, {"1"}).empty());
}

TEST(Batch, MalformedItemBody) {
    BatchResult b = parse_batch(R"([{"code":200,"body":"{\"username\":"}])");
    auto items = batch_profiles(b, {"1"});
    EXPECT_EQ(items[0].result.status, ProfileStatus::malformed);
}

TEST(Batch, WholeBatchRefused) {
    BatchResult b = parse_batch(R"({"error":{"message":"(#100) batch","type":"IGApiException","code":100}})");
    ASSERT_EQ(b.status, ParseStatus::graph_error);
    EXPECT_EQ(b.error->code, 100);
}

TEST(Batch, Malformed) {
    for (const char *bad : {"", "[", "{}", "[1]", R"([{"body":"{}"}])", R"([{"code":200,"body":5}])"})
        EXPECT_EQ(parse_batch(bad).status, ParseStatus::malformed) << bad;
}

TEST(Batch, CodeAsString) {
    BatchResult b = parse_batch(R"([{"code":"200","body":"{}"}])");
    ASSERT_EQ(b.status, ParseStatus::ok);
    EXPECT_EQ(b.items[0].code, 200);
}
