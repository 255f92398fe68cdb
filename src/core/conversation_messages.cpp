// conversation_messages.cpp — parsing one conversation's messages.
#include "conversation_messages.h"

#include "iso_time.h"
#include "json.h"

namespace igid {

namespace {

std::optional<Message> message_from_json(const json_t *item) {
    auto id = json_get_id(item, "id");
    if (!id)
        return std::nullopt;
    auto from = participant_from_json(json_get(item, "from"));
    if (!from)
        return std::nullopt;
    Message m;
    m.id = std::move(*id);
    m.from = std::move(*from);
    if (auto t = json_get_string(item, "created_time")) {
        m.created_epoch = parse_iso8601(*t);
        m.created_time = std::move(*t);
    }
    if (const json_t *to = json_get(item, "to")) {
        auto list = participants_from_json(to);
        if (!list)
            return std::nullopt;
        m.to = std::move(*list);
    }
    if (json_has(item, "message")) {
        auto text = json_get_string(item, "message");
        if (!text)
            return std::nullopt;
        m.text = std::move(*text);
    }
    return m;
}

} // namespace

bool messages_from_json(const json_t *edge, std::vector<Message> &out, std::size_t &skipped) {
    const json_t *data = json_get_array(edge, "data");
    if (data == nullptr)
        return false;
    std::size_t i;
    json_t *item;
    json_array_foreach(data, i, item) {
        if (auto m = message_from_json(item))
            out.push_back(std::move(*m));
        else
            ++skipped;
    }
    return true;
}

ConversationMessagesResult parse_conversation_messages(std::string_view body) {
    ConversationMessagesResult r;
    JsonPtr root = json_parse(body);
    if (!root || !json_is_object(root.get()))
        return r;
    if (has_error_member(root.get())) {
        r.error = graph_error_from_json(root.get());
        r.status = r.error ? ParseStatus::graph_error : ParseStatus::malformed;
        return r;
    }
    ConversationMessages &c = r.conversation;
    if (auto id = json_get_id(root.get(), "id"))
        c.id = std::move(*id);
    if (const json_t *parts = json_get(root.get(), "participants")) {
        auto list = participants_from_json(parts);
        if (!list)
            return r;
        c.participants = std::move(*list);
    }
    if (const json_t *messages = json_get(root.get(), "messages"))
        if (!messages_from_json(messages, c.messages, c.skipped))
            return r;
    if (c.id.empty() && !json_has(root.get(), "participants") && !json_has(root.get(), "messages"))
        return r;
    r.status = ParseStatus::ok;
    return r;
}

} // namespace igid
