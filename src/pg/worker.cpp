/*
 * worker.cpp — the ig_identity background worker: its registration, its
 * main loop, and one refresh cycle.
 *
 * A cycle (docs/architecture.md, "The worker cycle"):
 *   1. claim due queue rows under a lease, with their accounts' credentials,
 *      in a short transaction;
 *   2. fetch them with NO transaction open, checking for SIGTERM between
 *      steps (at most ~100 ms apart);
 *   3. apply the outcomes in a short transaction;
 *   4. once per refresh_interval, queue stale and missing identities.
 * Each transaction is one unit of work in the manner of pg_cron and
 * worker_spi.
 *
 * The loop is C++; every PostgreSQL call runs under pg_call, so an ERROR
 * becomes a PgError.  A cycle that fails is logged as a WARNING (the original
 * error with its SQLSTATE, detail and hint), its transaction aborted, its
 * leases given back, and the worker backs off and tries again: it never exits
 * on an ERROR, so it cannot crash-loop.  It exits on SIGTERM (status 1, so
 * the postmaster starts a new one after bgw_restart_time) and with the
 * postmaster.
 *
 * When ig_identity.database does not exist, the connection fails once with
 * PostgreSQL's own FATAL; the next worker connects to no database, says so
 * once, and checks for the database with a growing interval instead of
 * failing every bgw_restart_time (wait_for_database).
 */
#include "pg/worker.h"

#include "pg/boundary.h"
#include "pg/compat.h"
#include "pg/graph_settings.h"
#include "pg/inbox.h"
#include "pg/refresh.h"
#include "pg/settings.h"
#include "pg/shmem.h"
#include "pg/spi.h"
#include "pg/test_hook.h"
#include "pg/token_refresh.h"


extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "catalog/pg_database.h"
#include "access/htup_details.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <set>
#include <string>
#include <vector>

namespace igid::pg {

namespace {

constexpr int kClaimBatch = 500;          /* queue rows claimed per cycle */
constexpr int kQueueStaleBatch = 5000;    /* stale identities queued per scan */
constexpr int kTokenRefreshBatch = 100;   /* Instagram Login tokens refreshed per scan */
/* Outcomes are handed over one at a time: the sink only appends to a vector,
 * and a stop (SIGTERM, lease ending) is thrown from the progress callback,
 * so anything still held inside fetch_profiles would be lost and fetched
 * again (TAP 011 saw up to 99 such results). */
constexpr size_t kSinkBatch = 1;
constexpr long kMinWaitMs = 1000;         /* rows due but not claimable: look again */
constexpr int kMaxBackoffS = 300;         /* longest wait after failed cycles */
constexpr int kRunErrorsKept = 50;        /* failures listed in a run's history row */

/* Thrown from the progress callback to stop a fetch. */
struct StopFetch {
    enum Why { shutdown, lease_ending } why;
};

/* Thrown between steps to leave the main loop on SIGTERM. */
struct ShutdownRequested {};

/* Reset after every pass: whatever a pass pallocs outside a transaction. */
MemoryContext cycle_cxt = nullptr;

/* Updates the shared struct under its spinlock; f must be a few plain stores. */
template <typename F>
void update_shared(F &&f)
{
    WorkerShared *s = worker_shmem();
    if (s == nullptr)
        return;
    SpinLockAcquire(&s->mutex);
    f(*s);
    SpinLockRelease(&s->mutex);
}

/* Clears the worker's identity from shared memory when the process exits,
 * so backends stop setting a latch nobody waits on. */
void detach_shared(int code, Datum arg)
{
    update_shared([](WorkerShared &s) {
        s.pid = 0;
        s.procno = -1;
        s.in_flight = 0;
    });
}

/* Publishes who the worker is, so commits in its database can wake it. */
void attach_shared()
{
    update_shared([](WorkerShared &s) {
        s.pid = MyProcPid;
        s.procno = my_proc_number();
        s.database = MyDatabaseId;
        s.started_at = GetCurrentTimestamp();
        s.in_flight = 0;
    });
    before_shmem_exit(detach_shared, (Datum) 0);
}

/* Copies a message into the shared struct's fixed buffer. */
void record_error(const std::string &message)
{
    TimestampTz now = GetCurrentTimestamp();
    update_shared([&](WorkerShared &s) {
        s.errors++;
        s.last_error_at = now;
        strncpy(s.last_error, message.c_str(), kLastErrorLen - 1);
        s.last_error[kLastErrorLen - 1] = '\0';
    });
}

/* True while the worker connects to its database: a process that exits
 * then could not connect (in practice, ig_identity.database does not exist:
 * InitPostgres raises FATAL, which still runs the exit callbacks). */
bool connecting = false;

/* Exit callback: remembers a failed connection in shared memory, so the next
 * worker checks for the database instead of failing the same way again. */
void note_failed_connection(int code, Datum arg)
{
    if (connecting)
        update_shared([](WorkerShared &s) { s.database_missing = true; });
}

/* Whether the previous worker could not connect to its database. */
bool database_was_missing()
{
    bool missing = false;
    update_shared([&](WorkerShared &s) { missing = s.database_missing; });
    return missing;
}

constexpr long kDatabaseCheckFirstMs = 1000;  /* first look for a missing database */
constexpr long kDatabaseCheckMaxMs = 30000;   /* the interval grows up to this */

/* Whether database `db` exists and accepts connections; *cause says why
 * not.  Needs a transaction; reads only the shared catalog pg_database, by a
 * heap scan as the autovacuum launcher does (get_database_list): with no
 * database selected, an index scan (get_database_oid) needs the shared
 * relcache init file, and without one (no backend connected since startup)
 * it fails with FATAL "cannot read pg_class without having selected a
 * database" (TAP 027). */
bool database_ready(const char *db, char (&cause)[kLastErrorLen])
{
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    bool found = false, allowed = false, invalid = false;
    HeapTuple tup;
    while ((tup = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
        const Form_pg_database form = (Form_pg_database) GETSTRUCT(tup);
        if (strcmp(NameStr(form->datname), db) != 0)
            continue;
        found = true;
        allowed = form->datallowconn;
#ifdef DATCONNLIMIT_INVALID_DB
        /* left by an interrupted DROP DATABASE: connecting fails (15.4+) */
        invalid = form->datconnlimit == DATCONNLIMIT_INVALID_DB;
#endif
        break;
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    if (!found) {
        snprintf(cause, sizeof cause, "database \"%s\" named by ig_identity.database does not exist", db);
        return false;
    }
    if (invalid) {
        snprintf(cause, sizeof cause,
                 "database \"%s\" named by ig_identity.database is invalid (an interrupted DROP DATABASE)", db);
        return false;
    }
    if (!allowed) {
        snprintf(cause, sizeof cause, "database \"%s\" named by ig_identity.database does not allow connections", db);
        return false;
    }
    return true;
}

/*
 * The worker after a failed connection: connected to no database (shared
 * catalogs only), it looks the database up in pg_database.  If it is there
 * (the failure had another cause), it returns at once.  Otherwise it logs one
 * WARNING, shows the cause in ig_identity_worker_state(), and looks again
 * after 1 s and then at doubling intervals up to 30 s.  Once the database can
 * be connected to, it returns; the caller exits with status 1, and the
 * postmaster starts a worker that connects after bgw_restart_time.  SIGTERM
 * (die) ends it at once.
 *
 * Plain PostgreSQL code, like the entry point: no C++ object is alive while
 * it can raise an error.
 */
void wait_for_database(const char *db)
{
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
    pgstat_report_appname("ig_identity worker");
    attach_shared();

    char cause[kLastErrorLen];
    bool warned = false;
    long wait_ms = kDatabaseCheckFirstMs;
    for (;;) {
        StartTransactionCommand();
        const bool ready = database_ready(db, cause);
        CommitTransactionCommand();
        if (ready)
            break;
        if (!warned) {
            const TimestampTz now = GetCurrentTimestamp();
            update_shared([&](WorkerShared &s) {
                s.errors++;
                s.last_error_at = now;
                memcpy(s.last_error, cause, sizeof cause);
            });
            ereport(WARNING, (errcode(ERRCODE_UNDEFINED_DATABASE),
                              errmsg("ig_identity worker: %s", cause),
                              errdetail("The worker refreshes nothing until it can connect; it looks again at "
                                        "growing intervals of up to %ld seconds and starts serving the database then.",
                                        kDatabaseCheckMaxMs / 1000),
                              errhint("Create the database, or set ig_identity.database to an existing database "
                                      "and restart the server.")));
            warned = true;
        }
        pgstat_report_activity(STATE_IDLE, nullptr);
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait_ms,
                         PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        wait_ms = std::min(wait_ms * 2, kDatabaseCheckMaxMs);
    }
    update_shared([warned](WorkerShared &s) {
        s.database_missing = false;
        if (warned)
            s.last_error[0] = '\0';
    });
    if (warned)
        ereport(LOG, (errmsg("ig_identity worker: database \"%s\" can be connected to now; "
                             "a new worker will serve it", db)));
}

/* Leaves the loop between steps when SIGTERM arrived. */
void check_shutdown()
{
    if (ShutdownRequestPending)
        throw ShutdownRequested{};
}

/*
 * SIGTERM while the worker runs SQL, or waits: PostgreSQL's own die(), so a
 * lock wait, a long statement or the idle wait ends with the usual FATAL
 * "terminating background worker ... due to administrator command" (and exit
 * status 1: the postmaster starts a new worker after bgw_restart_time, except
 * at shutdown).  The rows this worker leased are claimable again at once,
 * since its pid is gone.  This is the worker's default handler.
 */
void sql_signals()
{
    pqsignal(SIGTERM, die);
}

/*
 * SIGTERM while fetching: only a flag, seen by the progress callback within
 * ~100 ms, so what was fetched is saved and the rest given back before the
 * worker exits.  A die() that arrived just before the switch is taken now,
 * before any row is fetched.
 */
void fetch_signals()
{
    pg_call([] { CHECK_FOR_INTERRUPTS(); });
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    if (ProcDiePending) {
        ProcDiePending = false;
        ShutdownRequestPending = true;
    }
}

/*
 * Inside a unit of work run after SIGTERM was taken as a flag (a stopped
 * fetch): the postmaster sends SIGTERM once, so a save or a release that
 * waited on a lock (a prepared transaction's) would hold the server's
 * shutdown up for good (TAP 029).  Such waits give up after 2 s; the rows
 * of a worker that has exited are claimable again anyway.
 */
void limit_lock_waits_at_shutdown()
{
    if (ShutdownRequestPending)
        (void) spi_exec("SELECT pg_catalog.set_config('lock_timeout', '2s', true)", {});
}

/* Milliseconds from one timestamp to another (negative if earlier). */
long ms_between(TimestampTz from, TimestampTz to)
{
    return (long) ((to - from) / 1000);
}

/* A TimestampTz as seconds since the Unix epoch. */
double epoch_seconds(TimestampTz t)
{
    return (double) t / USECS_PER_SEC + (double) ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY);
}

/*
 * One unit of work: statement timestamp, transaction, SPI, snapshot,
 * activity; f runs inside; then closed in reverse and the statistics
 * reported.  If f throws, the transaction stays open for the caller's error
 * path to abort.
 *
 * SPI_finish deletes "SPI Proc", the context current inside f, so the commit
 * runs in its own pg_call entered from cycle_cxt: an error at COMMIT (a
 * deferred trigger, a serialization failure) is caught with a live context
 * to return to.  SIGTERM is PostgreSQL's die() here (see sql_signals), so a
 * lock wait or a long statement ends at once.
 */
template <typename F>
void unit_of_work(const char *activity, F &&f)
{
    pg_call([activity] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        (void) SPI_connect_checked();
        PushActiveSnapshot(GetTransactionSnapshot());
        pgstat_report_activity(STATE_RUNNING, activity);
    });
    f();
    pg_call([] {
        PopActiveSnapshot();
        SPI_finish_checked();
        MemoryContextSwitchTo(cycle_cxt);
    });
    pg_call([] {
        CommitTransactionCommand();
        MemoryContextSwitchTo(cycle_cxt);
    });
    pg_call([] {
        pgstat_report_stat(false);
        pgstat_report_activity(STATE_IDLE, nullptr);
    });
}

/* What step 1 hands to steps 2 and 3: the claimed rows and the credentials
 * of their accounts (tokens live only here, never in a log or shared memory). */
struct Claim {
    std::vector<Target> targets;
    std::vector<AccountCreds> accounts;
};

/* The whole worker: its loop, its cycle, its memory of what it logged. */
class Worker {
public:
    /* Runs until SIGTERM; returns the exit status. */
    int run();

private:
    long pass();
    long cycle();
    bool extension_ready();
    void note_version(const std::string &version, const std::string &db);
    void wait_cause(const std::string &cause, const std::string &hint);
    Claim claim();
    int record_pending_stops(PendingStop (&stops)[kPendingStops]);
    void fetch_and_apply(Claim &claim);
    void apply(const std::vector<FetchOutcome> &outcomes, const std::vector<AccountEvent> &events,
               const Claim &claim, TimestampTz started);
    double next_due_s();
    long next_wait_ms(bool full_batch, double due_s);
    void release_leases();
    void refresh_access_tokens();
    void report_failure(ErrorData *edata, const std::string &message);
    int lease_seconds() const;

    std::string waiting_cause_;         /* last "why idle" line logged, "" if none */
    std::string version_noted_;         /* older extension version last logged */
    std::string failure_cause_;         /* last failure logged as a WARNING, "" if none */
    bool sweep_requested_ = false;      /* ig_identity_wakeup(): run the stale sweep too */
    bool can_sweep_ = true;             /* the database's version has the owner-rights sweep */
    int consecutive_failures_ = 0;
    TimestampTz last_stale_scan_ = 0;
    std::vector<Target> leased_;        /* claimed, not yet settled */
    const char *phase_ = "starting";    /* for the error context */
};

/* Adds which step of the cycle failed to a logged error. */
void cycle_error_context(void *arg)
{
    errcontext("ig_identity worker, while %s", static_cast<const char *>(arg));
}

/*
 * Logs a failed cycle: a PostgreSQL error is re-emitted as a WARNING with
 * everything it had (SQLSTATE, detail, hint, context); a C++ error becomes a
 * WARNING with its text.  The message also goes to shared memory.
 */
void Worker::report_failure(ErrorData *edata, const std::string &message)
{
    record_error(message);
    const char *phase = phase_;
    const char *text = message.c_str();
    /* once per distinct cause: the same failure again is only DEBUG1 until
     * a cycle succeeds or the cause changes (the counters still count it) */
    std::string cause = std::string(phase) + "\n" + message;
    if (edata != nullptr)
        cause += "\n" + std::to_string(edata->sqlerrcode);
    const bool repeated = cause == failure_cause_;
    failure_cause_ = cause;
    try {
        pg_call([edata, phase, text, repeated] {
            ErrorContextCallback cb;
            cb.callback = cycle_error_context;
            cb.arg = const_cast<char *>(phase);
            cb.previous = error_context_stack;
            error_context_stack = &cb;
            const int level = repeated ? DEBUG1 : WARNING;
            if (edata != nullptr) {
                edata->elevel = level;
                ThrowErrorData(edata);
            } else {
                ereport(level, (errcode(ERRCODE_INTERNAL_ERROR),
                                errmsg("ig_identity worker cycle failed: %s", text)));
            }
            error_context_stack = cb.previous;
        });
    } catch (const PgError &) {
        /* could not even log (out of memory): the counters still say it */
    }
}

/* The lease must outlast the slowest fetch a batch can take: every request
 * timing out at the allowed concurrency, plus the per-account rate limit. */
int Worker::lease_seconds() const
{
    const double timeout_s = settings.http_timeout_ms / 1000.0;
    const int concurrency = std::max(1, settings.max_concurrency);
    double estimate = std::ceil((double) kClaimBatch / concurrency) * timeout_s;
    if (settings.requests_per_second > 0)
        estimate += kClaimBatch / settings.requests_per_second;
    return (int) std::min(3600.0, 60.0 + 1.5 * estimate);
}

/* Logs why the worker is idle, once per distinct cause (not every pass). */
void Worker::wait_cause(const std::string &cause, const std::string &hint)
{
    if (cause == waiting_cause_)
        return;
    waiting_cause_ = cause;
    const char *c = cause.c_str();
    const char *h = hint.c_str();
    pg_call([c, h] {
        ereport(LOG, (errmsg("ig_identity worker is waiting: %s", c), h[0] ? errhint("%s", h) : 0));
    });
}

/* Whether this database has the extension with the worker's functions;
 * explains once in the log when it has not.  Runs inside a transaction. */
bool Worker::extension_ready()
{
    auto rows = spi_query("SELECT e.extversion,"
                          "       pg_catalog.to_regprocedure('ig_identity._worker_claim(integer,interval)') IS NOT NULL,"
                          "       pg_catalog.to_regprocedure('ig_identity._worker_stale_accounts()') IS NOT NULL"
                          "  FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'ig_identity'",
                          {}, true);
    const char *dbname = pg_call([] { return get_database_name(MyDatabaseId); });
    const std::string db = dbname ? dbname : "?";
    if (rows.empty()) {
        wait_cause("extension \"ig_identity\" is not installed in database \"" + db + "\"",
                   "Run CREATE EXTENSION ig_identity in that database; the worker looks again every "
                   "ig_identity.refresh_interval.");
        return false;
    }
    if (rows[0][1].value_or("f") != "t") {
        wait_cause("extension \"ig_identity\" version " + rows[0][0].value_or("?") + " in database \"" +
                       db + "\" lacks the worker's functions",
                   "Run ALTER EXTENSION ig_identity UPDATE in that database.");
        return false;
    }
    /* 1.0's sweep read the cache with the extension owner's rights behind a
     * guard with gaps; this library sweeps only through the per-owner
     * readers that 1.1 brings, so a 1.0 database gets no sweep until it is
     * updated (queued rows are still refreshed). */
    can_sweep_ = rows[0][2].value_or("f") == "t";
    note_version(rows[0][0].value_or("?"), db);
    if (!waiting_cause_.empty()) {
        waiting_cause_.clear();
        const char *d = db.c_str();
        pg_call([d] {
            ereport(LOG, (errmsg("ig_identity worker is refreshing identities in database \"%s\"", d)));
        });
    }
    return true;
}

/* A database still at an older extension version is served with what that
 * version's SQL offers (the library keeps every C entry point an older
 * script names); says so once per version, not every cycle. */
void Worker::note_version(const std::string &version, const std::string &db)
{
    if (version == IGID_EXTVERSION || version == version_noted_)
        return;
    version_noted_ = version;
    const char *v = version.c_str();
    const char *d = db.c_str();
    const bool can_sweep = can_sweep_;
    pg_call([v, d, can_sweep] {
        ereport(LOG, (errmsg("ig_identity worker: database \"%s\" has ig_identity version %s; this library is %s",
                             d, v, IGID_EXTVERSION),
                      can_sweep ? errdetail("The worker goes on serving it with what version %s provides.", v)
                                 : errdetail("The worker goes on refreshing the identities queued there, but does not "
                                             "queue stale ones until the extension is updated."),
                      errhint("Run ALTER EXTENSION ig_identity UPDATE in that database.")));
    });
}

/* Records the account stops that backends learned in transactions that then
 * failed (see PendingStop), through the same path as any account event, so
 * a token rotated meanwhile voids them.  Runs inside a transaction; the stops
 * stay in shared memory until it has committed (forget_account_stops), so a
 * failed claim or commit loses none.  Returns how many it copied to stops. */
int Worker::record_pending_stops(PendingStop (&stops)[kPendingStops])
{
    const int n = peek_account_stops(MyDatabaseId, stops);
    /* account rows are locked in id order on every path (see pause_app_wide) */
    std::sort(stops, stops + n, [](const PendingStop &a, const PendingStop &b) {
        return strcmp(a.ig_account_id, b.ig_account_id) < 0;
    });
    for (int i = 0; i < n; i++) {
        const PendingStop &s = stops[i];
        spi_exec("SELECT ig_identity.record_account_event($1, $2, NULL, $3, $4, NULL, false, $5)",
                 {text_param(std::string(s.ig_account_id)), text_param(std::string(s.status)),
                  int4_param(s.error_code ? std::optional<int>(s.error_code) : std::nullopt),
                  text_param(s.error[0] ? Text(std::string(s.error)) : Text()),
                  timestamptz_us_param(s.token_rotated_at[0] ? Text(std::string(s.token_rotated_at)) : Text())});
    }
    return n;
}

/* Step 1: leases due rows and reads their accounts' credentials.  Runs inside
 * a transaction. */
Claim Worker::claim()
{
    Claim c;
    char lease[32];
    snprintf(lease, sizeof lease, "%d seconds", lease_seconds());
    auto rows = spi_query("SELECT ig_account_id, ig_user_id"
                          "  FROM ig_identity._worker_claim($1, $2::pg_catalog.interval)",
                          {int4_param(kClaimBatch), text_param(std::string(lease))});
    std::set<std::string> wanted;
    for (auto &r : rows) {
        c.targets.push_back({r[0].value_or(""), r[1].value_or("")});
        wanted.insert(r[0].value_or(""));
    }
    leased_ = c.targets;
    if (c.targets.empty())
        return c;
    for (auto &a : all_accounts())
        if (wanted.count(a.ig_account_id))
            c.accounts.push_back(std::move(a));
    return c;
}

/* Seconds until the queue has a claimable row, or -1 for none.  Runs inside a
 * transaction, after the stale sweep: not read-only, so SPI takes a new
 * snapshot that sees the rows the sweep just queued. */
double Worker::next_due_s()
{
    auto rows = spi_query("SELECT ig_identity._worker_next_due()", {}, false);
    if (rows.empty() || !rows[0][0])
        return -1;
    return std::stod(*rows[0][0]);
}

/* How long to sleep: until the next stale scan, or the next due row if
 * sooner; not at all after a full batch (more may be waiting). */
long Worker::next_wait_ms(bool full_batch, double due_s)
{
    if (full_batch)
        return 0;
    const long interval_ms = settings.refresh_interval_s * 1000L;
    long wait = interval_ms - ms_between(last_stale_scan_, GetCurrentTimestamp());
    wait = std::clamp(wait, 0L, interval_ms);
    if (due_s >= 0)
        wait = std::min(wait, std::max(kMinWaitMs, (long) (due_s * 1000.0)));
    return wait;
}

/*
 * Steps 2 and 3: fetch with no transaction open, then apply in one short
 * transaction.  A stop (SIGTERM, or the lease about to run out) applies what
 * was fetched so far and gives the rest of the rows back.
 */
void Worker::fetch_and_apply(Claim &c)
{
    /* Accounts without credentials cannot be fetched: tell apply so, which
     * puts their rows back to wait instead of claiming them again at once. */
    std::set<std::string> have;
    for (auto &a : c.accounts)
        have.insert(a.ig_account_id);
    std::vector<FetchOutcome> outcomes;
    std::vector<Target> targets;
    const double retry_at = (double) time(nullptr) + settings.refresh_interval_s;
    for (auto &t : c.targets) {
        if (have.count(t.ig_account_id)) {
            targets.push_back(t);
            continue;
        }
        FetchOutcome o;
        o.ig_account_id = t.ig_account_id;
        o.ig_user_id = t.ig_user_id;
        o.kind = FetchOutcome::Kind::not_attempted;
        o.error_message = "the account has no access token this server can open";
        o.next_try_at = retry_at;
        outcomes.push_back(std::move(o));
    }

    const TimestampTz started = GetCurrentTimestamp();
    std::vector<AccountEvent> events;
    bool stopped_for_shutdown = false;

    if (!targets.empty()) {
        char activity[64];
        snprintf(activity, sizeof activity, "fetching %zu profiles", targets.size());
        phase_ = "fetching profiles";
        pgstat_report_activity(STATE_RUNNING, activity);
        const int n = (int) targets.size();
        update_shared([n](WorkerShared &s) { s.in_flight = n; });

        /* Stop early enough to apply and release before the lease runs out. */
        const auto deadline = std::chrono::steady_clock::now() +
                              std::chrono::seconds(std::max(10, lease_seconds() - 30));
        /* between network waits: the wait event is "Extension" while curl
         * waits, none while this runs */
        auto progress = [deadline] {
            pgstat_report_wait_end();
            if (!PostmasterIsAlive())
                proc_exit(1);
            if (ShutdownRequestPending)
                throw StopFetch{StopFetch::shutdown};
            pg_call([] { CHECK_FOR_INTERRUPTS(); });
            if (std::chrono::steady_clock::now() > deadline)
                throw StopFetch{StopFetch::lease_ending};
            pgstat_report_wait_start(PG_WAIT_EXTENSION);
        };
        auto sink = [&outcomes](std::vector<FetchOutcome> &&batch) {
            const int got = (int) batch.size();
            for (auto &o : batch)
                outcomes.push_back(std::move(o));
            update_shared([got](WorkerShared &s) { s.in_flight = std::max(0, s.in_flight - got); });
        };
        /* die() again on every way out of the fetch: a cancel (PgError from
         * the progress callback), bad_alloc or curl failure too, or the SQL
         * after it would ignore SIGTERM (TAP 026) */
        struct FetchSignals {
            FetchSignals() { fetch_signals(); }
            ~FetchSignals()
            {
                pgstat_report_wait_end();
                sql_signals();
            }
        } fetch_signals_scope;
        try {
            pgstat_report_wait_start(PG_WAIT_EXTENSION);
            events = fetch_profiles(c.accounts, targets, progress, sink, kSinkBatch);
            pgstat_report_wait_end();
        } catch (const StopFetch &stop) {
            pgstat_report_wait_end();
            stopped_for_shutdown = stop.why == StopFetch::shutdown;
            if (!stopped_for_shutdown) {
                long secs = lease_seconds();
                pg_call([secs] {
                    ereport(WARNING, (errmsg("ig_identity worker stopped a fetch that outlasted its lease"),
                                      errdetail("The lease is %ld seconds; unfinished rows go back to the queue.", secs),
                                      errhint("Lower ig_identity.http_timeout or raise ig_identity.max_concurrency.")));
                });
            }
        }
        update_shared([](WorkerShared &s) { s.in_flight = 0; });
        pgstat_report_activity(STATE_IDLE, nullptr);
    }

    phase_ = "saving results";
    apply(outcomes, events, c, started);
    if (stopped_for_shutdown)
        throw ShutdownRequested{};
}

/*
 * Once per refresh_interval: Instagram Login tokens past
 * ig_identity.token_refresh_age are refreshed (the calls with no
 * transaction open), then the new tokens and their expiry, or the failures,
 * are stored in one short transaction.  A shutdown during the calls stores
 * nothing: an old token stays valid until it expires, so a refresh that is
 * not stored loses nothing (the next start tries again).
 */
void Worker::refresh_access_tokens()
{
    std::vector<AccountCreds> due;
    phase_ = "finding tokens to refresh";
    unit_of_work("finding tokens to refresh",
                 [&] { due = tokens_due_for_refresh(graph_settings.token_refresh_age_s, kTokenRefreshBatch); });
    if (due.empty())
        return;

    phase_ = "refreshing access tokens";
    pgstat_report_activity(STATE_RUNNING, "refreshing access tokens");
    bool stopped_for_shutdown = false;
    std::vector<TokenRefresh> results;
    auto progress = [] {
        pgstat_report_wait_end();
        if (!PostmasterIsAlive())
            proc_exit(1);
        if (ShutdownRequestPending)
            throw StopFetch{StopFetch::shutdown};
        pg_call([] { CHECK_FOR_INTERRUPTS(); });
        pgstat_report_wait_start(PG_WAIT_EXTENSION);
    };
    fetch_signals();
    try {
        pgstat_report_wait_start(PG_WAIT_EXTENSION);
        results = refresh_tokens(due, progress);
    } catch (const StopFetch &) {
        stopped_for_shutdown = true;
    }
    pgstat_report_wait_end();
    sql_signals();
    pgstat_report_activity(STATE_IDLE, nullptr);

    if (!results.empty()) {
        phase_ = "saving refreshed tokens";
        int stored = 0;
        unit_of_work("saving refreshed tokens", [&] { stored = store_token_refreshes(results); });
        const int failed = (int) std::count_if(results.begin(), results.end(),
                                               [](const TokenRefresh &r) { return !r.ok; });
        /* counts only: never a token, nor the URL that carried one */
        pg_call([stored, failed] {
            ereport(failed > 0 ? WARNING : LOG,
                    (errmsg("ig_identity worker refreshed %d Instagram Login access tokens, %d failed", stored,
                            failed),
                     failed > 0 ? errhint("ig_identity_status.last_error says why, per account; the old "
                                          "tokens are kept and tried again in an hour.")
                                : 0));
        });
    }
    if (stopped_for_shutdown)
        throw ShutdownRequested{};
}

/* Step 3, in one transaction: outcomes, account events, leases of rows that
 * got no outcome, the run's history row, and the counters. */
void Worker::apply(const std::vector<FetchOutcome> &outcomes, const std::vector<AccountEvent> &events,
                   const Claim &c, TimestampTz started)
{
    /* accounts whose save found no connection (a Citus node down): their
     * rows wait in the queue and count in neither figure */
    std::set<std::string> unreachable;
    std::set<std::pair<std::string, std::string>> settled;
    for (const auto &o : outcomes)
        settled.insert({o.ig_account_id, o.ig_user_id});
    std::vector<Text> rel_accounts, rel_users;
    for (const auto &t : c.targets)
        if (!settled.count({t.ig_account_id, t.ig_user_id})) {
            rel_accounts.emplace_back(t.ig_account_id);
            rel_users.emplace_back(t.ig_user_id);
        }
    long long refreshed = 0, failed = 0;

    unit_of_work("saving results", [&] {
        limit_lock_waits_at_shutdown();
        /* queue rows before cache rows, the lock order of every path */
        if (!rel_accounts.empty())
            spi_exec("SELECT ig_identity._worker_release($1, $2)",
                     {text_array_param(rel_accounts), text_array_param(rel_users)});
        if (!outcomes.empty())
            unreachable = apply_outcomes_per_account(outcomes);
        if (!events.empty())
            apply_account_events(events);
        RunSummary summary((size_t) kRunErrorsKept, /* not_attempted_fails */ false);
        if (unreachable.empty()) {
            summary.count(outcomes);
        } else {
            std::vector<FetchOutcome> saved;
            for (const auto &o : outcomes)
                if (!unreachable.count(o.ig_account_id))
                    saved.push_back(o);
            summary.count(saved);
        }
        const std::string errors_json = summary.errors_json();
        refreshed = summary.refreshed;
        failed = summary.failed;
        spi_exec("SELECT ig_identity.record_run('worker', NULL, pg_catalog.to_timestamp($1::pg_catalog.float8), $2, $3, $4, $5)",
                 {text_param(std::to_string(epoch_seconds(started))), int4_param((int) refreshed), int4_param((int) failed),
                  int4_param((int) c.targets.size()), jsonb_param(errors_json)});
    });
    leased_.clear();
    update_shared([=](WorkerShared &s) {
        s.identities_refreshed += refreshed;
        s.failures += failed;
    });
}

/* After a failed cycle: gives back every row this worker still leases, in its
 * own transaction, so the next cycle can claim them again. */
void Worker::release_leases()
{
    if (leased_.empty())
        return;
    std::vector<Text> accounts, users;
    for (auto &t : leased_) {
        accounts.emplace_back(t.ig_account_id);
        users.emplace_back(t.ig_user_id);
    }
    phase_ = "giving back leased rows";
    unit_of_work("giving back leased rows", [&] {
        limit_lock_waits_at_shutdown();
        spi_exec("SELECT ig_identity._worker_release($1, $2)",
                 {text_array_param(accounts), text_array_param(users)});
    });
    leased_.clear();
}

/* One refresh cycle; returns how long to sleep before the next. */
long Worker::cycle()
{
    if (!settings.enabled) {
        wait_cause("ig_identity.enabled is off", "");
        return settings.refresh_interval_s * 1000L;
    }
    if (RecoveryInProgress()) {
        wait_cause("the server is in recovery", "");
        return settings.refresh_interval_s * 1000L;
    }

    const TimestampTz start = GetCurrentTimestamp();
    bool ready = false;
    Claim c;
    double due_s = -1;

    PendingStop stops[kPendingStops];
    int nstops = 0;
    phase_ = "claiming refresh queue";
    unit_of_work("claiming refresh queue", [&] {
        ready = extension_ready();
        if (!ready)
            return;
        nstops = record_pending_stops(stops);
        test_hook_error("claim");
        c = claim();
    });
    /* committed: now the recorded stops may leave shared memory */
    forget_account_stops(MyDatabaseId, stops, nstops);
    if (!ready)
        return settings.refresh_interval_s * 1000L;
    update_shared([start](WorkerShared &s) { s.last_cycle_start = start; });

    const bool full_batch = (int) c.targets.size() >= kClaimBatch;
    if (!c.targets.empty()) {
        check_shutdown();
        fetch_and_apply(c);
    }
    check_shutdown();

    /* Step 4 once per refresh_interval and when ig_identity_wakeup() asked;
     * the queue's next due time always. */
    const bool scan = sweep_requested_ ||
                      ms_between(last_stale_scan_, GetCurrentTimestamp()) >= settings.refresh_interval_s * 1000L;
    phase_ = scan ? "queueing stale identities" : "reading the queue";
    unit_of_work(scan ? "queueing stale identities" : "reading the queue", [&] {
        if (scan && can_sweep_) {
            /* reads the cache as its owner (inbox.h) */
            queue_stale(settings.stale_after_s, kQueueStaleBatch);
        }
        due_s = next_due_s();
    });
    /* a sweep skipped for an older extension version stays requested, so
     * the first cycle after ALTER EXTENSION UPDATE runs it; the timer moves
     * on either way (the worker sleeps its interval, not in a loop) */
    if (scan) {
        last_stale_scan_ = GetCurrentTimestamp();
        sweep_requested_ = !can_sweep_;
        check_shutdown();
        refresh_access_tokens();
    }

    const TimestampTz end = GetCurrentTimestamp();
    update_shared([end](WorkerShared &s) {
        s.last_cycle_end = end;
        s.cycles++;
    });
    pg_call([] { elog(DEBUG1, "ig_identity worker cycle done"); });
    return next_wait_ms(full_batch, due_s);
}

/*
 * One pass of the loop: a cycle, and if it fails, the error logged, the
 * transaction aborted, the leases given back, and a backoff returned.
 */
long Worker::pass()
{
    pg_call([] {
        MemoryContextSwitchTo(cycle_cxt);
        /* the last pass's PgErrors are logged and gone */
        detail::forget_caught_errors();
    });
    ErrorData *edata = nullptr;
    std::string message;
    long wait_ms = 0;
    bool failed = false;
    bool shutdown = false;
    try {
        wait_ms = cycle();
        if (!failure_cause_.empty()) {
            const int n = consecutive_failures_;
            pg_call([n] {
                ereport(LOG, (errmsg("ig_identity worker cycle succeeded after %d failed cycles", n)));
            });
            failure_cause_.clear();
        }
        consecutive_failures_ = 0;
    } catch (const ShutdownRequested &) {
        shutdown = true;
    } catch (const PgError &e) {
        failed = true;
        edata = e.edata();
        message = e.what();
    } catch (const std::exception &e) {
        failed = true;
        message = e.what();
    } catch (...) {
        failed = true;
        message = "unknown C++ exception";
    }

    if (failed) {
        consecutive_failures_++;
        /* edata lives in a context the abort frees: log first */
        report_failure(edata, message);
        pg_call([] {
            AbortCurrentTransaction();
            pgstat_report_activity(STATE_IDLE, nullptr);
            MemoryContextSwitchTo(cycle_cxt);
        });
        update_shared([](WorkerShared &s) { s.in_flight = 0; });
        if (ShutdownRequestPending) {
            /* the save after a stopped fetch failed: leave now, the leases
             * of an exited worker are claimable again at once */
            leased_.clear();
            throw ShutdownRequested{};
        }
        try {
            release_leases();
        } catch (const PgError &e) {
            report_failure(e.edata(), e.what());
            pg_call([] {
                AbortCurrentTransaction();
                pgstat_report_activity(STATE_IDLE, nullptr);
                MemoryContextSwitchTo(cycle_cxt);
            });
            /* they come back when their lease runs out */
            leased_.clear();
        }
        const int shift = std::min(consecutive_failures_ - 1, 16);
        const long backoff_s = std::min<long>({1L << shift, (long) settings.refresh_interval_s, (long) kMaxBackoffS});
        wait_ms = backoff_s * 1000L;
    }
    if (shutdown) {
        /* rows claimed but not yet fetched: give them back before leaving */
        try {
            release_leases();
        } catch (const PgError &e) {
            report_failure(e.edata(), e.what());
            pg_call([] { AbortCurrentTransaction(); });
        }
        throw ShutdownRequested{};
    }
    pg_call([] { MemoryContextReset(cycle_cxt); });
    return wait_ms;
}

/* The main loop: sleep on the latch, handle signals, run a pass. */
int Worker::run()
{
    const char *db = settings.database;
    /* never inside an IGID_FUNCTION: its PgErrors are freed by pass() */
    detail::hold_caught_errors();
    pg_call([db] {
        cycle_cxt = AllocSetContextCreate(TopMemoryContext, "ig_identity worker cycle", ALLOCSET_DEFAULT_SIZES);
        ereport(LOG, (errmsg("ig_identity worker started for database \"%s\"", db)));
    });

    /* the first pass runs at once */
    TimestampTz next_pass = GetCurrentTimestamp();
    for (;;) {
        const long timeout = std::max(0L, ms_between(GetCurrentTimestamp(), next_pass));
        pg_call([timeout] {
            (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, timeout,
                             PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
        });
        try {
            pg_call([] { CHECK_FOR_INTERRUPTS(); });
        } catch (const PgError &e) {
            /* a cancel (SIGINT) while idle: nothing to cancel, nothing to
             * report (it is no failed cycle: TAP 031) */
            if (e.edata()->sqlerrcode != ERRCODE_QUERY_CANCELED) {
                phase_ = "waiting for work";
                consecutive_failures_++;
                report_failure(e.edata(), e.what());
            }
        }
        if (ShutdownRequestPending)
            break;
        /* A pass runs when its time has come, when a backend asked for one,
         * or after a reload (the interval may have changed); other latch
         * sets (signals, catch-up interrupts) just resume the wait. */
        bool due = GetCurrentTimestamp() >= next_pass;
        bool sweep = false;
        if (take_wake_request(&sweep))
            due = true;
        if (sweep)
            sweep_requested_ = true;
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            pg_call([] { ProcessConfigFile(PGC_SIGHUP); });
            due = true;
        }
        if (!due)
            continue;
        try {
            const long wait_ms = pass();
            next_pass = GetCurrentTimestamp() + (TimestampTz) wait_ms * 1000;
        } catch (const ShutdownRequested &) {
            break;
        }
    }
    pg_call([] {
        AbortCurrentTransaction();
        ereport(LOG, (errmsg("ig_identity worker shutting down")));
    });
    /* status 1: the postmaster starts a new worker after bgw_restart_time
     * (pg_terminate_backend, DROP DATABASE ... WITH (FORCE)); at server
     * shutdown it starts none */
    return 1;
}

} // namespace

/* Registers the worker (and the shared struct it reports through) when the
 * library is preloaded; otherwise the SQL functions work without it. */
void init_worker()
{
    if (!process_shared_preload_libraries_in_progress)
        return;

    request_worker_shmem();

    BackgroundWorker worker;
    memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    /* after recovery: a standby runs no worker */
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = 10;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "ig_identity");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "ig_identity_worker_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "ig_identity worker");
    snprintf(worker.bgw_type, BGW_MAXLEN, "ig_identity worker");
    worker.bgw_main_arg = (Datum) 0;
    worker.bgw_notify_pid = 0;
    RegisterBackgroundWorker(&worker);
}

} // namespace igid::pg

/*
 * The worker's entry point.  Signals and the connection are set up in plain
 * PostgreSQL style (an ERROR here is FATAL: nothing to clean up yet); the
 * loop runs in C++ and returns only to exit.
 */
void ig_identity_worker_main(Datum main_arg)
{
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    if (igid::pg::database_was_missing()) {
        igid::pg::wait_for_database(igid::pg::settings.database);
        proc_exit(1);
    }
    on_proc_exit(igid::pg::note_failed_connection, (Datum) 0);
    igid::pg::connecting = true;
    BackgroundWorkerInitializeConnection(igid::pg::settings.database, nullptr, 0);
    igid::pg::connecting = false;
    /* The worker is a superuser: pin search_path before it runs any SQL, for
     * the whole session.  PGC_S_OVERRIDE outranks ALTER DATABASE/ROLE SET
     * (applied while connecting) and becomes the reset value too, so RESET
     * cannot bring a database owner's path back; a function's own SET clause
     * still applies inside that function (autovacuum pins it the same way). */
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
    pgstat_report_appname("ig_identity worker");
    igid::pg::attach_shared();

    int status = 1;
    try {
        igid::pg::Worker worker;
        status = worker.run();
    } catch (const std::exception &e) {
        /* not expected: pass() catches everything; restart after bgw_restart_time */
        status = 1;
    } catch (...) {
        status = 1;
    }
    proc_exit(status);
}
