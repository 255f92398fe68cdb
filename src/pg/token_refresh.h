/*
 * token_refresh.h — the worker's refresh of Instagram Login long-lived
 * tokens (GET /refresh_access_token): which accounts are due, the calls
 * (no transaction open), and storing the new token and its expiry.
 *
 * The refresh request is the one request with a token in its URL (Meta
 * documents it so): nothing here logs a URL, and an error text never holds
 * the old or the new token.
 */
#pragma once

#include "pg/refresh.h"

#include <optional>
#include <string>
#include <vector>

namespace igid::pg {

struct TokenRefresh {
    AccountCreds account;          /* what was refreshed (old token, rotation time) */
    bool ok = false;
    std::string new_token;         /* when ok */
    long long expires_in = 0;      /* seconds, when ok */
    std::optional<int> error_code; /* Graph error code, when the answer was one */
    std::string error_message;     /* redacted: never a token or a URL */
};

/* Instagram Login accounts whose token is older than age_s, at most limit,
 * with their credentials; none on a database whose extension version has
 * no token refresh (needs a transaction and SPI). */
std::vector<AccountCreds> tokens_due_for_refresh(int age_s, int limit);

/* One refresh call per account, concurrently; on_progress runs between
 * network waits (throw to stop).  Needs no transaction. */
std::vector<TokenRefresh> refresh_tokens(const std::vector<AccountCreds> &accounts, const Progress &on_progress);

/* Stores each new token with its expiry, or records the failure on the
 * account; returns how many tokens were stored (needs a transaction and SPI). */
int store_token_refreshes(const std::vector<TokenRefresh> &results);

} // namespace igid::pg
