/*
 * webhook_signature.h — checks Meta's X-Hub-Signature-256 header against the
 * raw bytes of a webhook delivery (HMAC-SHA256 with the app secret).
 */
#pragma once

#include <string>

namespace igid {

/* Outcome of a signature check; only Valid means the body came from Meta. */
enum class SignatureCheck {
    Valid,
    Mismatch,       /* well-formed header, wrong HMAC */
    MalformedHeader /* not "sha256=" followed by 64 hex digits */
};

/* Checks header ("sha256=<64 hex>") against HMAC-SHA256(secret, body),
 * comparing in constant time. */
SignatureCheck check_webhook_signature(const std::string &body, const std::string &header,
                                       const std::string &app_secret);

} // namespace igid
