/*
 * secret_box.h — sealing secrets (access tokens, app secrets) for storage:
 * AES-256-GCM through OpenSSL's libcrypto.
 *
 * A sealed value (an "envelope") is
 *
 *   0x01 | key id (8 bytes) | nonce (12 random bytes) | ciphertext | tag (16 bytes)
 *
 * The key id is the first 8 bytes of SHA-256(key): it names the key a value
 * needs without revealing it.  The associated data (the "context", e.g.
 * "access_token:17841400000000001") is authenticated but not stored, so a
 * value copied to another row, or another column, does not open there.
 *
 * A value stored before a key existed is a plain envelope, 0x00 | the
 * secret's bytes; it opens only where the caller allows unsealed values.
 */
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace igid {

constexpr std::uint8_t kSealedVersion = 0x01;
constexpr std::uint8_t kPlainVersion = 0x00;
constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kKeyIdBytes = 8;
constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kTagBytes = 16;
constexpr std::size_t kSealedOverhead = 1 + kKeyIdBytes + kNonceBytes + kTagBytes;

/* A 256-bit key and its id. */
struct SecretKey {
    std::array<std::uint8_t, kKeyBytes> bytes{};
    std::array<std::uint8_t, kKeyIdBytes> id{};
    std::string id_hex() const;
};

/* Builds a key from a key file's contents: 32 raw bytes, or 64 hex digits
 * (a trailing newline allowed).  Returns nullopt for anything else. */
std::optional<SecretKey> key_from_file_contents(const std::string &contents);

/* Seals plain under key, bound to context.  Throws std::runtime_error only
 * if libcrypto fails (no randomness). */
std::vector<std::uint8_t> seal(const SecretKey &key, const std::string &plain, const std::string &context);

/* The plain envelope (no key configured, unsealed values allowed). */
std::vector<std::uint8_t> plain_envelope(const std::string &plain);

enum class OpenStatus {
    Ok,
    Plain,        /* a plain envelope; secret holds it (caller decides) */
    UnknownKey,   /* sealed with a key not among those given; key_id_hex says which */
    Corrupt,      /* wrong context, tampered or truncated */
    BadFormat     /* not an envelope at all (unknown version, too short) */
};

struct OpenResult {
    OpenStatus status = OpenStatus::BadFormat;
    std::string secret;     /* for Ok and Plain */
    std::string key_id_hex; /* the envelope's key id, when it has one */
};

/* Opens an envelope with whichever of keys has its id (null entries are
 * skipped). */
OpenResult open(const std::vector<const SecretKey *> &keys, const std::vector<std::uint8_t> &envelope,
                const std::string &context);

/* The key id an envelope names (hex), or "" for plain / malformed ones. */
std::string envelope_key_id(const std::vector<std::uint8_t> &envelope);

/* Lower-case hex and back (decode returns nullopt on odd length or a
 * non-hex digit). */
std::string to_hex(const std::uint8_t *data, std::size_t n);
std::optional<std::vector<std::uint8_t>> from_hex(const std::string &hex);

} // namespace igid
