// conversation_pager.cpp — cursor paging over the Conversations API (see conversation_pager.h).
#include "conversation_pager.h"

#include "redact.h"

namespace igid {

ConversationPager::ConversationPager(GraphAccount account, std::string owner_id, ConversationPagerOptions options)
    : account_(std::move(account)), owner_id_(std::move(owner_id)), options_(std::move(options)) {
    if (!options_.rng)
        options_.rng = default_rng();
    if (owner_id_ != "me" && !is_valid_igsid(owner_id_))
        failed_ = true;
}

std::optional<HttpRequest> ConversationPager::next_request() const {
    if (finished_ || failed_)
        return std::nullopt;
    return conversations_request(account_, owner_id_, cursor_);
}

PagerEvent ConversationPager::fail(PagerEvent e) {
    failed_ = true;
    e.kind = PagerEvent::Kind::failed;
    return e;
}

PagerEvent ConversationPager::on_response(const HttpResponse &r) {
    PagerEvent e;
    e.usage = parse_usage_headers(
        r.app_usage ? std::optional<std::string_view>(*r.app_usage) : std::nullopt,
        r.business_usage ? std::optional<std::string_view>(*r.business_usage) : std::nullopt);
    if (finished_ || failed_) {
        e.detail = "pager already stopped";
        e.action.kind = ActionKind::permanent;
        return e;
    }
    if (!r.attempted) {
        e.action.kind = ActionKind::throttled;
        e.detail = "not attempted: account paused";
        return fail(e);
    }

    PolicyInput in;
    in.http_status = r.status;
    in.transport = r.error;
    ConversationsResult parsed;
    if (r.error == TransportError::none) {
        parsed = parse_conversations(r.body);
        if (parsed.error)
            in.error = &*parsed.error;
        in.body = parsed.status == ParseStatus::malformed ? BodyState::malformed : BodyState::ok;
    }
    e.action = classify(in);
    if (parsed.error) {
        e.error = parsed.error;
        e.error->message = redact(e.error->message, {account_.token});
    }
    if (r.error != TransportError::none)
        e.detail = std::string(transport_error_name(r.error)) + ": " + redact(r.error_text, {account_.token});
    else if (parsed.error)
        e.detail = "graph error " + std::to_string(parsed.error->code) + ": " + e.error->message;
    else if (parsed.status == ParseStatus::malformed)
        e.detail = "malformed conversations page (http " + std::to_string(r.status) + ")";

    switch (e.action.kind) {
    case ActionKind::ok:
        break;
    case ActionKind::retry:
        if (++attempts_ < options_.max_attempts) {
            e.kind = PagerEvent::Kind::retry;
            e.retry_in = backoff_delay(attempts_, options_.backoff_base, options_.backoff_cap, options_.rng);
            return e;
        }
        e.detail = "gave up after " + std::to_string(attempts_) + " attempts: " + e.detail;
        return fail(e);
    case ActionKind::throttled:
        e.pause_for = throttle_pause(e.usage, ++consecutive_throttles_, options_.rng);
        return fail(e);
    case ActionKind::policy_block:
        e.pause_for = kPolicyBlockPause;
        return fail(e);
    default:
        return fail(e);
    }

    attempts_ = 0;
    consecutive_throttles_ = 0;
    ++pages_;
    e.kind = PagerEvent::Kind::page;
    e.page = std::move(parsed.page);
    if (!e.page.after) {
        finished_ = true;
    } else if (!seen_cursors_.insert(*e.page.after).second) {
        e.action.kind = ActionKind::permanent;
        e.detail = "the server repeated a cursor; stopping";
        finished_ = true;
        failed_ = true;
    } else if (pages_ >= options_.max_pages) {
        e.detail = "stopped at the page limit";
        finished_ = true;
    } else {
        cursor_ = *e.page.after;
    }
    return e;
}

} // namespace igid
