// graph_error.h — the Graph API error envelope
// {"error":{"message","type","code","error_subcode"?,"is_transient"?,"fbtrace_id"?}}
// and the outcome shared by every Graph response parser.
#pragma once

#include <jansson.h>

#include <optional>
#include <string>
#include <string_view>

namespace igid {

struct GraphError {
    long long code = 0;
    std::optional<long long> subcode;
    std::optional<bool> is_transient;
    std::string type;       // e.g. "OAuthException"; never used to classify
    std::string message;    // redacted, capped
    std::string fbtrace_id;
};

// What a Graph response parser made of a body.
enum class ParseStatus {
    ok,          // the expected shape
    malformed,   // not JSON, or not the expected shape
    graph_error, // an error envelope
};

// An envelope is recognised only with a usable code (number or numeric string).
// Returns nullopt when root has no "error" member or the member is unusable.
std::optional<GraphError> graph_error_from_json(const json_t *root);

// True when root carries an "error" member at all (usable or not).
bool has_error_member(const json_t *root);

// Parses a whole body as an error envelope; nullopt when it is not one.
std::optional<GraphError> parse_graph_error(std::string_view body);

} // namespace igid
