/*
 * wakeup.h — waking the background worker when a transaction that queued
 * work commits (never when it rolls back), and on demand.
 *
 * SQL side (worker.sql): the trigger function ig_identity._wake_worker_at_commit()
 * on ig_identity.refresh_queue, and @extschema@.ig_identity_wakeup().
 */
#pragma once

namespace igid::pg {

/* Asks for a wake-up when the current transaction commits; forgets it if the
 * transaction aborts.  Callable from any C++ code that queues work. */
void wake_worker_at_commit();

} // namespace igid::pg
