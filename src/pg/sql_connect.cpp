/*
 * sql_connect.cpp — ig_identity.check_account_token(api_host, access_token,
 * ig_account_id[, app_secret]): the one /me call ig_connect_account makes before it
 * stores anything, so that a wrong id, a token of the other login flavour
 * or a dead token shows at connect time, not at the first sync.  Returns
 * the Page id for Facebook Login (what the account needs stored), NULL for
 * Instagram Login or when ig_identity.verify_on_connect is off.
 */
#include "core/account_check.h"
#include "core/http.h"
#include "core/secret_box.h"
#include "pg/boundary.h"
#include "pg/graph_settings.h"
#include "pg/result.h"
#include "pg/secrets.h"
#include "pg/settings.h"
#include "pg/wait.h"

extern "C" {
#include "miscadmin.h"
#include "utils/errcodes.h"
}

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

using namespace igid;
using namespace igid::pg;

namespace {

/* Sends one request and waits for its answer, answering interrupts. */
HttpResponse run_one(HttpRequest request)
{
    HttpOptions opts;
    opts.max_concurrency = 1;
    opts.per_account_concurrency = 1;
    opts.total_timeout_ms = settings.http_timeout_ms;
    opts.connect_timeout_ms = std::min(5000, settings.http_timeout_ms);
    opts.ca_file = settings.ca_file ? settings.ca_file : "";
    HttpDriver http(opts);
    http.submit(std::move(request));
    for (;;) {
        pg_call([] { CHECK_FOR_INTERRUPTS(); });
        std::vector<HttpResponse> done;
        {
            NetworkWait wait;
            done = http.step(100);
        }
        if (!done.empty())
            return std::move(done.front());
    }
}

const char *kFlavourHint =
    "A Page access token (Instagram API with Facebook Login) goes with api_host graph.facebook.com; "
    "an Instagram user token (Instagram API with Instagram Login) goes with graph.instagram.com. "
    "The Graph API refuses a token sent to the other host as if it had expired.";

/* The error for a /me answer that is a Graph error envelope. */
[[noreturn]] void refuse(const GraphError &e)
{
    std::string detail = "The Graph API answered /me with error " + std::to_string(e.code) +
                         (e.subcode ? " (subcode " + std::to_string(*e.subcode) + ")" : "") + ": " +
                         e.message + (e.message.empty() || e.message.back() != '.' ? "." : "");
    if (e.code == 190 || e.code == 102)
        throw Error(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION, "the Graph API refused the access token",
                    detail, kFlavourHint);
    if (e.code == 100 && e.message.find("appsecret_proof") != std::string::npos)
        throw Error(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
                    "the Meta app requires an app secret proof", detail,
                    "Pass the app's secret as app_secret to the six-argument ig_connect_account, "
                    "or check that the one given is the secret of the app that issued the token.");
    if (e.code == 10 || (e.code >= 200 && e.code <= 299))
        throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "the access token lacks a permission the Graph API requires",
                    detail,
                    "Grant the app instagram_manage_messages (Facebook Login) or "
                    "instagram_business_manage_messages (Instagram Login) and connect again.");
    if (e.code == 100)
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "the Graph API refused the /me check", detail,
                    kFlavourHint);
    throw Error(ERRCODE_CONNECTION_FAILURE, "the Graph API could not check the access token", detail,
                "Try again; or SET ig_identity.verify_on_connect = off to connect without the check.");
}

} // namespace

/*
 * ig_identity.check_account_token(api_host text, access_token text,
 *                                 ig_account_id text [, sealed_app_secret bytea])
 *   RETURNS text
 */
IGID_FUNCTION(ig_check_account_token)
{
    const std::string host_name = text_arg(fcinfo, 0, "api_host");
    const std::string token = text_arg(fcinfo, 1, "access_token");
    const std::string ig_account_id = text_arg(fcinfo, 2, "ig_account_id");
    /* the four-argument form passes the app secret as stored, sealed
     * (NULL: none); it is opened here, bound to this account's row */
    std::string app_secret;
    if (PG_NARGS() > 3 && !PG_ARGISNULL(3)) {
        std::vector<std::uint8_t> sealed;
        /* sized outside pg_call (resize can throw), filled inside */
        const size_t n = pg_call([&] { return (size_t) VARSIZE_ANY_EXHDR(PG_GETARG_BYTEA_PP(3)); });
        sealed.resize(n);
        std::uint8_t *dst = sealed.data();
        pg_call([&] { memcpy(dst, VARDATA_ANY(PG_GETARG_BYTEA_PP(3)), n); });
        app_secret = open_stored_secret(secret_column("app_secret"), ig_account_id,
                                        to_hex(sealed.data(), sealed.size()));
    }
    if (!graph_settings.verify_on_connect)
        PG_RETURN_NULL();
    auto host = api_host_from_name(host_name);
    if (!host)
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "unsupported api_host", "",
                    "Use graph.facebook.com or graph.instagram.com.");
    GraphAccount g = graph_account(ig_account_id, token, host_name, app_secret);
    HttpResponse r = run_one(me_request(g));
    if (r.error != TransportError::none)
        throw Error(ERRCODE_CONNECTION_FAILURE, "could not reach the Graph API to check the access token",
                    "The /me call to " + std::string(api_host_name(*host)) + " failed: " + r.error_text + ".",
                    "Check that this server can reach the Graph API (and ig_identity.graph_api_url), or "
                    "SET ig_identity.verify_on_connect = off to connect without the check.");
    MeParse me = parse_me(*host, r.body);
    if (me.status == ParseStatus::graph_error)
        refuse(*me.error);
    if (me.status != ParseStatus::ok)
        throw Error(ERRCODE_CONNECTION_FAILURE, "the Graph API's answer to /me was not understood",
                    "HTTP status " + std::to_string(r.status) + " with a body that is not the " +
                        (*host == ApiHost::facebook ? "Page" : "Instagram user") + " /me shape.",
                    std::string(kFlavourHint));

    const std::string &found = me.me.ig_account_id;
    switch (check_me(*host, me.me, ig_account_id)) {
    case AccountMismatch::none:
        break;
    case AccountMismatch::no_linked_account:
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "the access token's Page has no Instagram account linked",
                    "The token is a Page access token for Page " + me.me.page_id +
                        ", and that Page has no Instagram professional account linked to it.",
                    "Link the Instagram professional account to the Page in Meta Business Suite, or "
                    "use the token of the Page it is linked to.");
    case AccountMismatch::page_id_given:
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "ig_account_id is the Page id, not the Instagram account id",
                    "The token is a Page access token for Page " + me.me.page_id +
                        (found.empty() ? std::string(".")
                                       : ", whose Instagram professional account is " + found + "."),
                    "Pass the Instagram professional account id as ig_account_id (and as self_igsid); "
                    "ig_identity finds the Page from the token.");
    case AccountMismatch::app_scoped_id_given:
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                    "ig_account_id is the app-scoped id, not the Instagram account id",
                    "With Instagram Login, /me answers an app-scoped id as id; the professional account "
                    "id is user_id, " + found + ".",
                    "Pass the user_id of /me?fields=user_id,username as ig_account_id.");
    case AccountMismatch::other_account:
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
                    "the access token does not belong to the Instagram account given",
                    *host == ApiHost::facebook
                        ? "The token is a Page access token for Page " + me.me.page_id +
                              ", which is linked to Instagram account " + found + "."
                        : "The token belongs to Instagram account " + found + " (user_id of /me).",
                    "Pass the id of the account the token belongs to, or that account's token.");
    }
    if (*host != ApiHost::facebook)
        PG_RETURN_NULL();
    const std::string page_id = me.me.page_id;
    /* a text datum built by hand: utils/builtins.h clashes with jansson */
    text *out = pg_call([&] { return (text *) palloc(VARHDRSZ + page_id.size()); });
    SET_VARSIZE(out, VARHDRSZ + page_id.size());
    memcpy(VARDATA(out), page_id.data(), page_id.size());
    return PointerGetDatum(out);
}
