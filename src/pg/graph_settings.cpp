/*
 * graph_settings.cpp — defines ig_identity.verify_on_connect,
 * ig_identity.sync_failure, ig_identity.graph_api_version and
 * ig_identity.token_refresh_age (see graph_settings.h).
 */
#include "pg/graph_settings.h"

#include "core/graph_client.h"
#include "pg/settings.h"

#include <string>

extern "C" {
#include "postgres.h"
#include "utils/guc.h"
}

namespace igid::pg {

GraphSettings graph_settings = {true, (int) SyncFailureLevel::error, nullptr, 7 * 86400};

/*
 * A version Meta could serve: "vNN.N", not older than the oldest one still
 * alive.  The check runs on every assignment (the configuration file's too),
 * and nothing in it can throw or raise: a C++ exception or an ereport here
 * would cross a PostgreSQL frame.
 */
static bool check_graph_api_version(char **newval, void **extra, GucSource source)
{
    const char *v = *newval;
    if (v == nullptr)
        return false;
    const std::string_view version(v);
    if (!igid::is_valid_graph_version(version)) {
        GUC_check_errdetail("A Graph API version is written v, the major number, a dot and the minor "
                            "number, as in %s.", igid::kDefaultGraphVersion.data());
        GUC_check_errhint("Meta lists the versions it serves in its Graph API changelog.");
        return false;
    }
    if (igid::compare_graph_versions(version, igid::kOldestGraphVersion) < 0) {
        GUC_check_errdetail("Meta no longer serves Graph API versions older than %s.",
                            igid::kOldestGraphVersion.data());
        GUC_check_errhint("Use %s (the newest this release knows) or another version Meta still serves.",
                          igid::kDefaultGraphVersion.data());
        return false;
    }
    return true;
}

static const struct config_enum_entry sync_failure_options[] = {
    {"error", (int) SyncFailureLevel::error, false},
    {"warning", (int) SyncFailureLevel::warning, false},
    {nullptr, 0, false},
};

igid::GraphAccount graph_account(const std::string &ig_account_id, const std::string &token,
                                 const std::string &api_host, const std::string &app_secret)
{
    const igid::ApiHost host = igid::api_host_from_name(api_host).value_or(igid::ApiHost::facebook);
    const std::string override_url = settings.graph_api_url ? settings.graph_api_url : "";
    const std::string version = graph_settings.graph_api_version ? graph_settings.graph_api_version : "";
    igid::GraphAccount g{ig_account_id, token, host, igid::graph_base_url(override_url, host, version), app_secret};
    return g;
}

/* Both are the caller's own choice about the caller's own call: any role
 * may set them (neither decides where a token goes). */
void define_graph_settings()
{
    DefineCustomBoolVariable("ig_identity.verify_on_connect",
                             "ig_connect_account checks the token and ids with one /me call.",
                             "Off connects without asking the Graph API (offline setups, tests).",
                             &graph_settings.verify_on_connect, true, PGC_USERSET, 0, nullptr,
                             nullptr, nullptr);
    DefineCustomEnumVariable("ig_identity.sync_failure",
                             "What ig_sync_inbox does when an account's sync failed.",
                             "error raises it (nothing of the call is kept); warning records "
                             "it in ig_identity_status and the run history and returns.",
                             &graph_settings.sync_failure_level, (int) SyncFailureLevel::error,
                             sync_failure_options, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    /* The version is only a path segment: the host a token goes to comes
     * from graph_api_url or the account's api_host, never from here. */
    DefineCustomStringVariable("ig_identity.graph_api_version",
                               "Graph API version in the path of every call, e.g. v26.0.",
                               "Meta serves a version for about two years; move to a newer one "
                               "before the configured one goes away.",
                               &graph_settings.graph_api_version, igid::kDefaultGraphVersion.data(),
                               PGC_SUSET, 0, check_graph_api_version, nullptr, nullptr);
    /* Meta refreshes a long-lived token only once it is 24 hours old, and
     * the token lasts 60 days: the age must leave room for retries. */
    DefineCustomIntVariable("ig_identity.token_refresh_age",
                            "Age after which the worker refreshes an Instagram Login token.",
                            "Instagram Login long-lived tokens last 60 days and can be refreshed "
                            "once they are 24 hours old.",
                            &graph_settings.token_refresh_age_s, 7 * 86400, 86400, 50 * 86400,
                            PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
}

} // namespace igid::pg
