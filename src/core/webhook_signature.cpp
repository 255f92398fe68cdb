/*
 * webhook_signature.cpp — X-Hub-Signature-256 check with OpenSSL's HMAC and
 * CRYPTO_memcmp, so the time taken never tells how many bytes matched.
 */
#include "core/webhook_signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace igid {

namespace {

/* Value of one hex digit, or -1; accepts both cases (Meta sends lower case). */
int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

} // namespace

/* The header is "sha256=" + hex of HMAC-SHA256(app secret, raw body). */
SignatureCheck check_webhook_signature(const std::string &body, const std::string &header,
                                       const std::string &app_secret)
{
    static const std::string prefix = "sha256=";
    if (header.size() != prefix.size() + 64 || header.compare(0, prefix.size(), prefix) != 0)
        return SignatureCheck::MalformedHeader;
    unsigned char expected[32];
    for (size_t i = 0; i < 32; i++) {
        int hi = hex_value(header[prefix.size() + 2 * i]);
        int lo = hex_value(header[prefix.size() + 2 * i + 1]);
        if (hi < 0 || lo < 0) return SignatureCheck::MalformedHeader;
        expected[i] = (unsigned char) (hi * 16 + lo);
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), app_secret.data(), (int) app_secret.size(),
              reinterpret_cast<const unsigned char *>(body.data()), body.size(), mac, &mac_len) ||
        mac_len != 32)
        return SignatureCheck::Mismatch;
    bool same = CRYPTO_memcmp(mac, expected, 32) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
    return same ? SignatureCheck::Valid : SignatureCheck::Mismatch;
}

} // namespace igid
