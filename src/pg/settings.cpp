/*
 * settings.cpp — defines the ig_identity.* GUCs with defaults suited to
 * production use against Meta's Graph API.
 */
#include "pg/boundary.h"
#include "pg/settings.h"

extern "C" {
#include "miscadmin.h"
#include "utils/guc.h"
}

#include <cstring>

namespace igid::pg {

Settings settings = {};

/*
 * ig_identity.graph_api_url decides where access tokens are sent, so it is
 * superuser-only and must be an https URL, or http to a loopback address
 * (tests, local proxies).
 */
static bool check_graph_api_url(char **newval, void **extra, GucSource source)
{
    const char *v = *newval;
    if (v == nullptr || v[0] == '\0')
        return true;
    if (strncmp(v, "https://", 8) == 0)
        return strlen(v) > 8;
    if (strncmp(v, "http://", 7) == 0) {
        const char *host = v + 7;
        static const char *const loopback[] = {"127.", "localhost:", "localhost/", "[::1]"};
        for (const char *prefix : loopback)
            if (strncmp(host, prefix, strlen(prefix)) == 0)
                return true;
        if (strcmp(host, "localhost") == 0)
            return true;
        GUC_check_errdetail("Plain http is allowed only to a loopback address.");
        return false;
    }
    GUC_check_errdetail("The URL must start with https:// (or http:// to a loopback address).");
    return false;
}

/*
 * ig_identity.ca_file decides whom the client trusts with tokens, so it is
 * superuser-only too.  An absolute path, or empty for the system store; a
 * relative one would depend on each process's working directory.
 */
static bool check_ca_file(char **newval, void **extra, GucSource source)
{
    const char *v = *newval;
    if (v == nullptr || v[0] == '\0' || v[0] == '/')
        return true;
    GUC_check_errdetail("The CA bundle must be given as an absolute path (or empty for the system store).");
    return false;
}

/*
 * Loaded on demand (not preloaded), the library finds ig_identity.graph_api_url
 * as a placeholder.  When the placeholder's value came from a role that may
 * not set the parameter (a non-superuser's PGOPTIONS='-c
 * ig_identity.graph_api_url=...'), PostgreSQL refuses it at definition with a
 * WARNING but falls back to the built-in default, empty, that is Meta's own
 * hosts, and not to the configured value that the refused one had displaced:
 * tokens would go where the configuration does not send them.  So re-read the
 * configuration files (as a reload would) and set this one parameter from
 * them; a value from a higher-priority source that was accepted stays.
 * ig_identity.ca_file gets the same treatment: falling back to the system
 * store would drop a private CA or an intercepting proxy's the
 * configuration names.
 */
static void reapply_configured(const char *name)
{
    ConfigVariable *head = nullptr;
    ConfigVariable *tail = nullptr;
    const char *configured = nullptr;
    if (ParseConfigFile(ConfigFileName, true, nullptr, 0, 0, WARNING, &head, &tail)) {
        if (DataDir != nullptr)
            ParseConfigFile(PG_AUTOCONF_FILENAME, false, nullptr, 0, 0, WARNING, &head, &tail);
        for (ConfigVariable *v = head; v != nullptr; v = v->next)
            if (!v->ignore && strcmp(v->name, name) == 0)
                configured = v->value; /* the last one wins, as in a reload */
    }
    if (configured != nullptr)
        SetConfigOption(name, configured, PGC_SIGHUP, PGC_S_FILE);
    FreeConfigVariables(head);
}

void define_settings()
{
    DefineCustomBoolVariable("ig_identity.enabled",
                             "Whether the background worker refreshes identities.", nullptr,
                             &settings.enabled, true, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);

    DefineCustomStringVariable("ig_identity.database",
                               "Database the ig_identity background worker connects to.", nullptr,
                               &settings.database, "postgres",
                               /* PGC_POSTMASTER can only be defined at server start */
                               process_shared_preload_libraries_in_progress ? PGC_POSTMASTER
                                                                            : PGC_SIGHUP,
                               0, nullptr,
                               nullptr, nullptr);

    /* A placeholder exists when something set the parameter before the library loaded. */
    const bool url_placeholder = GetConfigOption("ig_identity.graph_api_url", true, false) != nullptr;
    const bool ca_placeholder = GetConfigOption("ig_identity.ca_file", true, false) != nullptr;
    DefineCustomStringVariable(
        "ig_identity.graph_api_url",
        "Base URL for every Graph API call (empty: each account's own host).",
        "Empty means https://<api_host>/v21.0 per account. Access tokens are sent here.",
        &settings.graph_api_url, "", PGC_SUSET, 0, check_graph_api_url, nullptr, nullptr);
    if (url_placeholder && !process_shared_preload_libraries_in_progress)
        reapply_configured("ig_identity.graph_api_url");

    DefineCustomIntVariable("ig_identity.refresh_interval",
                            "How often the worker looks for stale identities.", nullptr,
                            &settings.refresh_interval_s, 300, 1, 86400 * 7, PGC_SIGHUP,
                            GUC_UNIT_S, nullptr, nullptr, nullptr);

    DefineCustomIntVariable("ig_identity.stale_after",
                            "Age after which a cached identity is fetched again.",
                            "Profile picture URLs expire within days.",
                            &settings.stale_after_s, 86400, 60, 86400 * 365, PGC_SIGHUP,
                            GUC_UNIT_S, nullptr, nullptr, nullptr);

    DefineCustomIntVariable("ig_identity.max_concurrency",
                            "Graph API transfers in flight at once.", nullptr,
                            &settings.max_concurrency, 8, 1, 256, PGC_SUSET, 0, nullptr,
                            nullptr, nullptr);

    DefineCustomRealVariable("ig_identity.requests_per_second",
                             "Graph API requests per second per account (0: no limit).", nullptr,
                             &settings.requests_per_second, 2.0, 0.0, 10000.0, PGC_SUSET, 0,
                             nullptr, nullptr, nullptr);

    DefineCustomIntVariable("ig_identity.http_timeout",
                            "Total time allowed for one Graph API request.", nullptr,
                            &settings.http_timeout_ms, 10000, 100, 300000, PGC_SUSET,
                            GUC_UNIT_MS, nullptr, nullptr, nullptr);

    DefineCustomStringVariable(
        "ig_identity.ca_file",
        "CA bundle (PEM) that Graph API servers' certificates are checked against.",
        "Empty means the system's CA store. Set it for a private CA or a TLS-intercepting "
        "proxy; certificate and host name checks stay on either way.",
        &settings.ca_file, "", PGC_SUSET, 0, check_ca_file, nullptr, nullptr);
    /* the same fallback as graph_api_url's: a refused placeholder must not
     * drop the configured bundle for the system store */
    if (ca_placeholder && !process_shared_preload_libraries_in_progress)
        reapply_configured("ig_identity.ca_file");

    /* Read by the install script only (ig_identity.detach_from_extension). */
    static char *inbox_owner = nullptr;
    DefineCustomStringVariable("ig_identity.inbox_owner",
                               "Role that owns the inbox tables CREATE EXTENSION creates.",
                               "Empty: the database's owner.", &inbox_owner, "", PGC_SUSET, 0,
                               nullptr, nullptr, nullptr);

#if PG_VERSION_NUM >= 150000
    MarkGUCPrefixReserved("ig_identity");
#else
    EmitWarningsOnPlaceholders("ig_identity");
#endif
}

} // namespace igid::pg
