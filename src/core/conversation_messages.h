// conversation_messages.h — one conversation with its newest messages
// GET /{CONVERSATION_ID}?fields=participants,messages.limit(20){id,created_time,from,to,message}
#pragma once

#include "graph_error.h"
#include "json.h"
#include "participant.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace igid {

struct Message {
    std::string id;
    std::string created_time;
    std::optional<std::int64_t> created_epoch;
    Participant from;
    std::vector<Participant> to;
    std::optional<std::string> text; // absent for attachments and unreadable older messages
};

struct ConversationMessages {
    std::string id; // the conversation id when echoed
    std::vector<Participant> participants;
    std::vector<Message> messages; // newest first, as sent
    std::size_t skipped = 0;       // messages without an id or a usable `from`
};

struct ConversationMessagesResult {
    ParseStatus status = ParseStatus::malformed;
    ConversationMessages conversation;
    std::optional<GraphError> error;
};

ConversationMessagesResult parse_conversation_messages(std::string_view body);

// The `messages` edge ({"data":[...]}) of a conversation, as nested in a
// conversation node or in a Conversations page.  Appends the usable messages
// to `out` and counts the others in `skipped`; false when the edge itself is
// malformed (then `out` is left as it was).
bool messages_from_json(const json_t *edge, std::vector<Message> &out, std::size_t &skipped);

} // namespace igid
