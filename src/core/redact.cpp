// redact.cpp — the single scrubber for error texts (see redact.h).
#include "redact.h"

#include <cctype>

namespace igid {

namespace {

constexpr std::size_t kMaxOutput = 512;
constexpr std::size_t kTokenRun = 40;
constexpr std::string_view kMask = "[redacted]";

bool is_control(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }
bool is_token_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}
// Characters that end a token value: separators that are not part of it.
bool ends_value(char c) {
    return is_space(c) || c == '&' || c == '"' || c == '\'' || c == ',' || c == ';' || c == '<' ||
           c == '>' || c == ')' || c == ']' || c == '}';
}

bool starts_with_ci(std::string_view s, std::size_t at, std::string_view prefix) {
    if (s.size() - at < prefix.size())
        return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(s[at + i])) !=
            std::tolower(static_cast<unsigned char>(prefix[i])))
            return false;
    return true;
}

// Replaces every occurrence of each secret before any other rule runs, so a
// token is caught even where no pattern would see it.
std::string strip_secrets(std::string_view text, const std::vector<std::string_view> &secrets) {
    std::string out(text);
    for (std::string_view secret : secrets) {
        if (secret.size() < 4)
            continue;
        std::size_t pos = 0;
        while ((pos = out.find(secret, pos)) != std::string::npos) {
            out.replace(pos, secret.size(), kMask);
            pos += kMask.size();
        }
    }
    return out;
}

} // namespace

std::string redact(std::string_view input, const std::vector<std::string_view> &secrets) {
    const std::string text = strip_secrets(input, secrets);
    const std::string_view s = text;
    std::string out;
    out.reserve(std::min(s.size(), kMaxOutput) + 16);

    std::size_t i = 0;
    while (i < s.size() && out.size() < kMaxOutput) {
        if (starts_with_ci(s, i, "access_token=")) {
            out.append("access_token=").append(kMask);
            i += 13;
            while (i < s.size() && !ends_value(s[i]))
                ++i;
            continue;
        }
        if (starts_with_ci(s, i, "bearer") && (i == 0 || !is_token_char(s[i - 1])) && i + 6 < s.size() &&
            is_space(s[i + 6])) {
            out.append(s.substr(i, 6)).append(" ").append(kMask);
            i += 6;
            while (i < s.size() && is_space(s[i]))
                ++i;
            while (i < s.size() && !ends_value(s[i]))
                ++i;
            continue;
        }
        if (s.compare(i, 3, "://") == 0) {
            // Keep scheme://host[:port]; drop userinfo, path, query, fragment.
            std::size_t j = i + 3;
            std::size_t host_start = j;
            while (j < s.size() && !is_control(s[j]) && s[j] != ' ' && s[j] != '/' && s[j] != '?' && s[j] != '#' &&
                   s[j] != '"' && s[j] != '\'' && s[j] != '>') {
                if (s[j] == '@')
                    host_start = j + 1;
                ++j;
            }
            out.append("://").append(s.substr(host_start, j - host_start));
            bool had_rest = j < s.size() && (s[j] == '/' || s[j] == '?' || s[j] == '#');
            while (j < s.size() && !is_control(s[j]) && s[j] != ' ' && s[j] != '"' && s[j] != '\'' && s[j] != '>')
                ++j;
            if (had_rest)
                out.append("/...");
            i = j;
            continue;
        }
        if (s[i] == '?' && i + 1 < s.size() && !is_space(s[i + 1])) {
            std::size_t j = i + 1;
            bool has_equals = false;
            while (j < s.size() && !is_space(s[j]) && s[j] != '"' && s[j] != '\'') {
                has_equals = has_equals || s[j] == '=';
                ++j;
            }
            if (has_equals) {
                out.append("?...");
                i = j;
                continue;
            }
        }
        if (is_token_char(s[i]) && (i == 0 || !is_token_char(s[i - 1]))) {
            std::size_t j = i;
            while (j < s.size() && is_token_char(s[j]))
                ++j;
            if (j - i >= kTokenRun) {
                out.append(kMask);
                i = j;
                continue;
            }
        }
        out.push_back(is_control(s[i]) ? ' ' : s[i]);
        ++i;
    }
    if (out.size() > kMaxOutput)
        out.resize(kMaxOutput);
    return out;
}

} // namespace igid
