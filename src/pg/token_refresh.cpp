/*
 * token_refresh.cpp — refreshing Instagram Login tokens (see token_refresh.h).
 */
#include "pg/token_refresh.h"

#include "core/graph_client.h"
#include "core/http.h"
#include "core/redact.h"
#include "core/secret_box.h"
#include "pg/graph_settings.h"
#include "pg/privilege.h"
#include "pg/secrets.h"
#include "pg/settings.h"

#include <algorithm>
#include <map>

namespace igid::pg {

std::vector<AccountCreds> tokens_due_for_refresh(int age_s, int limit)
{
    std::vector<std::string> ids;
    {
        AsExtensionOwner owner;
        auto has = spi_query("SELECT pg_catalog.to_regprocedure("
                             "'ig_identity._tokens_due_for_refresh(interval,integer)') IS NOT NULL",
                             {}, true);
        if (has.empty() || has[0][0].value_or("f") != "t")
            return {};
        auto rows = spi_query("SELECT id FROM ig_identity._tokens_due_for_refresh("
                              "pg_catalog.make_interval(secs => $1::pg_catalog.float8), $2) AS id",
                              {text_param(std::to_string(age_s)), int4_param(limit)}, true);
        for (auto &r : rows)
            if (r[0])
                ids.push_back(*r[0]);
    }
    /* an account whose token (or app secret) does not open here is left
     * out with one WARNING, as the fetcher leaves it out: it must not stop
     * the refresh of every other account */
    std::vector<AccountCreds> out;
    std::vector<std::string> skipped;
    for (const auto &id : ids) {
        if (auto a = account_by_id(id, /* skip_unopenable */ true))
            out.push_back(std::move(*a));
        else
            skipped.push_back(id);
    }
    /* ... and it waits an hour like a failed refresh, so that accounts that
     * cannot be opened (a restore without the key) do not fill every batch
     * of `limit` ahead of those that can; in account id order, the accounts
     * row locked first, the lock order of every other path */
    std::sort(skipped.begin(), skipped.end());
    AsExtensionOwner owner;
    for (const auto &id : skipped) {
        spi_exec("SELECT 1 FROM ig_identity.accounts WHERE ig_account_id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
                 {text_param(id)});
        spi_exec("UPDATE ig_identity.account_tokens SET refresh_failed_at = pg_catalog.now()"
                 " WHERE ig_account_id OPERATOR(pg_catalog.=) $1",
                 {text_param(id)});
    }
    return out;
}

std::vector<TokenRefresh> refresh_tokens(const std::vector<AccountCreds> &accounts, const Progress &on_progress)
{
    HttpOptions opts;
    opts.max_concurrency = settings.max_concurrency;
    opts.per_account_concurrency = 1;
    opts.total_timeout_ms = settings.http_timeout_ms;
    opts.connect_timeout_ms = std::min(5000, settings.http_timeout_ms);
    opts.ca_file = settings.ca_file ? settings.ca_file : "";
    HttpDriver http(opts);

    std::vector<TokenRefresh> results(accounts.size());
    std::size_t pending = 0;
    for (std::size_t i = 0; i < accounts.size(); ++i) {
        results[i].account = accounts[i];
        GraphAccount g = graph_account(accounts[i].ig_account_id, accounts[i].token, accounts[i].api_host,
                                       accounts[i].app_secret);
        auto request = token_refresh_request(g);
        if (!request) {
            results[i].error_message = "only Instagram Login tokens are refreshed";
            continue;
        }
        request->id = i;
        http.submit(std::move(*request));
        ++pending;
    }
    while (pending > 0) {
        on_progress();
        for (auto &r : http.step(100)) {
            --pending;
            TokenRefresh &out = results[r.id];
            const std::string &old_token = out.account.token;
            if (r.error != TransportError::none) {
                out.error_message = "the call failed: " + redact(r.error_text, {old_token});
                continue;
            }
            TokenRefreshParse p = parse_token_refresh(r.body);
            if (p.status == ParseStatus::ok) {
                out.ok = true;
                out.new_token = std::move(p.access_token);
                out.expires_in = p.expires_in;
            } else if (p.status == ParseStatus::graph_error && p.error) {
                out.error_code = (int) p.error->code;
                out.error_message = "error " + std::to_string(p.error->code) + ": " +
                                    redact(p.error->message, {old_token});
            } else {
                out.error_message = "HTTP status " + std::to_string(r.status) +
                                    " with a body that is not a refreshed token";
            }
        }
    }
    return results;
}

int store_token_refreshes(const std::vector<TokenRefresh> &results)
{
    AsExtensionOwner owner;
    int stored = 0;
    /* in account id order, the lock order of every other path */
    std::vector<const TokenRefresh *> sorted;
    for (const auto &r : results)
        sorted.push_back(&r);
    std::sort(sorted.begin(), sorted.end(), [](const TokenRefresh *a, const TokenRefresh *b) {
        return a->account.ig_account_id < b->account.ig_account_id;
    });
    for (const TokenRefresh *r : sorted) {
        if (r->ok) {
            /* sealed here: a plain token among the arguments would be in the
             * plan that auto_explain logs (parameters become constants) */
            const auto sealed = seal_for_storage(r->new_token, "access_token:" + r->account.ig_account_id);
            auto rows = spi_query("SELECT ig_identity._store_refreshed_token($1, $2,"
                                  " pg_catalog.decode($3, 'hex'), $4::pg_catalog.int8)",
                                  {text_param(r->account.ig_account_id),
                                   timestamptz_us_param(r->account.token_rotated_at),
                                   text_param(to_hex(sealed.data(), sealed.size())),
                                   text_param(std::to_string(r->expires_in))},
                                  false);
            if (!rows.empty() && rows[0][0].value_or("f") == "t")
                ++stored;
        } else {
            spi_exec("SELECT ig_identity._record_token_refresh_failure($1, $2, $3, $4)",
                     {text_param(r->account.ig_account_id), timestamptz_us_param(r->account.token_rotated_at),
                      int4_param(r->error_code), text_param(r->error_message)});
        }
    }
    return stored;
}

} // namespace igid::pg
