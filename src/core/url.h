// url.h — the few URL operations core needs: percent-encoding values, and
// deciding which protocol a request URL may use.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace igid {

// Percent-encodes everything except RFC 3986 unreserved characters.
std::string url_encode(std::string_view value);

// True for localhost, 127.0.0.0/8 and ::1 (with or without brackets).
bool is_loopback_host(std::string_view host);

struct UrlTarget {
    std::string scheme; // lower case
    std::string host;   // as curl will use it ("[::1]" for IPv6)
};

// Splits a URL with curl's own parser, so the check sees what curl will use.
std::optional<UrlTarget> url_target(std::string_view url);

// The protocol a request URL may use: "https" always; "http" only to a
// loopback host. nullopt when the URL must be refused (other schemes, plain
// http elsewhere, credentials in the URL, an access_token in the query).
std::optional<std::string> allowed_protocol(std::string_view url);

} // namespace igid
