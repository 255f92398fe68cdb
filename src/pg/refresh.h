/*
 * refresh.h — fetch profiles from the Graph API and apply the outcomes.
 *
 * One engine for both callers: the SQL functions (in the caller's
 * transaction) and the background worker (fetching with no transaction open,
 * applying in a short one).  Fetching needs no transaction and no SPI;
 * applying needs both.
 */
#pragma once

#include "pg/spi.h"

#include "core/clock.h"

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace igid::pg {

/* A connected account as the fetcher needs it. */
struct AccountCreds {
    std::string ig_account_id, self_igsid, api_host, token;
    Text token_rotated_at; /* when this token was set (microseconds since the
                            * Unix epoch, exact): a stop learned with it is
                            * void once the token has been rotated since */
    int consecutive_throttles = 0; /* the pause ladder's step so far */
    std::string app_secret;        /* "" = no appsecret_proof (read_credentials) */
    std::optional<TimePoint> earliest_start; /* no call before (the pace of an
                                              * earlier fetch carried over) */
};

/* One identity to fetch. */
struct Target {
    std::string ig_account_id, ig_user_id;
};

/* What happened to one target, in the terms the tables use. */
struct FetchOutcome {
    enum class Kind {
        ok,               /* profile fetched */
        consent_required, /* 230: retry only after a new inbound message */
        unavailable,      /* blocked, deleted or unknown person */
        retry_later,      /* transient failure, attempts exhausted for now */
        permanent,        /* bad request: retrying will not help */
        not_attempted,    /* the account was stopped or paused first */
    };
    std::string ig_account_id, ig_user_id;
    Kind kind = Kind::not_attempted;
    Text username, name, profile_pic; /* only for ok */
    std::optional<int> error_code;
    std::string error_message;        /* redacted, never holds a token */
    std::optional<double> next_try_at; /* epoch seconds */
};

/* What happened to an account during a fetch. */
struct AccountEvent {
    std::string ig_account_id;
    std::string status; /* active, reauth_required, permission_error, paused */
    std::optional<double> paused_until;
    std::optional<int> error_code;
    std::string error_message;
    std::string usage_json; /* last usage headers seen, as JSON; "" if none */
    bool had_success = false;
    Text token_rotated_at;  /* of the token the fetch used */
};

struct FetchResult {
    std::vector<FetchOutcome> outcomes;
    std::vector<AccountEvent> accounts;
};

/*
 * The figures of one run (an ig_refresh_identities call or a worker cycle):
 * how many identities were refreshed or failed, and an errors array of
 * {ig_account_id, ig_user_id, code, message}, at most max_errors long.
 */
class RunSummary {
public:
    explicit RunSummary(size_t max_errors = (size_t) -1, bool not_attempted_fails = true);
    ~RunSummary();
    RunSummary(const RunSummary &) = delete;
    RunSummary &operator=(const RunSummary &) = delete;

    void count(const std::vector<FetchOutcome> &batch);
    void add_failure(const std::string &ig_account_id, const std::string &ig_user_id,
                     std::optional<int> code, const std::string &message);
    std::string errors_json() const;

    long long refreshed = 0, failed = 0;

private:
    size_t max_errors_;
    bool not_attempted_fails_;
    void *errors_; /* json_t array, kept opaque so this header needs no jansson */
};

/* Called between fetch steps (at most ~100 ms apart); throw to stop. */
using Progress = std::function<void()>;
/* Receives finished outcomes in batches, so callers never hold them all. */
using OutcomeSink = std::function<void(std::vector<FetchOutcome> &&)>;

/* The least time between the starts of two calls of one account:
 * 1 / ig_identity.requests_per_second and a small margin; 0 without a pace. */
double pace_interval_s();

/* Called between fetch steps with how many ids the fetch still holds
 * (pending, running or not yet handed to the fetcher); may append more
 * targets, and the accounts of those that the fetch does not know yet. */
using Refill = std::function<void(size_t held, std::vector<AccountCreds> &accounts, std::vector<Target> &targets)>;

/*
 * Fetches every target's profile concurrently within the settings' limits
 * (ig_identity.max_concurrency, requests_per_second, http_timeout,
 * graph_api_url).  Outcomes go to sink in batches of at most batch_size;
 * the per-account events are returned at the end.
 */
std::vector<AccountEvent> fetch_profiles(const std::vector<AccountCreds> &accounts,
                                         const std::vector<Target> &targets,
                                         const Progress &on_progress, const OutcomeSink &sink,
                                         size_t batch_size = 500, const Refill &refill = {});

/* Upserts a batch of outcomes (needs a transaction and SPI). */
void apply_outcomes(const std::vector<FetchOutcome> &outcomes);
/*
 * The worker's form: an account whose shard lives on a Citus worker node that
 * does not answer (ig_identity.account_shard_reachable, asked before any
 * write) has its queue rows put back to wait kRetryUnreachableS, with a
 * WARNING, and nothing else written; the other accounts are saved.  Returns
 * the accounts set aside.  Without Citus (one catalog query tells) it is
 * apply_outcomes.
 */
std::set<std::string> apply_outcomes_per_account(const std::vector<FetchOutcome> &outcomes);
/* Whether this database runs Citus with the 1.1 shard check (one catalog
 * query), and whether the node(s) of an account's shard answer now. */
bool citus_shard_checks();
bool account_shard_reachable(const std::string &ig_account_id);
constexpr double kRetryUnreachableS = 60.0;

/* Records what happened to each account (needs a transaction and SPI). */
void apply_account_events(const std::vector<AccountEvent> &events);

/* Connected accounts of a location, with their tokens (needs SPI). */
std::vector<AccountCreds> location_accounts(const std::string &location_id);

/* Every connected account, with its token (needs SPI): the worker's.  An
 * account whose token does not open is left out, with one WARNING. */
std::vector<AccountCreds> all_accounts();

/* One account by id, or nothing (needs SPI).  skip_unopenable (the
 * worker's): an account whose stored secret does not open is nothing, with
 * one WARNING, instead of an error. */
std::optional<AccountCreds> account_by_id(const std::string &ig_account_id, bool skip_unopenable = false);

/* The checks every Graph call from SQL makes on an account first. */
void require_account_usable(const std::string &ig_account_id);

} // namespace igid::pg
