// usage.h — the rate-limit usage headers Meta sends with every answer:
//   X-App-Usage: {"call_count":28,"total_cputime":25,"total_time":25}
//   X-Business-Use-Case-Usage: {"<id>":[{"type":"instagram","call_count":12,
//       "total_cputime":3,"total_time":4,"estimated_time_to_regain_access":0}]}
// Figures are percentages. A missing or malformed header is "unknown", never 0.
#pragma once

#include <optional>
#include <string_view>

namespace igid {

struct BusinessUsage {
    std::optional<double> percent;         // max of the three figures over all entries
    std::optional<double> regain_minutes;  // max estimated_time_to_regain_access
};

struct Usage {
    std::optional<double> app_percent;
    std::optional<double> business_percent;
    std::optional<double> regain_minutes;

    // The highest known figure, or nullopt when nothing is known.
    std::optional<double> max_percent() const;
    bool known() const { return app_percent || business_percent; }
};

// Max of call_count, total_cputime, total_time; nullopt when none is a number.
std::optional<double> parse_app_usage(std::string_view header);

// Max over every id and entry; nullopt when no entry has a usable figure.
std::optional<BusinessUsage> parse_business_usage(std::string_view header);

// Both headers at once; absent headers are passed as nullopt.
Usage parse_usage_headers(std::optional<std::string_view> app_usage,
                          std::optional<std::string_view> business_usage);

} // namespace igid
