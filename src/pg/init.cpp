/*
 * init.cpp — the module's entry point: _PG_init only asks each subsystem to
 * set itself up.
 */
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
    /* before define_settings(), which reserves the ig_identity prefix */
    igid::pg::define_graph_settings();
    igid::pg::define_test_hook();
    igid::pg::define_secret_settings();
    igid::pg::define_settings();
    igid::pg::init_worker();
}
