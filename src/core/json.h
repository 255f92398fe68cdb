// json.h — RAII ownership of jansson values and safe field getters.
//
// Every getter treats an absent key and a JSON null the same (no value), and
// never confuses `false` or `0` with "absent". A value of the wrong type is
// also "no value"; use json_has() to tell "absent/null" from "wrong type".
#pragma once

#include <jansson.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace igid {

struct JsonDecref {
    void operator()(json_t *value) const noexcept { json_decref(value); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDecref>;

// Parses exactly text.size() bytes (no NUL terminator needed). The top level
// must be an object or an array. Null when malformed. Callers cap the size.
JsonPtr json_parse(std::string_view text);

// The value under key, or nullptr when obj is not an object, the key is
// absent or the value is JSON null.
const json_t *json_get(const json_t *obj, const char *key);

// True when key holds a non-null value of any type.
bool json_has(const json_t *obj, const char *key);

// The bytes of a JSON string value (embedded NULs kept).
std::string_view json_text(const json_t *string_value);

std::optional<std::string> json_get_string(const json_t *obj, const char *key);
std::optional<bool> json_get_bool(const json_t *obj, const char *key);
// Integers only (an integral real such as 3.0 is accepted too).
std::optional<long long> json_get_int(const json_t *obj, const char *key);
// Integers, integral reals, or strings of decimal digits ("190").
std::optional<long long> json_get_int_lenient(const json_t *obj, const char *key);
// Any number, as a double.
std::optional<double> json_get_number(const json_t *obj, const char *key);
const json_t *json_get_object(const json_t *obj, const char *key);
const json_t *json_get_array(const json_t *obj, const char *key);

// An identifier: a non-empty string (at most 256 bytes) or a non-negative
// integer rendered in decimal. Graph ids are strings; a few old shapes send
// numbers.
std::optional<std::string> json_get_id(const json_t *obj, const char *key);

// The same conversions applied to a value rather than an object's field.
std::optional<long long> json_value_int_lenient(const json_t *value);
std::optional<std::string> json_value_id(const json_t *value);

} // namespace igid
