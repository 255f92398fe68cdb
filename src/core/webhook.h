// webhook.h — an Instagram messaging webhook delivery
// {"object":"instagram","entry":[{"id","time","messaging":[{"sender":{"id"},
//   "recipient":{"id"},"timestamp":<epoch ms>,"message":{"mid","text"?,
//   "is_echo"?,"is_deleted"?}}]}]}
// Only `message` events are kept; reactions, reads, postbacks, edits… are
// counted and skipped. A malformed delivery yields no messages at all.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace igid {

struct WebhookMessage {
    std::string account_id;     // entry.id: the business account
    std::string mid;
    std::string from_id;        // sender.id as sent
    std::string to_id;          // recipient.id as sent
    std::string participant_id; // the person: recipient when is_echo, else sender
    std::int64_t timestamp_ms = 0;
    std::optional<std::string> text;
    bool is_echo = false;
    bool is_deleted = false;
};

struct WebhookResult {
    bool ok = false;
    std::string reason; // short, when !ok
    std::vector<WebhookMessage> messages;
    std::size_t skipped_events = 0;
};

WebhookResult parse_webhook(std::string_view body);

} // namespace igid
