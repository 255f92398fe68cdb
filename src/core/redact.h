// redact.h — scrubs URLs, query strings and tokens from any text that may
// leave core (curl error texts, Graph error messages, parse reasons).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace igid {

// Returns text with: every listed secret replaced by "[redacted]"; the value
// after "access_token=" and after "Bearer " replaced; each URL cut down to
// scheme://host; query strings ("?a=b...") removed; long token-like runs
// (40+ characters of [A-Za-z0-9_-]) replaced; control characters turned into
// spaces; the result capped at 512 bytes.
std::string redact(std::string_view text, const std::vector<std::string_view> &secrets = {});

} // namespace igid
