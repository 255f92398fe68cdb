/*
 * accounts.cpp — reading connected accounts and recording what fetches
 * learned about them.  Tokens and account state live in the extension's
 * private schema, so these statements run as the extension's owner.
 */
#include "pg/privilege.h"
#include "pg/refresh.h"
#include "pg/secrets.h"

extern "C" {
#include "utils/errcodes.h"
}

#include <ctime>
#include <map>
#include <set>

namespace igid::pg {

/* Reads credentials for a location and/or one account.  The stored token
 * is opened here, the one place credentials are read: a token that does not
 * open (a key this server lacks, a value copied from another row) raises a
 * clear error, or, for the worker (skip_unopenable), leaves that account out
 * with one WARNING per account and cause, and its row is kept as it is. */
/* The worker skips an account whose stored secret this server cannot open
 * (another server's key): one WARNING per account and cause, for the life of
 * the process; the row is kept. */
static void warn_once_unopenable(const std::string &id, const Error &e)
{
    static std::set<std::string> warned;
    const std::string msg = e.what();
    if (!warned.insert(id + "\n" + msg).second)
        return;
    const std::string &detail = e.detail(), &hint = e.hint();
    pg_call([&] {
        ereport(WARNING, (errcode(e.sqlstate()), errmsg("%s", msg.c_str()), errdetail("%s", detail.c_str()),
                          errhint("%s", hint.c_str())));
    });
}

static std::vector<AccountCreds> read_credentials(const Text &location_id, const Text &ig_account_id,
                                                  bool skip_unopenable = false)
{
    AsExtensionOwner owner;
    /* the token's rotation time as whole microseconds since the Unix epoch:
     * exact, and free of DateStyle and TimeZone (see timestamptz_us_param);
     * the sealed token as hex, free of bytea_output */
    auto rows = spi_query("SELECT ig_account_id, self_igsid, api_host, access_token,"
                          "       (pg_catalog.extract('epoch', token_rotated_at)"
                          "        OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8,"
                          "       consecutive_throttles,"
                          /* a database still at 1.0 stores tokens as text
                           * (the update seals them): served as they are */
                          "       (SELECT a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.bytea'::pg_catalog.regtype"
                          "          FROM pg_catalog.pg_attribute a"
                          "         WHERE a.attrelid OPERATOR(pg_catalog.=) 'ig_identity.account_tokens'::pg_catalog.regclass"
                          "           AND a.attname OPERATOR(pg_catalog.=) 'access_token')"
                          "  FROM ig_identity.account_credentials($1, $2)",
                          {text_param(location_id), text_param(ig_account_id)}, true);
    static const SecretColumn &tokens = secret_column("access_token");
    std::vector<AccountCreds> out;
    for (auto &r : rows) {
        const std::string id = r[0].value_or("");
        std::string token;
        try {
            if (r[6].value_or("t") == "f")
                token = r[3].value_or("");
            else
                token = open_stored_secret(tokens, id, r[3].value_or(""));
        } catch (const Error &e) {
            if (!skip_unopenable)
                throw;
            warn_once_unopenable(id, e);
            continue;
        }
        out.push_back({id, r[1].value_or(""), r[2].value_or(""), std::move(token), r[4],
                       std::stoi(r[5].value_or("0"))});
    }
    /* The one place C++ reads app secrets.  A database still at 1.0 has
     * none (nor the function). */
    auto has = spi_query("SELECT pg_catalog.to_regprocedure('ig_identity.account_secrets(text,text)') IS NOT NULL",
                         {}, true);
    if (!out.empty() && !has.empty() && has[0][0].value_or("f") == "t") {
        auto secrets = spi_query("SELECT ig_account_id, app_secret FROM ig_identity.account_secrets($1, $2)",
                                 {text_param(location_id), text_param(ig_account_id)}, true);
        /* sealed like the tokens; opened here, the one place it is used */
        static const SecretColumn &app_secrets = secret_column("app_secret");
        std::map<std::string, std::string> by_id;
        std::set<std::string> unopenable;
        for (auto &r : secrets) {
            const std::string id = r[0].value_or("");
            try {
                by_id[id] = open_stored_secret(app_secrets, id, r[1].value_or(""));
            } catch (const Error &e) {
                if (!skip_unopenable)
                    throw;
                warn_once_unopenable(id, e);
                unopenable.insert(id);
            }
        }
        std::vector<AccountCreds> usable;
        for (auto &a : out) {
            if (unopenable.count(a.ig_account_id))
                continue;
            auto it = by_id.find(a.ig_account_id);
            if (it != by_id.end())
                a.app_secret = it->second;
            usable.push_back(std::move(a));
        }
        out = std::move(usable);
    }
    return out;
}

std::vector<AccountCreds> all_accounts()
{
    return read_credentials(std::nullopt, std::nullopt, true);
}

std::vector<AccountCreds> location_accounts(const std::string &location_id)
{
    auto accounts = read_credentials(location_id, std::nullopt);
    if (accounts.empty())
        throw Error(ERRCODE_UNDEFINED_OBJECT,
                    "no Instagram account is connected for location \"" + location_id + "\"",
                    "ig_identity has no account whose location_id is that value.",
                    "Connect one with ig_connect_account(location_id, ig_account_id, self_igsid, "
                    "access_token, api_host).");
    return accounts;
}

std::optional<AccountCreds> account_by_id(const std::string &ig_account_id, bool skip_unopenable)
{
    auto accounts = read_credentials(std::nullopt, ig_account_id, skip_unopenable);
    if (accounts.empty())
        return std::nullopt;
    return accounts.front();
}

void require_account_usable(const std::string &ig_account_id)
{
    AsExtensionOwner owner;
    auto rows = spi_query("SELECT status, paused_until OPERATOR(pg_catalog.>) pg_catalog.now(),"
                          "       pg_catalog.to_char(paused_until, 'YYYY-MM-DD HH24:MI:SS TZ')"
                          "  FROM ig_identity.accounts WHERE ig_account_id OPERATOR(pg_catalog.=) $1",
                          /* not read-only: it must see this transaction's
                           * own account update (a read-only SPI call keeps
                           * the old snapshot) */
                          {text_param(ig_account_id)}, false);
    if (rows.empty())
        throw Error(ERRCODE_UNDEFINED_OBJECT,
                    "Instagram account \"" + ig_account_id + "\" is not connected", "",
                    "Connect it with ig_connect_account(location_id, ig_account_id, self_igsid, "
                    "access_token, api_host).");
    const std::string status = rows[0][0].value_or("");
    if (status == "reauth_required")
        throw Error(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
                    "Instagram account \"" + ig_account_id + "\" needs to be reconnected",
                    "The Graph API rejected its access token (expired, revoked or invalid).",
                    "Call ig_connect_account with a new access token.");
    if (status == "permission_error")
        throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
                    "Instagram account \"" + ig_account_id + "\" lacks a permission the Graph API requires",
                    "The Graph API answered with a permission or configuration error.",
                    "Grant the app instagram_manage_messages (or instagram_business_manage_messages) "
                    "and reconnect the account with ig_connect_account.");
    if (rows[0][1].value_or("f") == "t")
        throw Error(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
                    "Instagram account \"" + ig_account_id + "\" is paused by rate limiting",
                    "The Graph API throttled it; calls resume at " + rows[0][2].value_or("?") + ".",
                    "Wait until then; the background worker resumes on its own.");
}

void apply_account_events(const std::vector<AccountEvent> &events)
{
    AsExtensionOwner owner;
    /* an app-wide throttle first (the latest pause any account heard): it
     * locks every account row in id order */
    const AccountEvent *app_wide = nullptr;
    for (const auto &e : events)
        if (e.status == "paused" && e.error_code == 4 && e.paused_until &&
            (!app_wide || *e.paused_until > *app_wide->paused_until))
            app_wide = &e;
    if (app_wide)
        spi_exec("SELECT ig_identity.pause_app_wide(pg_catalog.to_timestamp($1::pg_catalog.float8), $2)",
                 {text_param(std::to_string(*app_wide->paused_until)), text_param(app_wide->ig_account_id)});
    for (const auto &e : events) {
        std::optional<double> paused = e.paused_until;
        spi_exec("SELECT ig_identity.record_account_event($1, $2, pg_catalog.to_timestamp($3::pg_catalog.float8), $4, $5,"
                 " $6::pg_catalog.jsonb, $7, $8)",
                 {text_param(e.ig_account_id), text_param(e.status),
                  text_param(paused ? Text(std::to_string(*paused)) : std::nullopt),
                  int4_param(e.error_code),
                  text_param(e.error_message.empty() ? Text() : Text(e.error_message)),
                  text_param(e.usage_json.empty() ? Text() : Text(e.usage_json)),
                  bool_param(e.had_success), timestamptz_us_param(e.token_rotated_at)});
    }
}

} // namespace igid::pg
