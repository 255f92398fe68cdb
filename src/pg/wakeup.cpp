/*
 * wakeup.cpp — wake the worker at COMMIT, never on rollback (the lesson of
 * pg_net): a statement trigger on ig_identity.refresh_queue only raises a
 * backend-local flag; a transaction callback sets the worker's latch once the
 * commit is visible to others, and drops the flag on abort or PREPARE.  The
 * worker therefore never polls SQL while idle and never wakes for rows it
 * cannot see.
 */
#include "pg/wakeup.h"

#include "pg/boundary.h"
#include "pg/shmem.h"

extern "C" {
#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "miscadmin.h"
}

namespace igid::pg {

static bool callback_registered = false;
static bool wake_pending = false;

/* Runs at every transaction end of this backend once registered; cheap when
 * nothing was queued.  Must not raise an error: commit is already done. */
static void wake_xact_callback(XactEvent event, void *arg)
{
    switch (event) {
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
        if (wake_pending) {
            wake_pending = false;
            (void) wake_worker(MyDatabaseId);
        }
        break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    /* A prepared transaction commits later, maybe elsewhere: the worker's
     * interval picks its rows up. */
    case XACT_EVENT_PREPARE:
        wake_pending = false;
        break;
    default:
        break;
    }
}

void wake_worker_at_commit()
{
    /* Without shared memory there is no worker to wake. */
    if (worker_shmem() == nullptr)
        return;
    if (!callback_registered) {
        pg_call([] { RegisterXactCallback(wake_xact_callback, nullptr); });
        callback_registered = true;
    }
    wake_pending = true;
}

} // namespace igid::pg

/*
 * ig_identity._wake_worker_at_commit(): trigger function for AFTER INSERT OR
 * UPDATE ... FOR EACH STATEMENT on ig_identity.refresh_queue.
 */
IGID_FUNCTION(ig_identity_wake_worker_at_commit)
{
    if (!CALLED_AS_TRIGGER(fcinfo))
        throw igid::pg::Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                              "ig_identity._wake_worker_at_commit() must be called as a trigger");
    igid::pg::wake_worker_at_commit();
    return PointerGetDatum(nullptr);
}

/*
 * ig_identity_wakeup(): pokes the worker now (no need to wait for a commit)
 * for a whole cycle, the stale sweep included, and says whether a worker serving this database was found, explaining why
 * not when it was not.
 */
IGID_FUNCTION(ig_identity_wakeup)
{
    using namespace igid::pg;

    if (worker_shmem() == nullptr) {
        pg_call([] {
            ereport(WARNING,
                    (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                     errmsg("ig_identity background worker is not available"),
                     errdetail("The ig_identity library was not loaded through shared_preload_libraries."),
                     errhint("Add ig_identity to shared_preload_libraries and restart the server.")));
        });
        PG_RETURN_BOOL(false);
    }

    /* a whole cycle, the stale sweep included */
    if (wake_worker(MyDatabaseId, /* sweep */ true))
        PG_RETURN_BOOL(true);

    WorkerShared s = worker_shmem_snapshot();
    if (s.pid == 0) {
        pg_call([] {
            ereport(NOTICE,
                    (errmsg("ig_identity background worker is not running"),
                     errdetail("It starts once recovery has finished and restarts within 10 seconds of a failure; a standby runs none.")));
        });
    } else {
        Oid db = s.database;
        pg_call([db] {
            char *name = get_database_name(db);
            ereport(NOTICE,
                    (errmsg("ig_identity background worker serves another database"),
                     errdetail("The worker is connected to database \"%s\".", name ? name : "?"),
                     errhint("Call ig_identity_wakeup() in that database, or change ig_identity.database.")));
        });
    }
    PG_RETURN_BOOL(false);
}
