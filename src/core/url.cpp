// url.cpp — URL encoding and the scheme/host guard (see url.h).
#include "url.h"

#include <curl/curl.h>

#include <arpa/inet.h>
#include <cctype>
#include <memory>
#include <strings.h>

namespace igid {

namespace {

struct UrlFree {
    void operator()(CURLU *u) const noexcept { curl_url_cleanup(u); }
};
struct CurlFree {
    void operator()(char *p) const noexcept { curl_free(p); }
};
using CurlUrlPtr = std::unique_ptr<CURLU, UrlFree>;
using CurlStr = std::unique_ptr<char, CurlFree>;

std::optional<std::string> url_part(CURLU *u, CURLUPart part) {
    char *raw = nullptr;
    if (curl_url_get(u, part, &raw, 0) != CURLUE_OK)
        return std::nullopt;
    CurlStr owned(raw);
    return std::string(owned.get());
}

} // namespace

std::string url_encode(std::string_view value) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(value.size() * 3);
    for (char ch : value) {
        unsigned char c = static_cast<unsigned char>(ch);
        bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                          c == '_' || c == '.' || c == '~';
        if (unreserved) {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xF]);
        }
    }
    return out;
}

bool is_loopback_host(std::string_view host) {
    if (host.size() == 9 && strncasecmp(host.data(), "localhost", 9) == 0)
        return true;
    std::string h(host);
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']')
        h = h.substr(1, h.size() - 2);
    unsigned char buf[16];
    if (inet_pton(AF_INET, h.c_str(), buf) == 1)
        return buf[0] == 127;
    if (inet_pton(AF_INET6, h.c_str(), buf) == 1) {
        static constexpr unsigned char kLoop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        for (int i = 0; i < 16; ++i)
            if (buf[i] != kLoop[i])
                return false;
        return true;
    }
    return false;
}

std::optional<UrlTarget> url_target(std::string_view url) {
    CurlUrlPtr u(curl_url());
    if (!u)
        return std::nullopt;
    std::string text(url);
    if (text.find('\0') != std::string::npos)
        return std::nullopt;
    if (curl_url_set(u.get(), CURLUPART_URL, text.c_str(), 0) != CURLUE_OK)
        return std::nullopt;
    auto scheme = url_part(u.get(), CURLUPART_SCHEME);
    auto host = url_part(u.get(), CURLUPART_HOST);
    if (!scheme || !host)
        return std::nullopt;
    if (url_part(u.get(), CURLUPART_USER) || url_part(u.get(), CURLUPART_PASSWORD))
        return std::nullopt;
    for (char &c : *scheme)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return UrlTarget{std::move(*scheme), std::move(*host)};
}

std::optional<std::string> allowed_protocol(std::string_view url) {
    std::string lower(url);
    for (char &c : lower)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.find("access_token=") != std::string::npos)
        return std::nullopt;
    auto target = url_target(url);
    if (!target)
        return std::nullopt;
    if (target->scheme == "https")
        return std::string("https");
    if (target->scheme == "http" && is_loopback_host(target->host))
        return std::string("http");
    return std::nullopt;
}

} // namespace igid
