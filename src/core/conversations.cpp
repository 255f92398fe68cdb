// conversations.cpp — parsing a Conversations API page.
#include "conversations.h"

#include "iso_time.h"
#include "json.h"

namespace igid {

namespace {

std::optional<Conversation> conversation_from_json(const json_t *item, std::size_t &skipped) {
    auto id = json_get_id(item, "id");
    if (!id)
        return std::nullopt;
    Conversation c;
    c.id = std::move(*id);
    if (auto t = json_get_string(item, "updated_time")) {
        c.updated_epoch = parse_iso8601(*t);
        c.updated_time = std::move(*t);
    }
    if (const json_t *parts = json_get(item, "participants")) {
        if (auto list = participants_from_json(parts, &skipped))
            c.participants = std::move(*list);
        else
            ++skipped;
    }
    if (const json_t *messages = json_get(item, "messages")) {
        if (messages_from_json(messages, c.messages, skipped))
            c.has_messages = true;
        else
            ++skipped;
    }
    return c;
}

} // namespace

ConversationsResult parse_conversations(std::string_view body) {
    ConversationsResult r;
    JsonPtr root = json_parse(body);
    if (!root || !json_is_object(root.get()))
        return r;
    if (has_error_member(root.get())) {
        r.error = graph_error_from_json(root.get());
        r.status = r.error ? ParseStatus::graph_error : ParseStatus::malformed;
        return r;
    }
    const json_t *data = json_get_array(root.get(), "data");
    if (data == nullptr)
        return r;
    std::size_t i;
    json_t *item;
    json_array_foreach(data, i, item) {
        if (auto c = conversation_from_json(item, r.page.skipped))
            r.page.conversations.push_back(std::move(*c));
        else
            ++r.page.skipped;
    }
    const json_t *paging = json_get_object(root.get(), "paging");
    if (paging != nullptr && json_has(paging, "next")) {
        auto after = json_get_string(json_get_object(paging, "cursors"), "after");
        if (!after || after->empty()) {
            r.page = {};
            return r;
        }
        r.page.after = std::move(*after);
    }
    r.status = ParseStatus::ok;
    return r;
}

} // namespace igid
