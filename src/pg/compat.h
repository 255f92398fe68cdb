/*
 * compat.h — which PostgreSQL major versions this library builds against,
 * and the calls that differ between them.
 *
 * Tested: 15 (the test command runs on it). Expected to build: 14 to 17;
 * each difference below was checked against that version's headers and
 * release notes, but no test has run there. Anything else stops the build
 * here, with a message, instead of failing later in an unrelated header.
 *
 * The other version-dependent calls sit where they are used, each behind
 * a PG_VERSION_NUM guard: MarkGUCPrefixReserved (15+, settings.cpp) and
 * shmem_request_hook (15+, shmem.cpp).
 */
#pragma once

#include "postgres.h"

#if PG_VERSION_NUM < 140000
/* utils/backend_status.h and utils/wait_event.h first appear in 14 */
#error "ig_identity needs PostgreSQL 14 or later (it is tested on 15)"
#elif PG_VERSION_NUM >= 180000
#error "ig_identity has not been checked against PostgreSQL 18 or later: it builds on 14 to 17 and is tested on 15"
#endif

extern "C" {
#include "storage/proc.h"
}

namespace igid::pg {

/* This backend's number in the PGPROC array, by which others find its latch
 * (GetPGProcByNumber). PGPROC.pgprocno is gone in 17; MyProcNumber
 * replaces it there. */
inline int my_proc_number()
{
#if PG_VERSION_NUM >= 170000
    return MyProcNumber;
#else
    return MyProc->pgprocno;
#endif
}

} // namespace igid::pg
