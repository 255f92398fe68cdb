// usage.cpp — parsing X-App-Usage and X-Business-Use-Case-Usage.
#include "usage.h"

#include "json.h"

#include <algorithm>

namespace igid {

namespace {

// Max of the three usage figures of one JSON object; negatives are ignored.
std::optional<double> max_figure(const json_t *obj) {
    std::optional<double> best;
    for (const char *key : {"call_count", "total_cputime", "total_time"}) {
        auto v = json_get_number(obj, key);
        if (v && *v >= 0)
            best = best ? std::max(*best, *v) : *v;
    }
    return best;
}

} // namespace

std::optional<double> Usage::max_percent() const {
    if (app_percent && business_percent)
        return std::max(*app_percent, *business_percent);
    if (app_percent)
        return app_percent;
    return business_percent;
}

std::optional<double> parse_app_usage(std::string_view header) {
    JsonPtr root = json_parse(header);
    if (!root || !json_is_object(root.get()))
        return std::nullopt;
    return max_figure(root.get());
}

std::optional<BusinessUsage> parse_business_usage(std::string_view header) {
    JsonPtr root = json_parse(header);
    if (!root || !json_is_object(root.get()))
        return std::nullopt;
    std::optional<BusinessUsage> out;
    const char *key;
    json_t *entries;
    json_object_foreach(root.get(), key, entries) {
        if (!json_is_array(entries))
            continue;
        std::size_t i;
        json_t *entry;
        json_array_foreach(entries, i, entry) {
            if (!json_is_object(entry))
                continue;
            const std::optional<double> pct = max_figure(entry);
            const double regain = json_get_number(entry, "estimated_time_to_regain_access").value_or(-1.0);
            if (!pct && regain < 0)
                continue;
            if (!out)
                out.emplace();
            if (pct)
                out->percent = std::max(out->percent.value_or(0.0), pct.value_or(0.0));
            if (regain >= 0)
                out->regain_minutes = std::max(out->regain_minutes.value_or(0.0), regain);
        }
    }
    return out;
}

Usage parse_usage_headers(std::optional<std::string_view> app_usage,
                          std::optional<std::string_view> business_usage) {
    Usage u;
    if (app_usage)
        u.app_percent = parse_app_usage(*app_usage);
    if (business_usage) {
        if (auto b = parse_business_usage(*business_usage)) {
            u.business_percent = b->percent;
            u.regain_minutes = b->regain_minutes;
        }
    }
    return u;
}

} // namespace igid
