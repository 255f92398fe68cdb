// url_test.cpp — URL encoding and the https/loopback guard.
#include "core/url.h"

#include <gtest/gtest.h>

using namespace igid;

TEST(Url, Encode) {
    EXPECT_EQ(url_encode("QVFIUk9=="), "QVFIUk9%3D%3D");
    EXPECT_EQ(url_encode("a b&c/d+e"), "a%20b%26c%2Fd%2Be");
    EXPECT_EQ(url_encode("Az09-_.~"), "Az09-_.~");
}

TEST(Url, Loopback) {
    for (const char *h : {"localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "[::1]"})
        EXPECT_TRUE(is_loopback_host(h)) << h;
    for (const char *h : {"graph.facebook.com", "128.0.0.1", "127.0.0.1.evil.com", "localhost.evil.com", "10.0.0.1",
                          "::2", "", "0.0.0.0"})
        EXPECT_FALSE(is_loopback_host(h)) << h;
}

TEST(Url, AllowedProtocol) {
    EXPECT_EQ(allowed_protocol("https://graph.facebook.com/v21.0/me"), "https");
    EXPECT_EQ(allowed_protocol("http://127.0.0.1:8123/v21.0/me"), "http");
    EXPECT_EQ(allowed_protocol("http://localhost:8123/v21.0/me"), "http");
    EXPECT_EQ(allowed_protocol("http://[::1]:8123/v21.0/me"), "http");
    EXPECT_FALSE(allowed_protocol("http://graph.facebook.com/v21.0/me"));
    EXPECT_FALSE(allowed_protocol("http://127.0.0.1.nip.io/v21.0/me"));
    EXPECT_FALSE(allowed_protocol("ftp://127.0.0.1/x"));
    EXPECT_FALSE(allowed_protocol("file:///etc/passwd"));
    EXPECT_FALSE(allowed_protocol("https://graph.facebook.com/v21.0/me?access_token=abc"));
    EXPECT_FALSE(allowed_protocol("https://user:pw@graph.facebook.com/"));
    EXPECT_FALSE(allowed_protocol("not a url"));
}
