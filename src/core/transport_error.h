// transport_error.h — what went wrong below HTTP, in the few kinds the
// policy needs (curl's CURLcode is mapped onto these in http.cpp).
#pragma once

#include <string_view>

namespace igid {

enum class TransportError {
    none,
    timeout,        // connect or total timeout, including slow drips and hangs
    connect_failed, // could not resolve or connect
    reset,          // connection reset, nothing received, partial body
    too_large,      // the response exceeded the size cap and was cut off
    tls,            // TLS handshake or certificate failure
    refused_url,    // our own guard refused the URL (scheme, host, token in URL)
    other,
};

constexpr std::string_view transport_error_name(TransportError e) {
    switch (e) {
    case TransportError::none: return "none";
    case TransportError::timeout: return "timeout";
    case TransportError::connect_failed: return "connect_failed";
    case TransportError::reset: return "reset";
    case TransportError::too_large: return "too_large";
    case TransportError::tls: return "tls";
    case TransportError::refused_url: return "refused_url";
    case TransportError::other: return "other";
    }
    return "other";
}

} // namespace igid
