// fuzz_parsers.cpp — libFuzzer targets, one per Graph API parser of src/core,
// plus the timestamp parser, the redactor and the token envelope reader.
//
// Each target is this file built with -DIGID_FUZZ_TARGET=<n>; run.sh builds
// them with AddressSanitizer and UndefinedBehaviorSanitizer. A target checks
// the parser's own promises as well as memory safety: no exception, and no
// success outcome without the fields that success implies.
#include "core/batch.h"
#include "core/conversation_messages.h"
#include "core/conversations.h"
#include "core/graph_error.h"
#include "core/iso_time.h"
#include "core/profile.h"
#include "core/redact.h"
#include "core/secret_box.h"
#include "core/usage.h"
#include "core/webhook.h"

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace igid;

namespace {

void check(bool ok)
{
    if (!ok)
        abort(); // a broken promise is a finding, like a crash
}

void fuzz_profile(std::string_view in)
{
    // the first line is the requested id, the rest the body
    auto nl = in.find('\n');
    std::string_view id = nl == std::string_view::npos ? std::string_view("1234567890123456") : in.substr(0, nl);
    std::string_view body = nl == std::string_view::npos ? in : in.substr(nl + 1);
    ProfileResult r = parse_profile(body, id);
    check(r.profile.has_value() == (r.status == ProfileStatus::ok));
    check(r.error.has_value() == (r.status == ProfileStatus::graph_error));
    if (r.status == ProfileStatus::ok)
        check(r.profile->id == id && (!r.profile->username || !r.profile->username->empty()));
}

void fuzz_conversations(std::string_view in)
{
    ConversationsResult r = parse_conversations(in);
    if (r.status != ParseStatus::ok)
        check(r.page.conversations.empty() && !r.page.after);
    check(!r.page.after || !r.page.after->empty());
    for (const auto &c : r.page.conversations) {
        check(!c.id.empty());
        auto other = other_party(c.participants, "17841400000000001");
        check(!other || other->id != "17841400000000001"); // self is never the other party
    }
}

void fuzz_messages(std::string_view in)
{
    ConversationMessagesResult r = parse_conversation_messages(in);
    if (r.status == ParseStatus::ok)
        for (const auto &m : r.conversation.messages)
            check(!m.id.empty());
}

void fuzz_error(std::string_view in) { (void) parse_graph_error(in); }

void fuzz_usage(std::string_view in)
{
    auto nl = in.find('\n');
    std::string_view app = in.substr(0, nl);
    std::string_view buc = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    Usage u = parse_usage_headers(app, buc);
    if (auto p = u.max_percent())
        check(*p == *p); // never NaN
}

void fuzz_batch(std::string_view in)
{
    std::vector<std::string> ids = {"1", "2", "3"};
    auto items = batch_profiles(parse_batch(in), ids);
    check(items.empty() || items.size() == ids.size());
    for (const auto &i : items)
        check(i.answered || !i.result.profile);
}

void fuzz_webhook(std::string_view in)
{
    WebhookResult r = parse_webhook(in);
    if (!r.ok)
        check(r.messages.empty()); // a malformed delivery yields nothing
    for (const auto &m : r.messages)
        check(!m.mid.empty() && !m.account_id.empty() &&
              m.participant_id == (m.is_echo ? m.to_id : m.from_id));
    // a dead letter is a delivery of its own that fails the same way again
    for (const auto &d : r.dead_letters) {
        WebhookResult again = parse_webhook(d.raw);
        check(again.ok && !again.dead_letters.empty());
    }
}

void fuzz_iso_time(std::string_view in)
{
    // Four-digit years, offsets under a day.
    if (auto t = parse_iso8601(in))
        check(*t >= -62167219200LL - 86400 && *t <= 253402300800LL + 86400);
}

void fuzz_redact(std::string_view in)
{
    if (in.empty())
        return;
    // The first byte gives a secret's length; the secret is the text's
    // start, used when alphanumeric and at least 8 long: it must not survive.
    std::string_view text = in.substr(1);
    std::string secret(text.substr(0, static_cast<unsigned char>(in[0]) % 32));
    bool usable = secret.size() >= 8;
    for (char c : secret)
        usable = usable && std::isalnum(static_cast<unsigned char>(c));
    std::string out = usable ? redact(text, {secret}) : redact(text);
    check(out.size() <= 512);
    check(!usable || out.find(secret) == std::string::npos);
    for (char c : out)
        check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
}

// Stored envelopes come back from the database: opening any bytes must not
// crash, and must not succeed without the key's id and a full-length tag.
void fuzz_secret_box(std::string_view in)
{
    static const SecretKey key = *key_from_file_contents(std::string(64, 'c'));
    const std::vector<std::uint8_t> env(in.begin(), in.end());
    OpenResult r = open({&key}, env, "access_token:1");
    if (r.status == OpenStatus::Ok) {
        check(env.size() == kSealedOverhead + r.secret.size());
        check(envelope_key_id(env) == key.id_hex());
    }
    if (r.status == OpenStatus::Plain)
        check(!env.empty() && env[0] == kPlainVersion && r.secret.size() == env.size() - 1);
    (void) key_from_file_contents(std::string(in));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::string_view in(reinterpret_cast<const char *>(data), size);
#if IGID_FUZZ_TARGET == 1
    fuzz_profile(in);
#elif IGID_FUZZ_TARGET == 2
    fuzz_conversations(in);
#elif IGID_FUZZ_TARGET == 3
    fuzz_messages(in);
#elif IGID_FUZZ_TARGET == 4
    fuzz_error(in);
#elif IGID_FUZZ_TARGET == 5
    fuzz_usage(in);
#elif IGID_FUZZ_TARGET == 6
    fuzz_batch(in);
#elif IGID_FUZZ_TARGET == 7
    fuzz_webhook(in);
#elif IGID_FUZZ_TARGET == 8
    fuzz_iso_time(in);
#elif IGID_FUZZ_TARGET == 9
    fuzz_redact(in);
#elif IGID_FUZZ_TARGET == 10
    fuzz_secret_box(in);
#else
#error "define IGID_FUZZ_TARGET"
#endif
    return 0;
}
