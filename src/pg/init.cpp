/*
 * init.cpp — the module's entry point: _PG_init only asks each subsystem to
 * set itself up.
 */
#include "core/curl_handles.h"
#include "pg/boundary.h"
#include "pg/compat.h"
#include "pg/graph_settings.h"
#include "pg/secrets.h"
#include "pg/settings.h"
#include "pg/test_hook.h"
#include "pg/worker.h"

extern "C" {
#include "miscadmin.h"

PG_MODULE_MAGIC;

void _PG_init(void);
}

void _PG_init(void)
{
    /* A blocking name lookup would hang a backend or the worker past
     * ig_identity.http_timeout and past SIGTERM: refuse such a libcurl. */
    if (const char *why = igid::curl_unusable_reason(igid::curl_runtime_features()))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("ig_identity cannot use this libcurl: %s", why),
                        errdetail("The loaded libcurl is version %s.", curl_version()),
                        errhint("Install a libcurl built with the threaded resolver or c-ares "
                                "(Debian's libcurl4 is one).")));
    /* before define_settings(), which reserves the ig_identity prefix */
    igid::pg::define_graph_settings();
    igid::pg::define_test_hook();
    igid::pg::define_secret_settings();
    igid::pg::define_settings();
    igid::pg::init_worker();
}
