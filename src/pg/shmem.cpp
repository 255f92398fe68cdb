/*
 * shmem.cpp — creates the worker's shared struct (see shmem.h) and lets any
 * backend set the worker's latch.
 */
#include "pg/shmem.h"

extern "C" {
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
}

#include <cstring>

namespace igid::pg {

static WorkerShared *shared = nullptr;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = nullptr;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

static Size worker_shmem_size()
{
    return MAXALIGN(sizeof(WorkerShared));
}

#if PG_VERSION_NUM >= 150000
/* PostgreSQL 15 wants add-in space requested from this hook. */
static void worker_shmem_request()
{
    if (prev_shmem_request_hook)
        prev_shmem_request_hook();
    RequestAddinShmemSpace(worker_shmem_size());
}
#endif

/* Creates the struct once, in the postmaster (and attaches to it in each
 * EXEC_BACKEND child). */
static void worker_shmem_startup()
{
    bool found;

    if (prev_shmem_startup_hook)
        prev_shmem_startup_hook();

    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    auto *s = static_cast<WorkerShared *>(ShmemInitStruct("ig_identity worker", worker_shmem_size(), &found));
    if (!found) {
        memset(s, 0, sizeof *s);
        SpinLockInit(&s->mutex);
        s->procno = -1;
        s->database = InvalidOid;
    }
    LWLockRelease(AddinShmemInitLock);
    shared = s;
}

void request_worker_shmem()
{
#if PG_VERSION_NUM >= 150000
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = worker_shmem_request;
#else
    RequestAddinShmemSpace(worker_shmem_size());
#endif
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = worker_shmem_startup;
}

WorkerShared *worker_shmem()
{
    return shared;
}

WorkerShared worker_shmem_snapshot()
{
    WorkerShared copy;
    memset(&copy, 0, sizeof copy);
    copy.procno = -1;
    if (shared == nullptr)
        return copy;
    SpinLockAcquire(&shared->mutex);
    memcpy(&copy, shared, sizeof copy);
    SpinLockRelease(&shared->mutex);
    return copy;
}

bool wake_worker(Oid dboid, bool sweep)
{
    if (shared == nullptr)
        return false;

    SpinLockAcquire(&shared->mutex);
    pid_t pid = shared->pid;
    int procno = shared->procno;
    bool found = pid != 0 && procno >= 0 && (dboid == InvalidOid || dboid == shared->database);
    /* The worker's own writes to the queue must not wake it again. */
    bool wake = found && pid != MyProcPid;
    if (wake) {
        shared->wakeups++;
        shared->wake_requested = true;
        if (sweep)
            shared->sweep_requested = true;
    }
    SpinLockRelease(&shared->mutex);

    if (wake)
        SetLatch(&GetPGProcByNumber(procno)->procLatch);
    return found;
}

bool note_account_stop(Oid dboid, const PendingStop &stop)
{
    if (shared == nullptr)
        return false;
    bool stored = false;
    SpinLockAcquire(&shared->mutex);
    /* Only the worker's database is ever drained (ig_identity.database is
     * fixed at server start): a stop from another database would hold its
     * slot for good, and 16 of them would drop every later stop (TAP 030).
     * InvalidOid: no worker has connected yet (or it waits for its
     * database), keep the stop. */
    const Oid served = shared->database;
    const bool drained = !OidIsValid(served) || served == dboid;
    int slot = -1;
    for (int i = 0; i < kPendingStops && slot < 0 && drained; i++)
        if (shared->pending_stops[i].used && shared->pending_stops[i].database == dboid &&
            strcmp(shared->pending_stops[i].ig_account_id, stop.ig_account_id) == 0)
            slot = i; /* the newest stop of an account replaces its older one */
    for (int i = 0; i < kPendingStops && slot < 0 && drained; i++)
        if (!shared->pending_stops[i].used)
            slot = i;
    /* full: a stop kept before the worker said which database it serves */
    for (int i = 0; i < kPendingStops && slot < 0 && drained && OidIsValid(served); i++)
        if (shared->pending_stops[i].database != served)
            slot = i;
    if (slot >= 0) {
        shared->pending_stops[slot] = stop;
        shared->pending_stops[slot].used = true;
        shared->pending_stops[slot].database = dboid;
        stored = true;
    }
    SpinLockRelease(&shared->mutex);
    return stored && wake_worker(dboid);
}

int peek_account_stops(Oid dboid, PendingStop (&out)[kPendingStops])
{
    int n = 0;
    if (shared == nullptr)
        return 0;
    SpinLockAcquire(&shared->mutex);
    for (int i = 0; i < kPendingStops; i++)
        if (shared->pending_stops[i].used && shared->pending_stops[i].database == dboid)
            out[n++] = shared->pending_stops[i];
    SpinLockRelease(&shared->mutex);
    return n;
}

/* Whether two stops say the same thing (field by field: no padding). */
static bool same_stop(const PendingStop &a, const PendingStop &b)
{
    return a.database == b.database && a.error_code == b.error_code &&
           strcmp(a.ig_account_id, b.ig_account_id) == 0 && strcmp(a.status, b.status) == 0 &&
           strcmp(a.error, b.error) == 0 && strcmp(a.token_rotated_at, b.token_rotated_at) == 0;
}

void forget_account_stops(Oid dboid, const PendingStop *stops, int n)
{
    if (shared == nullptr || n <= 0)
        return;
    SpinLockAcquire(&shared->mutex);
    for (int i = 0; i < kPendingStops; i++) {
        PendingStop &slot = shared->pending_stops[i];
        if (!slot.used || slot.database != dboid)
            continue;
        for (int j = 0; j < n; j++)
            if (same_stop(slot, stops[j])) {
                slot.used = false;
                break;
            }
    }
    SpinLockRelease(&shared->mutex);
}

bool take_wake_request(bool *sweep)
{
    *sweep = false;
    if (shared == nullptr)
        return false;
    SpinLockAcquire(&shared->mutex);
    bool requested = shared->wake_requested;
    *sweep = shared->sweep_requested;
    shared->wake_requested = false;
    shared->sweep_requested = false;
    SpinLockRelease(&shared->mutex);
    return requested;
}

} // namespace igid::pg

/*
 * ig_identity_worker_state(): the struct as one SQL row, for the
 * ig_identity_status view and for monitoring; NULLs when there is no worker.
 */
extern "C" {
#include "funcapi.h"
#include "utils/builtins.h"
}

IGID_FUNCTION(ig_identity_worker_state)
{
    using namespace igid::pg;

    WorkerShared s = worker_shmem_snapshot();
    const bool have = worker_shmem() != nullptr;
    s.last_error[kLastErrorLen - 1] = '\0';

    Datum result = pg_call([&]() -> Datum {
        TupleDesc tupdesc;
        if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("function returning record called in context that cannot accept type record")));
        tupdesc = BlessTupleDesc(tupdesc);

        Datum values[12];
        bool nulls[12];
        memset(nulls, 0, sizeof nulls);
        auto ts = [&](int i, TimestampTz t) {
            values[i] = TimestampTzGetDatum(t);
            nulls[i] = t == 0;
        };
        values[0] = Int32GetDatum(s.pid);
        nulls[0] = s.pid == 0;
        ts(1, s.last_cycle_start);
        ts(2, s.last_cycle_end);
        values[3] = Int64GetDatum(s.cycles);
        values[4] = Int64GetDatum(s.identities_refreshed);
        values[5] = Int64GetDatum(s.failures);
        values[6] = s.last_error[0] ? CStringGetTextDatum(s.last_error) : (Datum) 0;
        nulls[6] = s.last_error[0] == '\0';
        values[7] = Int64GetDatum(s.errors);
        values[8] = Int32GetDatum(s.in_flight);
        values[9] = Int64GetDatum(s.wakeups);
        ts(10, s.last_error_at);
        ts(11, s.started_at);
        if (!have)
            for (int i = 3; i < 12; i++)
                if (i != 6 && i != 10 && i != 11)
                    nulls[i] = true;
        return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
    });
    return result;
}
