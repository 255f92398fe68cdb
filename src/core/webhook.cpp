// webhook.cpp — parsing a messaging webhook delivery.
#include "webhook.h"

#include "json.h"

namespace igid {

namespace {

WebhookResult fail(const char *reason) {
    WebhookResult r;
    r.reason = reason;
    return r;
}

// A flag that is absent or null is false; any other non-boolean is an error.
bool read_flag(const json_t *obj, const char *key, bool &out) {
    if (!json_has(obj, key)) {
        out = false;
        return true;
    }
    auto v = json_get_bool(obj, key);
    if (!v)
        return false;
    out = *v;
    return true;
}

// Returns a reason on failure, nullptr on success.
const char *read_message(const json_t *event, const std::string &account_id, WebhookMessage &m) {
    const json_t *message = json_get_object(event, "message");
    if (message == nullptr)
        return "message is not an object";
    auto sender = json_get_id(json_get_object(event, "sender"), "id");
    auto recipient = json_get_id(json_get_object(event, "recipient"), "id");
    if (!sender || !recipient)
        return "message without sender or recipient id";
    auto mid = json_get_id(message, "mid");
    if (!mid)
        return "message without mid";
    auto ts = json_value_int_lenient(json_get(event, "timestamp"));
    if (!ts || *ts < 0)
        return "message without timestamp";
    if (!read_flag(message, "is_echo", m.is_echo) || !read_flag(message, "is_deleted", m.is_deleted))
        return "is_echo or is_deleted is not a boolean";
    if (json_has(message, "text")) {
        auto text = json_get_string(message, "text");
        if (!text)
            return "text is not a string";
        m.text = std::move(*text);
    }
    m.account_id = account_id;
    m.mid = std::move(*mid);
    m.from_id = std::move(*sender);
    m.to_id = std::move(*recipient);
    m.participant_id = m.is_echo ? m.to_id : m.from_id;
    m.timestamp_ms = *ts;
    return nullptr;
}

} // namespace

WebhookResult parse_webhook(std::string_view body) {
    JsonPtr root = json_parse(body);
    if (!root || !json_is_object(root.get()))
        return fail("not a JSON object");
    auto object = json_get_string(root.get(), "object");
    if (!object || *object != "instagram")
        return fail("object is not \"instagram\"");
    const json_t *entries = json_get_array(root.get(), "entry");
    if (entries == nullptr)
        return fail("entry is not an array");
    WebhookResult r;
    std::size_t i;
    json_t *entry;
    json_array_foreach(entries, i, entry) {
        if (!json_is_object(entry))
            return fail("entry item is not an object");
        auto account_id = json_get_id(entry, "id");
        if (!account_id)
            return fail("entry without id");
        const json_t *messaging = json_get(entry, "messaging");
        if (messaging == nullptr)
            continue;
        if (!json_is_array(messaging))
            return fail("messaging is not an array");
        std::size_t j;
        json_t *event;
        json_array_foreach(messaging, j, event) {
            if (!json_is_object(event))
                return fail("messaging item is not an object");
            if (!json_has(event, "message")) {
                ++r.skipped_events;
                continue;
            }
            WebhookMessage m;
            if (const char *reason = read_message(event, *account_id, m))
                return fail(reason);
            r.messages.push_back(std::move(m));
        }
    }
    r.ok = true;
    return r;
}

} // namespace igid
