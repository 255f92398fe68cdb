/*
 * settings.h — the ig_identity.* configuration parameters (GUCs).
 */
#pragma once

namespace igid::pg {

struct Settings {
    bool enabled;
    char *database;           /* database the worker connects to */
    char *graph_api_url;      /* "" = each account's own https host */
    int refresh_interval_s;   /* worker wake-up when nothing else wakes it */
    int stale_after_s;        /* identities older than this are refetched */
    int max_concurrency;      /* transfers at once */
    double requests_per_second; /* per account; 0 = no limit */
    int http_timeout_ms;      /* total time for one request */
    char *ca_file;            /* CA bundle for https; "" = the system store */
};

extern Settings settings;

/* Defines every GUC; called once from _PG_init. */
void define_settings();

} // namespace igid::pg
