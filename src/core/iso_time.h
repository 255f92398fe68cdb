// iso_time.h — Graph API timestamps ("2025-07-28T22:44:49+0000") to epoch seconds.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace igid {

// Accepts YYYY-MM-DDTHH:MM:SS, optional fractional seconds, then Z, +HHMM,
// +HH:MM or -HHMM. Returns UTC epoch seconds; nullopt for anything else.
std::optional<std::int64_t> parse_iso8601(std::string_view text);

} // namespace igid
