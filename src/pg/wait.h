/*
 * wait.h — what pg_stat_activity shows while ig_identity waits on the
 * network: wait event type "Extension" (as the worker does), never "no wait".
 */
#pragma once

#include "pg/boundary.h"

extern "C" {
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/wait_event.h"
}

namespace igid::pg {

/* While alive, the backend reports wait event type Extension; ended on every
 * way out, a C++ exception included (neither call can raise an error). */
class NetworkWait {
public:
    NetworkWait() { pgstat_report_wait_start(PG_WAIT_EXTENSION); }
    ~NetworkWait() { pgstat_report_wait_end(); }
    NetworkWait(const NetworkWait &) = delete;
    NetworkWait &operator=(const NetworkWait &) = delete;
};

/* A fetch_profiles progress callback for backends: interrupts answered with
 * no wait event shown, then Extension until the next call (the caller holds
 * a NetworkWait around the fetch, so it ends with the fetch). */
inline void network_progress()
{
    pgstat_report_wait_end();
    pg_call([] { CHECK_FOR_INTERRUPTS(); });
    pgstat_report_wait_start(PG_WAIT_EXTENSION);
}

} // namespace igid::pg
