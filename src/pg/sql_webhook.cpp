/*
 * sql_webhook.cpp — ig_ingest_webhook(payload jsonb): stores what an
 * Instagram webhook delivery says (messages, unsends, attachments,
 * postbacks, referrals) and queues the people for the background worker;
 * and ig_identity_replay_dead_letters(), which parses the dead letters
 * again.  An event or entry that cannot be read does not spoil the rest of
 * its delivery: it goes, raw, to ig_identity.webhook_dead_letters.  Only a
 * body that is no Instagram delivery at all is refused.  Repeated
 * deliveries are deduplicated (on the message id for messages).
 */
#include "core/webhook.h"
#include "pg/inbox.h"
#include "pg/privilege.h"
#include "pg/result.h"

extern "C" {
#include "utils/jsonb.h"
}

#include <map>
#include <set>

using namespace igid;
using namespace igid::pg;

namespace {

/* One account's share of a delivery, as column arrays. */
struct AccountShare {
    std::vector<Text> mids, conversations, from, to, texts, participants;
    std::vector<std::optional<double>> created;
    std::vector<bool> echo;
    /* details of those messages that are more than plain text (a plain
     * text message gets no details row) */
    std::vector<Text> detail_mids, kinds, attachments, reply_to;
    /* unsends */
    std::vector<Text> unsent;
    /* postbacks and referrals */
    std::vector<Text> ev_kinds, ev_users, ev_mids, ev_payloads;
    std::vector<std::optional<double>> ev_at;
};

struct Counts {
    long long stored = 0, duplicates = 0, skipped = 0, queued = 0, deleted = 0, events = 0, dead = 0;
};

/* Stores a parsed delivery; inside with_spi, as the extension owner. */
void store_delivery(const WebhookResult &parsed, Counts &c)
{
    std::map<std::string, AccountShare> by_account;
    c.skipped += (long long) parsed.skipped_events;
    for (const auto &m : parsed.messages) {
        AccountShare &a = by_account[m.account_id];
        if (m.is_deleted) {
            a.unsent.emplace_back(m.mid);
            continue;
        }
        a.mids.emplace_back(m.mid);
        a.conversations.emplace_back(std::nullopt);
        a.from.emplace_back(m.from_id);
        a.to.emplace_back(m.to_id);
        a.texts.push_back(m.text);
        a.created.emplace_back((double) m.timestamp_ms / 1000.0);
        a.echo.push_back(m.is_echo);
        a.participants.emplace_back(m.participant_id);
        if (m.kind != "text" || m.reply_to) {
            a.detail_mids.emplace_back(m.mid);
            a.kinds.emplace_back(m.kind);
            a.attachments.push_back(m.attachments);
            a.reply_to.push_back(m.reply_to);
        }
    }
    for (const auto &e : parsed.events) {
        AccountShare &a = by_account[e.account_id];
        a.ev_kinds.emplace_back(e.kind);
        a.ev_users.emplace_back(e.participant_id);
        a.ev_mids.push_back(e.mid);
        a.ev_at.emplace_back((double) e.timestamp_ms / 1000.0);
        a.ev_payloads.emplace_back(e.payload);
    }

    for (auto &[account, a] : by_account) {
        const Param acc = text_param(account);
        if (!a.mids.empty()) {
            /* a message whose unsend came first is stored without its text */
            std::set<std::string> unsent;
            for (const Text &mid : a.unsent)
                unsent.insert(*mid);
            auto rows = spi_query("SELECT pg_catalog.unnest(ig_identity.unsent_mids($1, $2))",
                                  {acc, text_array_param(a.mids)});
            for (const Row &r : rows)
                if (r[0])
                    unsent.insert(*r[0]);
            for (size_t i = 0; i < a.mids.size(); i++)
                if (unsent.count(*a.mids[i]) != 0)
                    a.texts[i] = std::nullopt;

            long long n = store_messages({acc, text_array_param(a.mids), text_array_param(a.conversations),
                                          text_array_param(a.from), text_array_param(a.to),
                                          text_array_param(a.texts), timestamptz_array_param(a.created),
                                          bool_array_param(a.echo)});
            c.stored += n;
            c.duplicates += (long long) a.mids.size() - n;
            if (!a.detail_mids.empty())
                spi_query("SELECT ig_identity.store_message_details($1, $2, $3, $4, $5)",
                          {acc, text_array_param(a.detail_mids), text_array_param(a.kinds),
                           text_array_param(a.attachments), text_array_param(a.reply_to)});
        }
        if (!a.unsent.empty()) {
            spi_query("SELECT ig_identity.record_unsends($1, $2)", {acc, text_array_param(a.unsent)});
            c.deleted += clear_unsent_messages(account, a.unsent);
        }
        if (!a.ev_kinds.empty()) {
            auto rows = spi_query("SELECT ig_identity.store_webhook_events($1, $2, $3, $4, $5, $6)",
                                  {acc, text_array_param(a.ev_kinds), text_array_param(a.ev_users),
                                   text_array_param(a.ev_mids), timestamptz_array_param(a.ev_at),
                                   text_array_param(a.ev_payloads)});
            if (!rows.empty() && rows[0][0])
                c.events += std::stoll(*rows[0][0]);
        }

        /* a postback or referral opens the conversation like an inbound
         * message: the person is queued, a consent_required one too */
        std::vector<Text> people = a.participants;
        std::vector<bool> inbound;
        for (bool e : a.echo)
            inbound.push_back(!e);
        for (const Text &u : a.ev_users) {
            people.push_back(u);
            inbound.push_back(true);
        }
        if (!people.empty())
            c.queued += enqueue_participants(account, people, inbound, "webhook");
    }
}

void store_dead_letters(const std::vector<WebhookDeadLetter> &dead, Counts &c)
{
    if (dead.empty())
        return;
    std::vector<Text> accounts, reasons, raw;
    for (const auto &d : dead) {
        accounts.push_back(d.account_id);
        reasons.emplace_back(d.reason);
        raw.emplace_back(d.raw);
    }
    spi_query("SELECT ig_identity.store_dead_letters($1, $2, $3)",
              {text_array_param(accounts), text_array_param(reasons), text_array_param(raw)});
    c.dead += (long long) dead.size();
}

std::string jsonb_text(FunctionCallInfo fcinfo)
{
    char *json = pg_call([&] {
        Jsonb *jb = PG_GETARG_JSONB_P(0);
        return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
    });
    std::string out(json);
    pg_call([&] { pfree(json); });
    return out;
}

} // namespace

/*
 * ig_ingest_webhook(payload jsonb)
 *   RETURNS TABLE (messages_stored int, duplicates int, events_skipped int,
 *                  participants_queued int, messages_deleted int,
 *                  events_stored int, dead_letters int)
 */
IGID_FUNCTION(ig_ingest_webhook)
{
    if (PG_ARGISNULL(0))
        throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "payload must not be NULL", "",
                    "Pass the webhook delivery's JSON body.");
    WebhookResult parsed = parse_webhook(jsonb_text(fcinfo));
    if (!parsed.ok)
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "invalid Instagram webhook payload",
                    "The delivery was not stored: " + parsed.reason + ".",
                    "Pass the body Meta posted, e.g. {\"object\":\"instagram\",\"entry\":[...]}.");

    Counts c;
    with_spi([&] {
        /* internal statements run as the extension owner: the caller needs
         * only EXECUTE on this function (see privilege.h) */
        AsExtensionOwner as_owner;
        /* a database still at 1.0 has none of the tables of the new shapes
         * (and 1.0's result has four columns): the same clear error as every
         * other 1.1 function called there */
        auto rows = spi_query("SELECT pg_catalog.to_regprocedure("
                              "'ig_identity.store_dead_letters(pg_catalog.text[], pg_catalog.text[], pg_catalog.text[])')"
                              " IS NULL",
                              {}, true);
        if (!rows.empty() && rows[0][0] && *rows[0][0] == "t")
            throw Error(ERRCODE_UNDEFINED_FUNCTION,
                        "function ig_identity.store_dead_letters(pg_catalog.text[], pg_catalog.text[], "
                        "pg_catalog.text[]) does not exist in this database",
                        "This library is ig_identity " IGID_EXTVERSION "; the extension in this database is older.",
                        "Run ALTER EXTENSION ig_identity UPDATE in this database.");
        store_delivery(parsed, c);
        store_dead_letters(parsed.dead_letters, c);
    });

    return composite_result(fcinfo, {OutValue::of(c.stored), OutValue::of(c.duplicates), OutValue::of(c.skipped),
                                     OutValue::of(c.queued), OutValue::of(c.deleted), OutValue::of(c.events),
                                     OutValue::of(c.dead)});
}

/*
 * ig_identity_replay_dead_letters() RETURNS TABLE (replayed int, still_dead int)
 *
 * Each dead letter is a one-entry delivery; one that now parses without a
 * dead letter is stored and deleted, the others stay with this attempt's
 * reason.  Rows another session is replaying are left to it.
 */
IGID_FUNCTION(ig_identity_replay_dead_letters)
{
    long long replayed = 0, still_dead = 0;
    with_spi([&] {
        AsExtensionOwner as_owner;
        auto rows = spi_query("SELECT d.id::pg_catalog.text, d.raw::pg_catalog.text"
                              "  FROM ig_identity.webhook_dead_letters d"
                              " ORDER BY d.id FOR UPDATE SKIP LOCKED",
                              {});
        for (const Row &r : rows) {
            WebhookResult parsed = parse_webhook(r[1] ? *r[1] : std::string());
            if (parsed.ok && parsed.dead_letters.empty()) {
                Counts c;
                store_delivery(parsed, c);
                spi_exec("DELETE FROM ig_identity.webhook_dead_letters d"
                         " WHERE d.id OPERATOR(pg_catalog.=) $1::pg_catalog.int8",
                         {text_param(r[0])});
                replayed++;
            } else {
                const std::string reason = !parsed.ok                 ? parsed.reason
                                           : parsed.dead_letters.empty() ? std::string("unreadable")
                                                                         : parsed.dead_letters[0].reason;
                spi_exec("UPDATE ig_identity.webhook_dead_letters d SET reason = $2"
                         " WHERE d.id OPERATOR(pg_catalog.=) $1::pg_catalog.int8",
                         {text_param(r[0]), text_param(reason)});
                still_dead++;
            }
        }
    });
    return composite_result(fcinfo, {OutValue::of(replayed), OutValue::of(still_dead)});
}
