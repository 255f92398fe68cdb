// curl_features_test.cpp — the load-time check of the libcurl build.
#include "core/curl_handles.h"

#include <gtest/gtest.h>

#include <string>

namespace igid {
namespace {

TEST(CurlFeatures, RefusesABuildWithoutAsynchronousDns) {
    const char *why = curl_unusable_reason(CURL_VERSION_SSL | CURL_VERSION_HTTP2);
    ASSERT_NE(why, nullptr);
    EXPECT_NE(std::string(why).find("asynchronous DNS"), std::string::npos);
}

TEST(CurlFeatures, AcceptsABuildWithAsynchronousDns) {
    EXPECT_EQ(curl_unusable_reason(CURL_VERSION_ASYNCHDNS | CURL_VERSION_SSL), nullptr);
}

TEST(CurlFeatures, TheLibcurlOfThisMachineIsUsable) {
    EXPECT_EQ(curl_unusable_reason(curl_runtime_features()), nullptr);
}

} // namespace
} // namespace igid
