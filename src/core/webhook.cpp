// webhook.cpp — parsing a messaging webhook delivery, event by event.
#include "webhook.h"

#include "json.h"

#include <cstdlib>
#include <memory>
#include <new>

namespace igid {

namespace {

WebhookResult fail(const char *reason) {
    WebhookResult r;
    r.reason = reason;
    return r;
}

struct Freer {
    void operator()(char *p) const { std::free(p); }
};

// Compact JSON text of a value (keys in their order).
std::string dump(const json_t *value) {
    std::unique_ptr<char, Freer> s(json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER));
    if (!s)
        throw std::bad_alloc();
    return std::string(s.get());
}

// A JSON string literal of s (keys come from a parsed body: valid UTF-8).
std::string quote(std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += (char) c;
        } else if (c < 0x20) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += (char) c;
        }
    }
    return out + "\"";
}

// The dead letters are built as text, never with jansson's constructors:
// inside the server, json_object() and its kind resolve to PostgreSQL's own
// SQL functions of the same name.

// A delivery of its own around one entry: what a dead letter keeps, so that
// a replay parses it exactly as the original would have been.
std::string envelope_text(const std::string &entry_json) {
    return "{\"object\":\"instagram\",\"entry\":[" + entry_json + "]}";
}

std::string envelope(const json_t *entry) { return envelope_text(dump(entry)); }

// The entry with only this one event under `field` (ids and time kept).
std::string envelope_event(const json_t *entry, const char *field, const json_t *event) {
    std::string copy = "{";
    const char *key;
    json_t *value;
    json_object_foreach(const_cast<json_t *>(entry), key, value) {
        const std::string_view k(key);
        if (k == "messaging" || k == "standby" || k == "changes")
            continue;
        copy += quote(k) + ":" + dump(value) + ",";
    }
    copy += quote(field) + ":[" + dump(event) + "]}";
    return envelope_text(copy);
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

struct Envelope {
    std::string sender, recipient;
    std::int64_t timestamp_ms = 0;
};

const char *read_envelope(const json_t *event, Envelope &e) {
    auto sender = json_get_id(json_get_object(event, "sender"), "id");
    auto recipient = json_get_id(json_get_object(event, "recipient"), "id");
    if (!sender || !recipient)
        return "event without sender or recipient id";
    auto ts = json_value_int_lenient(json_get(event, "timestamp"));
    if (!ts || *ts < 0)
        return "event without timestamp";
    e.sender = std::move(*sender);
    e.recipient = std::move(*recipient);
    e.timestamp_ms = *ts;
    return nullptr;
}

// Returns a reason on failure, nullptr on success.
const char *read_message(const json_t *event, const std::string &account_id, WebhookMessage &m) {
    const json_t *message = json_get_object(event, "message");
    if (message == nullptr)
        return "message is not an object";
    Envelope e;
    if (const char *reason = read_envelope(event, e))
        return reason;
    auto mid = json_get_id(message, "mid");
    if (!mid)
        return "message without mid";
    if (!read_flag(message, "is_echo", m.is_echo) || !read_flag(message, "is_deleted", m.is_deleted) ||
        !read_flag(message, "is_unsupported", m.is_unsupported))
        return "is_echo, is_deleted or is_unsupported is not a boolean";
    if (json_has(message, "text")) {
        auto text = json_get_string(message, "text");
        if (!text)
            return "text is not a string";
        m.text = std::move(*text);
    }
    if (json_has(message, "attachments")) {
        const json_t *attachments = json_get_array(message, "attachments");
        if (attachments == nullptr)
            return "attachments is not an array";
        std::size_t k;
        json_t *a;
        json_array_foreach(attachments, k, a) {
            if (!json_is_object(a) || !json_get_string(a, "type"))
                return "attachment without a type";
            if (json_has(a, "payload") && json_get_object(a, "payload") == nullptr)
                return "attachment payload is not an object";
        }
        if (json_array_size(attachments) > 0)
            m.attachments = dump(attachments);
    }
    if (json_has(message, "reply_to")) {
        const json_t *reply_to = json_get_object(message, "reply_to");
        if (reply_to == nullptr)
            return "reply_to is not an object";
        m.reply_to = dump(reply_to);
    }
    m.kind = m.is_deleted       ? "deleted"
             : m.is_unsupported ? "unsupported"
             : m.attachments    ? "attachment"
             : m.text           ? "text"
                                : "empty";
    m.account_id = account_id;
    m.mid = std::move(*mid);
    m.from_id = std::move(e.sender);
    m.to_id = std::move(e.recipient);
    m.participant_id = m.is_echo ? m.to_id : m.from_id;
    m.timestamp_ms = e.timestamp_ms;
    return nullptr;
}

const char *read_event(const json_t *event, const char *kind, const std::string &account_id, WebhookEvent &ev) {
    const json_t *body = json_get_object(event, kind);
    if (body == nullptr)
        return kind[0] == 'p' ? "postback is not an object" : "referral is not an object";
    Envelope e;
    if (const char *reason = read_envelope(event, e))
        return reason;
    if (json_has(body, "mid")) {
        auto mid = json_get_id(body, "mid");
        if (!mid)
            return "postback mid is not an id";
        ev.mid = std::move(*mid);
    }
    ev.account_id = account_id;
    ev.kind = kind;
    // The person: whoever is not the business account.
    ev.participant_id = e.sender == account_id ? e.recipient : e.sender;
    ev.timestamp_ms = e.timestamp_ms;
    ev.payload = dump(body);
    return nullptr;
}

bool is_skipped_kind(const json_t *event) {
    for (const char *k : {"reaction", "read", "message_edit"})
        if (json_has(event, k))
            return true;
    return false;
}

void dead_letter(WebhookResult &r, const std::optional<std::string> &account, const char *reason, std::string raw) {
    WebhookDeadLetter d;
    d.account_id = account;
    d.reason = reason;
    d.raw = std::move(raw);
    r.dead_letters.push_back(std::move(d));
}

void read_events(WebhookResult &r, json_t *entry, const std::string &account_id, const char *field) {
    const json_t *events = json_get(entry, field);
    if (events == nullptr)
        return;
    if (!json_is_array(events)) {
        dead_letter(r, account_id, field[0] == 'm' ? "messaging is not an array" : "standby is not an array",
                    envelope(entry));
        return;
    }
    std::size_t j;
    json_t *event;
    json_array_foreach(events, j, event) {
        const char *reason = nullptr;
        if (!json_is_object(event)) {
            reason = "event is not an object";
        } else if (json_has(event, "message")) {
            WebhookMessage m;
            if (!(reason = read_message(event, account_id, m))) {
                r.messages.push_back(std::move(m));
                continue;
            }
        } else if (json_has(event, "postback") || json_has(event, "referral")) {
            WebhookEvent ev;
            if (!(reason = read_event(event, json_has(event, "postback") ? "postback" : "referral", account_id, ev))) {
                r.events.push_back(std::move(ev));
                continue;
            }
        } else if (is_skipped_kind(event)) {
            ++r.skipped_events;
            continue;
        } else {
            reason = "unknown event (none of message, postback, referral, reaction, read, message_edit)";
        }
        dead_letter(r, account_id, reason, envelope_event(entry, field, event));
    }
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
        if (!json_is_object(entry)) {
            dead_letter(r, std::nullopt, "entry item is not an object", envelope(entry));
            continue;
        }
        auto account_id = json_get_id(entry, "id");
        if (!account_id) {
            dead_letter(r, std::nullopt, "entry without id", envelope(entry));
            continue;
        }
        read_events(r, entry, *account_id, "messaging");
        read_events(r, entry, *account_id, "standby");
        if (const json_t *changes = json_get(entry, "changes")) {
            if (json_is_array(changes))
                r.skipped_events += json_array_size(changes);
            else
                dead_letter(r, account_id, "changes is not an array", envelope(entry));
        }
    }
    r.ok = true;
    return r;
}

} // namespace igid
