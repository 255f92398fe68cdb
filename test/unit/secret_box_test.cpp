// secret_box_test.cpp — AES-256-GCM envelopes: round trip, wrong key,
// tampering, wrong context, truncation, key files.
#include "core/secret_box.h"

#include <gtest/gtest.h>

using namespace igid;

namespace {
// Test keys only: 64 hex digits made of a visible pattern, not random.
const std::string kHexA = std::string(32, 'a') + std::string(32, '1');
const std::string kHexB = std::string(32, 'b') + std::string(32, '2');
const std::string kCtx = "access_token:17841400000000001";
const std::string kSecret = "unit-secret-box-plaintext-0123456789";

SecretKey key(const std::string &hex)
{
    auto k = key_from_file_contents(hex);
    EXPECT_TRUE(k.has_value());
    return *k;
}
} // namespace

TEST(SecretBox, RoundTripAndLayout) {
    SecretKey a = key(kHexA);
    auto env = seal(a, kSecret, kCtx);
    ASSERT_EQ(env.size(), kSealedOverhead + kSecret.size());
    EXPECT_EQ(env[0], kSealedVersion);
    EXPECT_EQ(envelope_key_id(env), a.id_hex());
    EXPECT_EQ(a.id_hex().size(), 16u);
    // the secret does not appear in the envelope
    std::string raw(env.begin(), env.end());
    EXPECT_EQ(raw.find(kSecret), std::string::npos);
    auto r = open({&a}, env, kCtx);
    EXPECT_EQ(r.status, OpenStatus::Ok);
    EXPECT_EQ(r.secret, kSecret);
    // two seals of one secret differ (random nonce)
    EXPECT_NE(seal(a, kSecret, kCtx), env);
}

TEST(SecretBox, EmptySecretRoundTrips) {
    SecretKey a = key(kHexA);
    auto r = open({&a}, seal(a, "", kCtx), kCtx);
    EXPECT_EQ(r.status, OpenStatus::Ok);
    EXPECT_EQ(r.secret, "");
}

TEST(SecretBox, WrongKeyIsUnknownAndNamed) {
    SecretKey a = key(kHexA), b = key(kHexB);
    auto env = seal(a, kSecret, kCtx);
    auto r = open({&b}, env, kCtx);
    EXPECT_EQ(r.status, OpenStatus::UnknownKey);
    EXPECT_EQ(r.key_id_hex, a.id_hex());
    EXPECT_TRUE(r.secret.empty());
    // either of two keys (rotation): the one whose id matches opens it
    auto r2 = open({&b, nullptr, &a}, env, kCtx);
    EXPECT_EQ(r2.status, OpenStatus::Ok);
    EXPECT_EQ(r2.secret, kSecret);
}

TEST(SecretBox, EveryTamperedByteFails) {
    SecretKey a = key(kHexA);
    auto env = seal(a, kSecret, kCtx);
    for (std::size_t i = 1 + kKeyIdBytes; i < env.size(); i++) {
        auto t = env;
        t[i] ^= 0x01;
        auto r = open({&a}, t, kCtx);
        EXPECT_EQ(r.status, OpenStatus::Corrupt) << "byte " << i;
        EXPECT_TRUE(r.secret.empty());
    }
}

TEST(SecretBox, WrongContextFails) {
    SecretKey a = key(kHexA);
    auto env = seal(a, kSecret, kCtx);
    EXPECT_EQ(open({&a}, env, "access_token:17841400000000002").status, OpenStatus::Corrupt);
    EXPECT_EQ(open({&a}, env, "app_secret:17841400000000001").status, OpenStatus::Corrupt);
    EXPECT_EQ(open({&a}, env, "").status, OpenStatus::Corrupt);
}

TEST(SecretBox, TruncatedFails) {
    SecretKey a = key(kHexA);
    auto env = seal(a, kSecret, kCtx);
    for (std::size_t n = 0; n < env.size(); n++) {
        std::vector<std::uint8_t> t(env.begin(), env.begin() + (long) n);
        auto r = open({&a}, t, kCtx);
        EXPECT_NE(r.status, OpenStatus::Ok) << "length " << n;
        EXPECT_NE(r.status, OpenStatus::Plain) << "length " << n;
    }
    EXPECT_EQ(open({&a}, {}, kCtx).status, OpenStatus::BadFormat);
    EXPECT_EQ(open({&a}, {0x07, 1, 2}, kCtx).status, OpenStatus::BadFormat);
}

TEST(SecretBox, PlainEnvelopeIsReportedAsPlain) {
    SecretKey a = key(kHexA);
    auto r = open({&a}, plain_envelope(kSecret), kCtx);
    EXPECT_EQ(r.status, OpenStatus::Plain);
    EXPECT_EQ(r.secret, kSecret);
}

TEST(SecretBox, KeyFileContents) {
    EXPECT_TRUE(key_from_file_contents(kHexA).has_value());
    EXPECT_TRUE(key_from_file_contents(kHexA + "\n").has_value());
    EXPECT_TRUE(key_from_file_contents(std::string(32, '\x07')).has_value());
    EXPECT_FALSE(key_from_file_contents("").has_value());
    EXPECT_FALSE(key_from_file_contents(kHexA.substr(2)).has_value());
    EXPECT_FALSE(key_from_file_contents(std::string(63, 'a') + "g").has_value());
    EXPECT_FALSE(key_from_file_contents(std::string(31, 'x')).has_value());
    // hex and the raw bytes it spells are the same key
    auto raw = from_hex(kHexA);
    ASSERT_TRUE(raw.has_value());
    auto k1 = key_from_file_contents(kHexA);
    auto k2 = key_from_file_contents(std::string(raw->begin(), raw->end()));
    EXPECT_EQ(k1->id_hex(), k2->id_hex());
    EXPECT_NE(k1->id_hex(), key(kHexB).id_hex());
}

TEST(SecretBox, Hex) {
    const std::uint8_t b[] = {0x00, 0xab, 0xff};
    EXPECT_EQ(to_hex(b, 3), "00abff");
    EXPECT_EQ(*from_hex("00ABff"), std::vector<std::uint8_t>({0x00, 0xab, 0xff}));
    EXPECT_FALSE(from_hex("abc").has_value());
    EXPECT_FALSE(from_hex("zz").has_value());
}
