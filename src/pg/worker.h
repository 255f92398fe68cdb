/*
 * worker.h — the ig_identity background worker.
 *
 * Registered from _PG_init when the library is preloaded; it connects to
 * ig_identity.database and keeps identities fresh (see docs/architecture.md, "The
 * background worker").  Its main is ig_identity_worker_main, extern "C" so
 * the postmaster can find it by name.
 */
#pragma once

extern "C" {
#include "postgres.h"
}

namespace igid::pg {

/* Registers the worker and its shared memory; a no-op unless called while
 * shared_preload_libraries is being processed. */
void init_worker();

} // namespace igid::pg

extern "C" {
PGDLLEXPORT void ig_identity_worker_main(Datum main_arg);
}
