// graph_error.cpp — parsing the Graph API error envelope.
#include "graph_error.h"

#include "json.h"
#include "redact.h"

namespace igid {

namespace {
constexpr std::size_t kMaxFieldBytes = 256;

std::string capped(std::optional<std::string> s) {
    if (!s)
        return {};
    if (s->size() > kMaxFieldBytes)
        s->resize(kMaxFieldBytes);
    return *s;
}
} // namespace

bool has_error_member(const json_t *root) { return json_has(root, "error"); }

std::optional<GraphError> graph_error_from_json(const json_t *root) {
    const json_t *err = json_get_object(root, "error");
    if (err == nullptr)
        return std::nullopt;
    auto code = json_get_int_lenient(err, "code");
    if (!code)
        return std::nullopt;
    GraphError e;
    e.code = *code;
    e.subcode = json_get_int_lenient(err, "error_subcode");
    e.is_transient = json_get_bool(err, "is_transient");
    if (!e.is_transient) {
        if (auto s = json_get_string(err, "is_transient"))
            if (*s == "true" || *s == "false")
                e.is_transient = (*s == "true");
    }
    e.type = capped(json_get_string(err, "type"));
    e.message = redact(capped(json_get_string(err, "message")));
    e.fbtrace_id = capped(json_get_string(err, "fbtrace_id"));
    return e;
}

std::optional<GraphError> parse_graph_error(std::string_view body) {
    JsonPtr root = json_parse(body);
    if (!root)
        return std::nullopt;
    return graph_error_from_json(root.get());
}

} // namespace igid
