// webhook_signature_test.cpp — X-Hub-Signature-256 checks on raw bodies.
#include "core/webhook_signature.h"

#include <gtest/gtest.h>

using namespace igid;

namespace {
const std::string kBody = R"({"object":"instagram","entry":[]})";
// HMAC-SHA256("app-secret-1", kBody), computed independently with Python's hmac.
const std::string kSig = "sha256=6a154a46b4d1798bdc4f054e72c7f06fe41769605d46ec4e0de45cff36e29ee2";
} // namespace

TEST(WebhookSignature, ValidLowerAndUpperHex) {
    EXPECT_EQ(check_webhook_signature(kBody, kSig, "app-secret-1"), SignatureCheck::Valid);
    std::string upper = "sha256=" + std::string("6A154A46B4D1798BDC4F054E72C7F06FE41769605D46EC4E0DE45CFF36E29EE2");
    EXPECT_EQ(check_webhook_signature(kBody, upper, "app-secret-1"), SignatureCheck::Valid);
}

TEST(WebhookSignature, WrongSecretOrChangedBodyMismatch) {
    EXPECT_EQ(check_webhook_signature(kBody, kSig, "app-secret-2"), SignatureCheck::Mismatch);
    // A re-serialised body (what a jsonb gives back) no longer matches.
    EXPECT_EQ(check_webhook_signature(R"({"entry": [], "object": "instagram"})", kSig, "app-secret-1"),
              SignatureCheck::Mismatch);
}

TEST(WebhookSignature, MalformedHeaders) {
    for (const std::string h : {"", "sha256=", "sha1=6a154a46b4d1798bdc4f054e72c7f06fe41769605d46ec4e0de45cff36e29ee2",
                                "sha256=6a154a46b4d1798bdc4f054e72c7f06fe41769605d46ec4e0de45cff36e29ee",
                                "sha256=6a154a46b4d1798bdc4f054e72c7f06fe41769605d46ec4e0de45cff36e29eezz",
                                "sha256=6a154a46b4d1798bdc4f054e72c7f06fe41769605d46ec4e0de45cff36e29ee2 "})
        EXPECT_EQ(check_webhook_signature(kBody, h, "app-secret-1"), SignatureCheck::MalformedHeader) << h;
}
