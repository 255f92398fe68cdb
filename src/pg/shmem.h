/*
 * shmem.h — the background worker's state in shared memory.
 *
 * One small struct, created when ig_identity is in shared_preload_libraries:
 * who the worker is (pid, PGPROC number, database) so backends can set its
 * latch, and what it has done (cycle times and counters, the last error's
 * message) so SQL can show it.  A spinlock guards it; every access copies a
 * few words, so nothing can raise an error while the lock is held.
 *
 * Without preloading there is no struct: worker_shmem() returns nullptr and
 * every caller treats that as "no worker".
 */
#pragma once

#include "pg/boundary.h"

extern "C" {
#include "datatype/timestamp.h"
#include "storage/spin.h"
}

namespace igid::pg {

/* Room for the last error's message; longer messages are cut. */
constexpr int kLastErrorLen = 256;

/*
 * An account stop (190 → reauth_required, permission_error) that a backend
 * learned in a transaction about to fail: ig_resolve_profile must raise an
 * error, and its rollback would discard the account's new status. The
 * backend leaves the stop here; the worker records it in its next cycle.
 */
constexpr int kPendingStops = 16;
struct PendingStop {
    bool used;
    Oid database;
    char ig_account_id[40];
    char status[24];
    int error_code;
    char error[200];
    char token_rotated_at[64];
};

struct WorkerShared {
    slock_t mutex;
    /* who: set when the worker has connected, cleared when it exits */
    pid_t pid;
    int procno;          /* PGPROC number whose latch wakes the worker */
    Oid database;        /* database the worker serves */
    bool wake_requested; /* a backend asked for a cycle since the last one */
    bool sweep_requested; /* ... and ig_identity_wakeup() asked for the stale sweep */
    bool database_missing; /* ig_identity.database did not exist at the last try */
    /* what it has done since the server started */
    TimestampTz started_at;
    TimestampTz last_cycle_start;
    TimestampTz last_cycle_end;
    int64 cycles;
    int64 identities_refreshed;
    int64 failures;      /* identities whose fetch failed */
    int64 errors;        /* cycles that ended in an error */
    int64 wakeups;       /* latch sets requested by committed transactions */
    int in_flight;       /* identities being fetched right now */
    TimestampTz last_error_at;
    char last_error[kLastErrorLen];
    PendingStop pending_stops[kPendingStops];
};

/* The struct, or nullptr when the library was not preloaded. */
WorkerShared *worker_shmem();

/* A consistent copy of the struct (zeroed when there is none). */
WorkerShared worker_shmem_snapshot();

/* Asks for the struct's space and installs the startup hook; called from
 * _PG_init while shared_preload_libraries is being processed. */
void request_worker_shmem();

/* Sets the worker's latch if it runs and serves database `dboid`
 * (InvalidOid: any database), and notes that a cycle was asked for.
 * Returns whether a worker was found.  Safe in a commit callback: takes a
 * spinlock, never raises an error. */
bool wake_worker(Oid dboid, bool sweep = false);

/* For a backend: leaves an account stop for the worker to record and wakes
 * it. Returns false when no worker can take it (not preloaded, or all slots
 * taken). Takes a spinlock, never raises an error. */
bool note_account_stop(Oid dboid, const PendingStop &stop);

/* For the worker: the stops left for database dboid, copied out under the
 * lock (at most kPendingStops); they stay until forget_account_stops. */
int peek_account_stops(Oid dboid, PendingStop (&out)[kPendingStops]);

/* For the worker, once the transaction that recorded them has committed:
 * removes those stops, unless a backend replaced one meanwhile. */
void forget_account_stops(Oid dboid, const PendingStop *stops, int n);

/* For the worker: whether a cycle was asked for since the last call, and in
 * *sweep whether ig_identity_wakeup() asked for the stale sweep too.  Other
 * latch sets (signals, sinval catch-up) are not requests. */
bool take_wake_request(bool *sweep);

} // namespace igid::pg
