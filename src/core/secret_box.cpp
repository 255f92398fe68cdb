// secret_box.cpp — AES-256-GCM envelopes (see secret_box.h).
#include "secret_box.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace igid {

namespace {

struct CtxFree {
    void operator()(EVP_CIPHER_CTX *c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

} // namespace

std::string to_hex(const std::uint8_t *data, std::size_t n)
{
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; i++) {
        out.push_back(digits[data[i] >> 4]);
        out.push_back(digits[data[i] & 0xf]);
    }
    return out;
}

std::optional<std::vector<std::uint8_t>> from_hex(const std::string &hex)
{
    if (hex.size() % 2 != 0)
        return std::nullopt;
    std::vector<std::uint8_t> out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return std::nullopt;
        out[i] = (std::uint8_t) (hi * 16 + lo);
    }
    return out;
}

std::string SecretKey::id_hex() const
{
    return to_hex(id.data(), id.size());
}

std::optional<SecretKey> key_from_file_contents(const std::string &contents)
{
    SecretKey k;
    std::string s = contents;
    if (s.size() == kKeyBytes) {
        std::memcpy(k.bytes.data(), s.data(), kKeyBytes);
    } else {
        while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
            s.pop_back();
        if (s.size() != kKeyBytes * 2)
            return std::nullopt;
        auto raw = from_hex(s);
        if (!raw)
            return std::nullopt;
        std::memcpy(k.bytes.data(), raw->data(), kKeyBytes);
        OPENSSL_cleanse(raw->data(), raw->size());
    }
    OPENSSL_cleanse(&s[0], s.size());
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(k.bytes.data(), k.bytes.size(), digest);
    std::memcpy(k.id.data(), digest, kKeyIdBytes);
    return k;
}

std::vector<std::uint8_t> plain_envelope(const std::string &plain)
{
    std::vector<std::uint8_t> out;
    out.reserve(plain.size() + 1);
    out.push_back(kPlainVersion);
    out.insert(out.end(), plain.begin(), plain.end());
    return out;
}

std::vector<std::uint8_t> seal(const SecretKey &key, const std::string &plain, const std::string &context)
{
    std::vector<std::uint8_t> out(kSealedOverhead + plain.size());
    std::uint8_t *p = out.data();
    p[0] = kSealedVersion;
    std::memcpy(p + 1, key.id.data(), kKeyIdBytes);
    std::uint8_t *nonce = p + 1 + kKeyIdBytes;
    std::uint8_t *ct = nonce + kNonceBytes;
    std::uint8_t *tag = ct + plain.size();
    if (RAND_bytes(nonce, (int) kNonceBytes) != 1)
        throw std::runtime_error("no random bytes for a nonce");
    Ctx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, (int) kNonceBytes, nullptr) != 1 ||
        EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.bytes.data(), nonce) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len, (const unsigned char *) context.data(),
                          (int) context.size()) != 1 ||
        EVP_EncryptUpdate(ctx.get(), ct, &len, (const unsigned char *) plain.data(), (int) plain.size()) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), ct + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, (int) kTagBytes, tag) != 1)
        throw std::runtime_error("AES-256-GCM encryption failed");
    return out;
}

std::string envelope_key_id(const std::vector<std::uint8_t> &envelope)
{
    if (envelope.size() < 1 + kKeyIdBytes || envelope[0] != kSealedVersion)
        return "";
    return to_hex(envelope.data() + 1, kKeyIdBytes);
}

OpenResult open(const std::vector<const SecretKey *> &keys, const std::vector<std::uint8_t> &envelope,
                const std::string &context)
{
    OpenResult r;
    if (envelope.empty())
        return r;
    if (envelope[0] == kPlainVersion) {
        r.status = OpenStatus::Plain;
        r.secret.assign(envelope.begin() + 1, envelope.end());
        return r;
    }
    if (envelope[0] != kSealedVersion || envelope.size() < kSealedOverhead) {
        if (envelope[0] == kSealedVersion) {
            r.status = OpenStatus::Corrupt;
            if (envelope.size() >= 1 + kKeyIdBytes)
                r.key_id_hex = envelope_key_id(envelope);
        }
        return r;
    }
    r.key_id_hex = envelope_key_id(envelope);
    const SecretKey *key = nullptr;
    for (const SecretKey *k : keys)
        if (k && std::memcmp(k->id.data(), envelope.data() + 1, kKeyIdBytes) == 0)
            key = k;
    if (!key) {
        r.status = OpenStatus::UnknownKey;
        return r;
    }
    const std::uint8_t *nonce = envelope.data() + 1 + kKeyIdBytes;
    const std::uint8_t *ct = nonce + kNonceBytes;
    const std::size_t ct_len = envelope.size() - kSealedOverhead;
    std::uint8_t tag[kTagBytes];
    std::memcpy(tag, ct + ct_len, kTagBytes);
    std::string plain(ct_len, '\0');
    Ctx ctx(EVP_CIPHER_CTX_new());
    int len = 0;
    bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, (int) kNonceBytes, nullptr) == 1 &&
              EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key->bytes.data(), nonce) == 1 &&
              EVP_DecryptUpdate(ctx.get(), nullptr, &len, (const unsigned char *) context.data(),
                                (int) context.size()) == 1 &&
              EVP_DecryptUpdate(ctx.get(), (unsigned char *) &plain[0], &len, ct, (int) ct_len) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, (int) kTagBytes, tag) == 1 &&
              EVP_DecryptFinal_ex(ctx.get(), (unsigned char *) &plain[0] + len, &len) == 1;
    if (!ok) {
        OPENSSL_cleanse(&plain[0], plain.size());
        r.status = OpenStatus::Corrupt;
        return r;
    }
    r.status = OpenStatus::Ok;
    r.secret = std::move(plain);
    return r;
}

} // namespace igid
