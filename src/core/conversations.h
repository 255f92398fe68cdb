// conversations.h — one page of the Conversations API
// GET /{id}/conversations?platform=instagram&fields=id,updated_time,participants,
//     messages.limit(20){id,created_time,from,to,message}
// The messages come nested in the same answer (field expansion), so a sync
// costs one call per page of 25 conversations, not one per conversation.
// The `next` URL is never kept: paging continues from the `after` cursor,
// which is exposed only when `paging.next` exists.
#pragma once

#include "conversation_messages.h"
#include "graph_error.h"
#include "participant.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace igid {

struct Conversation {
    std::string id;
    std::string updated_time;                  // as sent, e.g. 2025-07-28T22:44:49+0000
    std::optional<std::int64_t> updated_epoch; // nullopt when updated_time is absent or unparsable
    std::vector<Participant> participants;
    std::vector<Message> messages; // the nested newest messages, newest first
    bool has_messages = false;     // the page carried a well-formed `messages` edge
};

struct ConversationsPage {
    std::vector<Conversation> conversations;
    std::optional<std::string> after; // set only when there is a next page
    std::size_t skipped = 0;          // conversations or participants dropped as unusable
};

struct ConversationsResult {
    ParseStatus status = ParseStatus::malformed;
    ConversationsPage page;
    std::optional<GraphError> error;
};

// A short or even empty page with `paging.next` still has a next page.
// `paging.next` without `paging.cursors.after` is malformed (we cannot go on
// without following the URL, which we never do).
ConversationsResult parse_conversations(std::string_view body);

} // namespace igid
