// webhook.h — an Instagram messaging webhook delivery
// {"object":"instagram","entry":[{"id","time","messaging"|"standby":[event…]}]}
// Each event carries sender.id, recipient.id, timestamp (epoch ms) and one of:
//   message   {"mid","text"?,"is_echo"?,"is_deleted"?,"is_unsupported"?,
//              "attachments"?:[{"type","payload"?}],"reply_to"?:{…}}
//   postback  {"mid"?,"title"?,"payload"?}     referral {"ref"?,"source"?,"type"?}
//   reaction, read, message_edit: known, skipped on purpose and counted.
// `standby` events (another app controls the thread) are read like
// `messaging` ones; `changes` items (the dashboard's test button) are
// skipped and counted.
// One bad event or entry does not spoil the rest: it becomes a dead letter,
// a one-event delivery of its own (the same envelope around the raw event)
// with the reason, so it can be parsed again later. Only a body that is not
// an Instagram delivery at all (not an object, object != "instagram", no
// entry array) fails whole (ok = false).
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
    bool is_deleted = false;     // an unsend: mid names an earlier message
    bool is_unsupported = false; // a kind of message the API does not deliver
    // What the message is: "text", "attachment", "unsupported", "deleted" or
    // "empty" (none of these).
    std::string kind;
    std::optional<std::string> attachments; // the attachments array, compact JSON
    std::optional<std::string> reply_to;    // the reply_to object, compact JSON
};

// A postback (icebreaker, persistent menu, button) or a referral (ig.me
// link, ad): no message, but the person opened the conversation.
struct WebhookEvent {
    std::string account_id;
    std::string kind; // "postback" or "referral"
    std::string participant_id;
    std::optional<std::string> mid; // postbacks carry one
    std::int64_t timestamp_ms = 0;
    std::string payload; // the postback/referral object, compact JSON
};

struct WebhookDeadLetter {
    std::optional<std::string> account_id; // entry.id when it was readable
    std::string reason;
    std::string raw; // {"object":"instagram","entry":[…one entry, one event…]}
};

struct WebhookResult {
    bool ok = false;
    std::string reason; // short, when !ok
    std::vector<WebhookMessage> messages; // including unsends (is_deleted)
    std::vector<WebhookEvent> events;
    std::vector<WebhookDeadLetter> dead_letters;
    std::size_t skipped_events = 0; // reactions, reads, edits, changes items
};

WebhookResult parse_webhook(std::string_view body);

} // namespace igid
