// json.cpp — jansson parsing and getters (see json.h).
#include "json.h"

#include <cmath>
#include <limits>

namespace igid {

namespace {
constexpr std::size_t kMaxIdBytes = 256;
}

// json_loadb takes a length, so no NUL-termination is assumed.
JsonPtr json_parse(std::string_view text) {
    json_error_t err;
    return JsonPtr(json_loadb(text.data(), text.size(), 0, &err));
}

// One place that folds "absent" and "null" together.
const json_t *json_get(const json_t *obj, const char *key) {
    if (obj == nullptr || !json_is_object(obj))
        return nullptr;
    const json_t *value = json_object_get(obj, key);
    if (value == nullptr || json_is_null(value))
        return nullptr;
    return value;
}

bool json_has(const json_t *obj, const char *key) { return json_get(obj, key) != nullptr; }

std::string_view json_text(const json_t *string_value) {
    if (string_value == nullptr || !json_is_string(string_value))
        return {};
    return {json_string_value(string_value), json_string_length(string_value)};
}

std::optional<std::string> json_get_string(const json_t *obj, const char *key) {
    const json_t *value = json_get(obj, key);
    if (value == nullptr || !json_is_string(value))
        return std::nullopt;
    return std::string(json_text(value));
}

std::optional<bool> json_get_bool(const json_t *obj, const char *key) {
    const json_t *value = json_get(obj, key);
    if (value == nullptr || !json_is_boolean(value))
        return std::nullopt;
    return json_is_true(value);
}

// Integral reals are accepted because some encoders write 3.0 for 3.
static std::optional<long long> value_int(const json_t *value) {
    if (value == nullptr)
        return std::nullopt;
    if (json_is_integer(value))
        return static_cast<long long>(json_integer_value(value));
    if (json_is_real(value)) {
        double d = json_real_value(value);
        if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15)
            return static_cast<long long>(d);
    }
    return std::nullopt;
}

std::optional<long long> json_get_int(const json_t *obj, const char *key) {
    return value_int(json_get(obj, key));
}

// Graph error codes have been seen as numeric strings.
std::optional<long long> json_value_int_lenient(const json_t *value) {
    if (auto n = value_int(value))
        return n;
    if (value == nullptr || !json_is_string(value))
        return std::nullopt;
    std::string_view s = json_text(value);
    bool negative = !s.empty() && s.front() == '-';
    if (negative)
        s.remove_prefix(1);
    if (s.empty() || s.size() > 18)
        return std::nullopt;
    long long n = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return std::nullopt;
        n = n * 10 + (c - '0');
    }
    return negative ? -n : n;
}

std::optional<long long> json_get_int_lenient(const json_t *obj, const char *key) {
    return json_value_int_lenient(json_get(obj, key));
}

std::optional<double> json_get_number(const json_t *obj, const char *key) {
    const json_t *value = json_get(obj, key);
    if (value == nullptr || !json_is_number(value))
        return std::nullopt;
    double d = json_number_value(value);
    if (!std::isfinite(d))
        return std::nullopt;
    return d;
}

const json_t *json_get_object(const json_t *obj, const char *key) {
    const json_t *value = json_get(obj, key);
    return (value != nullptr && json_is_object(value)) ? value : nullptr;
}

const json_t *json_get_array(const json_t *obj, const char *key) {
    const json_t *value = json_get(obj, key);
    return (value != nullptr && json_is_array(value)) ? value : nullptr;
}

std::optional<std::string> json_value_id(const json_t *value) {
    if (value == nullptr)
        return std::nullopt;
    if (json_is_string(value)) {
        std::string_view s = json_text(value);
        if (s.empty() || s.size() > kMaxIdBytes || s.find('\0') != std::string_view::npos)
            return std::nullopt;
        return std::string(s);
    }
    if (json_is_integer(value) && json_integer_value(value) >= 0)
        return std::to_string(static_cast<long long>(json_integer_value(value)));
    return std::nullopt;
}

std::optional<std::string> json_get_id(const json_t *obj, const char *key) {
    return json_value_id(json_get(obj, key));
}

} // namespace igid
