/*
 * sql_webhook.cpp — ig_ingest_webhook(payload jsonb): stores the messages of
 * an Instagram webhook delivery and queues their participants for the
 * background worker.  A malformed delivery is rejected whole, so nothing is
 * half-stored; repeated deliveries are deduplicated on the message id.
 */
#include "core/webhook.h"
#include "pg/inbox.h"
#include "pg/privilege.h"
#include "pg/result.h"

extern "C" {
#include "utils/jsonb.h"
}

#include <map>

using namespace igid;
using namespace igid::pg;

namespace {

/* One account's share of a delivery, as column arrays. */
struct AccountMessages {
    std::vector<Text> mids, conversations, from, to, texts, participants;
    std::vector<std::optional<double>> created;
    std::vector<bool> echo;
};

} // namespace

/*
 * ig_ingest_webhook(payload jsonb)
 *   RETURNS TABLE (messages_stored int, duplicates int, events_skipped int,
 *                  participants_queued int)
 */
IGID_FUNCTION(ig_ingest_webhook)
{
    if (PG_ARGISNULL(0))
        throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "payload must not be NULL", "",
                    "Pass the webhook delivery's JSON body.");
    char *json = pg_call([&] {
        Jsonb *jb = PG_GETARG_JSONB_P(0);
        return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
    });
    WebhookResult parsed = parse_webhook(json);
    pg_call([&] { pfree(json); });
    if (!parsed.ok)
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid Instagram webhook payload",
                    "The delivery was not stored: " + parsed.reason + ".",
                    "Pass the body Meta posted, e.g. {\"object\":\"instagram\",\"entry\":[...]}.");

    std::map<std::string, AccountMessages> by_account;
    long long skipped = (long long) parsed.skipped_events;
    for (const auto &m : parsed.messages) {
        if (m.is_deleted) { /* an unsend: nothing to store */
            skipped++;
            continue;
        }
        AccountMessages &a = by_account[m.account_id];
        a.mids.emplace_back(m.mid);
        a.conversations.emplace_back(std::nullopt);
        a.from.emplace_back(m.from_id);
        a.to.emplace_back(m.to_id);
        a.texts.push_back(m.text);
        a.created.emplace_back((double) m.timestamp_ms / 1000.0);
        a.echo.push_back(m.is_echo);
        a.participants.emplace_back(m.participant_id);
    }

    long long stored = 0, total = 0, queued = 0;
    with_spi([&] {
        /* internal statements run as the extension owner: the caller needs
         * only EXECUTE on this function (see privilege.h) */
        AsExtensionOwner as_owner;
        for (auto &[account, a] : by_account) {
            total += (long long) a.mids.size();
            stored += store_messages({text_param(account), text_array_param(a.mids),
                                      text_array_param(a.conversations), text_array_param(a.from),
                                      text_array_param(a.to), text_array_param(a.texts),
                                      timestamptz_array_param(a.created), bool_array_param(a.echo)});

            std::vector<bool> inbound;
            for (bool e : a.echo)
                inbound.push_back(!e);
            queued += enqueue_participants(account, a.participants, inbound, "webhook");
        }
    });

    return composite_result(fcinfo, {OutValue::of(stored), OutValue::of(total - stored),
                                     OutValue::of(skipped), OutValue::of(queued)});
}
