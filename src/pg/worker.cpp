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
#include <map>
#include <set>
#include <string>
#include <vector>

namespace igid::pg {

namespace {

/* Counts the outcomes a save wrote: those of accounts it could not save (a
 * Citus worker node down, apply_outcomes_per_account) wait in the queue and
 * count in neither figure. */
void count_saved(RunSummary &summary, const std::vector<FetchOutcome> &outcomes,
                 const std::set<std::string> &unreachable)
{
    if (unreachable.empty()) {
        summary.count(outcomes);
        return;
    }
    std::vector<FetchOutcome> saved;
    for (const auto &o : outcomes)
        if (!unreachable.count(o.ig_account_id))
            saved.push_back(o);
    summary.count(saved);
}

/* The scheduler across accounts (issue 15).  A cycle claims as it goes:
 * while its fetch runs, it tops the pipeline up with the fair claim, so
 * every transfer slot stays busy while any account has due work. */
constexpr int kClaimBatch = 500;          /* rows per claim with 1.0's _worker_claim */
constexpr int kPipeline = 1000;           /* rows held (claimed, not saved) at most */
constexpr double kShareSeconds = 3.0;     /* per account: rows for this much of its pace */
constexpr long kSaveEveryMs = 1000;       /* mid-cycle saves: results visible this soon */
constexpr long kUrgentSaveMs = 50;        /* ... and this soon for a webhook's or a manual row */
constexpr size_t kSaveAtOnce = 500;       /* ... or once this many are waiting */
constexpr size_t kSaveAccounts = 32;      /* accounts per save transaction: the merge
                                           * runs once per account, and the fetch waits
                                           * meanwhile, so a long save is split */
constexpr long kClaimEveryMs = 1000;      /* top-up claims at least this often */
constexpr long kMaxCycleMs = 60000;       /* then the cycle drains and the next begins */
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

/*
 * A short transaction in the middle of a fetch (a save, a top-up claim):
 * PostgreSQL's die() while it runs, so a lock wait ends at once; then back
 * to the flag, a SIGTERM that arrived meanwhile kept as a stop request.
 */
template <typename F>
void in_sql(F &&f)
{
    sql_signals();
    f();
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    if (ProcDiePending) {
        ProcDiePending = false;
        ShutdownRequestPending = true;
    }
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

/* A (account, user) pair: a queue row's key. */
using RowKey = std::pair<std::string, std::string>;

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
    Claim claim(int limit, const std::set<std::string> &known, const std::set<std::string> &skip);
    int per_account_share() const;
    int record_pending_stops(PendingStop (&stops)[kPendingStops]);
    bool fetch_and_apply(Claim &claim);
    void saved(std::vector<FetchOutcome> &outcomes, long long refreshed, long long failed);
    void save_run(const RunSummary &summary, long long claimed, TimestampTz started);
    void apply(std::vector<FetchOutcome> &outcomes, const std::vector<AccountEvent> &events,
               RunSummary &summary, long long claimed, TimestampTz started);
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
    bool fair_claim_ = true;            /* the database has _worker_claim_fair (1.1) */
    std::optional<long long> run_id_;   /* this cycle's history row, once saved */
    std::set<RowKey> leased_;           /* claimed, not yet settled */
    std::set<RowKey> urgent_;           /* claimed rows someone waits for */
    std::map<std::string, std::chrono::steady_clock::time_point> last_call_; /* per account: its
                                         * latest answer, so the next fetch keeps its pace */
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
    /* every row of the pipeline waits for a slot; one account's share waits
     * for its pace */
    const int batch = fair_claim_ ? kPipeline : kClaimBatch;
    double estimate = std::ceil((double) batch / concurrency) * timeout_s;
    if (settings.requests_per_second > 0)
        estimate += (fair_claim_ ? per_account_share() : kClaimBatch) / settings.requests_per_second;
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
                          "       pg_catalog.to_regprocedure('ig_identity._worker_stale_accounts()') IS NOT NULL,"
                          "       pg_catalog.to_regprocedure('ig_identity._worker_claim_fair(integer,integer,interval,text[])') IS NOT NULL"
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
    fair_claim_ = rows[0][3].value_or("f") == "t";
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

/* How many rows one account may hold at once: enough for kShareSeconds of
 * its pace, so a lease never holds a row much longer than the pace needs;
 * the whole pipeline when there is no pace. */
int Worker::per_account_share() const
{
    if (settings.requests_per_second <= 0)
        return kPipeline;
    return std::clamp((int) std::ceil(settings.requests_per_second * kShareSeconds) + 1, 2, kPipeline);
}

/* Step 1, and every top-up during the fetch: leases up to `limit` due rows,
 * taking turns across accounts (_worker_claim_fair), none of the accounts in
 * `skip`, and reads the credentials of accounts not in `known`.  Runs inside
 * a transaction.  A database still at 1.0 gets its oldest 500 rows. */
Claim Worker::claim(int limit, const std::set<std::string> &known, const std::set<std::string> &skip)
{
    Claim c;
    char lease[32];
    snprintf(lease, sizeof lease, "%d seconds", lease_seconds());
    std::vector<Row> rows;
    if (fair_claim_) {
        std::vector<Text> skipped(skip.begin(), skip.end());
        rows = spi_query("SELECT ig_account_id, ig_user_id, reason"
                         "  FROM ig_identity._worker_claim_fair($1, $2, $3::pg_catalog.interval, $4)",
                         {int4_param(limit), int4_param(per_account_share()), text_param(std::string(lease)),
                          text_array_param(skipped)});
    } else {
        rows = spi_query("SELECT ig_account_id, ig_user_id, reason"
                         "  FROM ig_identity._worker_claim($1, $2::pg_catalog.interval)",
                         {int4_param(kClaimBatch), text_param(std::string(lease))});
    }
    std::set<std::string> wanted;
    for (auto &r : rows) {
        c.targets.push_back({r[0].value_or(""), r[1].value_or("")});
        leased_.insert({r[0].value_or(""), r[1].value_or("")});
        /* someone waits for these: a webhook's new participant, a manual request */
        const std::string reason = r[2].value_or("");
        if (reason == "webhook" || reason == "manual")
            urgent_.insert({r[0].value_or(""), r[1].value_or("")});
        if (!known.count(r[0].value_or("")))
            wanted.insert(r[0].value_or(""));
    }
    if (wanted.empty())
        return c;
    /* the pace each account had at the end of the last fetch carries over */
    const double gap_s = pace_interval_s();
    for (auto &a : all_accounts())
        if (wanted.count(a.ig_account_id)) {
            auto last = last_call_.find(a.ig_account_id);
            if (gap_s > 0 && last != last_call_.end())
                a.earliest_start = last->second + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                      std::chrono::duration<double>(gap_s));
            c.accounts.push_back(std::move(a));
        }
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
 * Steps 2 and 3: fetch with no transaction open.  Between fetch steps the
 * cycle saves the results that arrived (every kSaveEveryMs, so they are
 * visible within about a second) and tops the pipeline up with the fair
 * claim (when slots free up, every kClaimEveryMs, and at once when a commit
 * queued work), each time in one short transaction; at the end it saves the
 * rest, the account events and the run's history row in one.  A stop
 * (SIGTERM, or the lease about to run out) saves what was fetched so far and
 * gives the rest of the rows back.  Returns true when the cycle stopped
 * claiming with work perhaps still due (the next cycle then starts at once).
 */
bool Worker::fetch_and_apply(Claim &c)
{
    run_id_.reset();
    const TimestampTz started = GetCurrentTimestamp();
    RunSummary summary((size_t) kRunErrorsKept, /* not_attempted_fails */ false);
    long long claimed = (long long) c.targets.size();
    std::vector<FetchOutcome> outcomes;         /* fetched, not saved yet */
    std::set<std::string> with_creds, asked;    /* accounts whose credentials were read */
    std::set<std::string> skip;                 /* paused or stopped during this fetch */

    /* Accounts without credentials cannot be fetched: tell apply so, which
     * puts their rows back to wait instead of claiming them again at once
     * (the wait counts from now, not from the cycle's start: a top-up claim
     * a minute into the cycle would otherwise claim them again in the
     * save's own transaction), and claim no more of their rows this cycle. */
    auto split = [&](Claim &cl, std::vector<Target> &fetchable) {
        const double retry_at = (double) time(nullptr) + settings.refresh_interval_s;
        for (auto &a : cl.accounts)
            with_creds.insert(a.ig_account_id);
        for (auto &t : cl.targets) {
            asked.insert(t.ig_account_id);
            if (with_creds.count(t.ig_account_id)) {
                fetchable.push_back(t);
                continue;
            }
            skip.insert(t.ig_account_id);
            FetchOutcome o;
            o.ig_account_id = t.ig_account_id;
            o.ig_user_id = t.ig_user_id;
            o.kind = FetchOutcome::Kind::not_attempted;
            o.error_message = "the account has no access token this server can open";
            o.next_try_at = retry_at;
            outcomes.push_back(std::move(o));
        }
    };
    std::vector<Target> targets;
    split(c, targets);

    std::vector<AccountEvent> events;
    bool stopped_for_shutdown = false;
    bool more_due = (int) c.targets.size() >= (fair_claim_ ? kPipeline : kClaimBatch);

    if (!targets.empty()) {
        char activity[64];
        snprintf(activity, sizeof activity, "fetching %zu profiles", targets.size());
        phase_ = "fetching profiles";
        pgstat_report_activity(STATE_RUNNING, activity);
        const int n = (int) targets.size();
        update_shared([n](WorkerShared &s) { s.in_flight = n; });

        /* Stop early enough to apply and release before the lease runs out. */
        const long deadline_s = std::max(10, lease_seconds() - 30);
        const auto t0 = std::chrono::steady_clock::now();
        const auto deadline = t0 + std::chrono::seconds(deadline_s);
        /* claim no more after this: the last rows claimed still finish well
         * before the deadline, and the stale sweep gets its turn */
        const auto claim_until = t0 + std::chrono::milliseconds(std::min(kMaxCycleMs, deadline_s * 500));
        auto last_save = t0, last_claim = t0;
        bool last_claim_full = more_due;
        bool woken = false;
        bool urgent = false;            /* an urgent row's result waits to be saved */
        bool draining = false;          /* a save was split: save the rest at once */

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
        auto sink = [&](std::vector<FetchOutcome> &&batch) {
            const auto now = std::chrono::steady_clock::now();
            for (auto &o : batch) {
                last_call_[o.ig_account_id] = now;
                if (o.kind == FetchOutcome::Kind::not_attempted)
                    skip.insert(o.ig_account_id);
                if (urgent_.erase({o.ig_account_id, o.ig_user_id}))
                    urgent = true;
                outcomes.push_back(std::move(o));
            }
        };
        auto refill = [&](size_t held, std::vector<AccountCreds> &more_accounts, std::vector<Target> &more) {
            const auto now = std::chrono::steady_clock::now();
            bool sweep = false;
            if (take_wake_request(&sweep))
                woken = true;
            if (sweep)
                sweep_requested_ = true;
            update_shared([held](WorkerShared &s) { s.in_flight = (int) held; });
            const int room = kPipeline - (int) held;
            const bool may_claim = fair_claim_ && !ShutdownRequestPending && room > 0;
            if (fair_claim_ && now >= claim_until && held < (size_t) kPipeline)
                more_due = true;    /* stopped claiming, not out of work */
            const bool claim_due =
                may_claim && now < claim_until &&
                (woken || held == 0 || now - last_claim >= std::chrono::milliseconds(kClaimEveryMs) ||
                 (last_claim_full && held < (size_t) kPipeline / 2));
            const bool save_due = fair_claim_ && !outcomes.empty() &&
                                  (draining || outcomes.size() >= kSaveAtOnce || held == 0 || claim_due ||
                                   now - last_save >= std::chrono::milliseconds(urgent ? kUrgentSaveMs : kSaveEveryMs));
            /* a stop: progress() saves what is here and leaves */
            if ((!claim_due && !save_due) || ShutdownRequestPending)
                return;
            pgstat_report_wait_end();
            Claim got;
            /* counted in the save's transaction (only the accounts it could
             * save: a Citus node may be down): if it fails, the cycle fails
             * and its figures go with it */
            const long long r0 = summary.refreshed, f0 = summary.failed;
            std::vector<FetchOutcome> chunk;
            if (save_due) {
                /* the results of the first kSaveAccounts accounts; the rest
                 * right after the next fetch step */
                std::set<std::string> in_chunk;
                std::vector<FetchOutcome> rest;
                for (auto &o : outcomes) {
                    if (in_chunk.count(o.ig_account_id) || in_chunk.size() < kSaveAccounts) {
                        in_chunk.insert(o.ig_account_id);
                        chunk.push_back(std::move(o));
                    } else {
                        rest.push_back(std::move(o));
                    }
                }
                outcomes.swap(rest);
            }
            /* a failure is reported as this step's (the cycle's error context) */
            phase_ = save_due ? "saving results" : "claiming refresh queue";
            in_sql([&] {
                unit_of_work(phase_, [&] {
                    /* settle first: a saved row frees its account's share */
                    if (save_due)
                        count_saved(summary, chunk, apply_outcomes_per_account(chunk));
                    if (claim_due)
                        got = claim(room, asked, skip);
                    /* the history row: what is saved and claimed so far */
                    save_run(summary, claimed + (long long) got.targets.size(), started);
                });
            });
            if (save_due) {
                saved(chunk, summary.refreshed - r0, summary.failed - f0);
                /* a row saved and claimed again in the same transaction is
                 * held again */
                for (auto &t : got.targets)
                    leased_.insert({t.ig_account_id, t.ig_user_id});
                draining = !outcomes.empty();
                if (!draining) {
                    last_save = std::chrono::steady_clock::now();
                    urgent = false;
                }
            }
            if (claim_due) {
                last_claim = std::chrono::steady_clock::now();
                last_claim_full = (int) got.targets.size() >= room;
                woken = false;
                claimed += (long long) got.targets.size();
                std::vector<Target> fetchable;
                split(got, fetchable);
                for (auto &a : got.accounts)
                    more_accounts.push_back(std::move(a));
                for (auto &t : fetchable)
                    more.push_back(std::move(t));
            }
            phase_ = "fetching profiles";
            pgstat_report_activity(STATE_RUNNING, "fetching profiles");
            pgstat_report_wait_start(PG_WAIT_EXTENSION);
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
            events = fetch_profiles(c.accounts, targets, progress, sink, kSinkBatch, refill);
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
        } catch (...) {
            /* a failed mid-cycle save or claim: pass() aborts and gives the
             * leases back, with PostgreSQL's SIGTERM handling */
            pgstat_report_wait_end();
            sql_signals();
            update_shared([](WorkerShared &s) { s.in_flight = 0; });
            throw;
        }
        update_shared([](WorkerShared &s) { s.in_flight = 0; });
        pgstat_report_activity(STATE_IDLE, nullptr);
    }

    phase_ = "saving results";
    apply(outcomes, events, summary, claimed, started);
    if (stopped_for_shutdown)
        throw ShutdownRequested{};
    return more_due;
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

/* The cycle's history row with its figures so far (inside the save's
 * transaction): inserted by the first save, updated by the others. */
void Worker::save_run(const RunSummary &summary, long long claimed, TimestampTz started)
{
    auto rows = spi_query("SELECT ig_identity._worker_run_save($1::pg_catalog.int8,"
                          " pg_catalog.to_timestamp($2::pg_catalog.float8), $3, $4, $5, $6)",
                          {text_param(run_id_ ? Text(std::to_string(*run_id_)) : Text()),
                           text_param(std::to_string(epoch_seconds(started))), int4_param((int) summary.refreshed),
                           int4_param((int) summary.failed), int4_param((int) claimed),
                           jsonb_param(summary.errors_json())});
    if (!rows.empty() && rows[0][0])
        run_id_ = std::stoll(*rows[0][0]);
}

/* After a mid-cycle save has committed: the rows are settled, the counters
 * move on, the outcomes are gone from memory. */
void Worker::saved(std::vector<FetchOutcome> &outcomes, long long refreshed, long long failed)
{
    for (const auto &o : outcomes)
        leased_.erase({o.ig_account_id, o.ig_user_id});
    outcomes.clear();
    update_shared([=](WorkerShared &s) {
        s.identities_refreshed += refreshed;
        s.failures += failed;
    });
}

/* Step 3, in one transaction: the outcomes not saved yet, account events,
 * leases of rows that got no outcome, the run's history row, and the
 * counters. */
void Worker::apply(std::vector<FetchOutcome> &outcomes, const std::vector<AccountEvent> &events,
                   RunSummary &summary, long long claimed, TimestampTz started)
{
    std::set<RowKey> unsettled = leased_;
    for (const auto &o : outcomes)
        unsettled.erase({o.ig_account_id, o.ig_user_id});
    std::vector<Text> rel_accounts, rel_users;
    for (const auto &k : unsettled) {
        rel_accounts.emplace_back(k.first);
        rel_users.emplace_back(k.second);
    }
    /* the run's figures include what this last save brings (counted in
     * its transaction: a Citus node down holds some accounts back) */
    const long long r0 = summary.refreshed, f0 = summary.failed;
    long long refreshed = r0, failed = f0;

    unit_of_work("saving results", [&] {
        limit_lock_waits_at_shutdown();
        /* queue rows before cache rows, the lock order of every path */
        if (!rel_accounts.empty())
            spi_exec("SELECT ig_identity._worker_release($1, $2)",
                     {text_array_param(rel_accounts), text_array_param(rel_users)});
        /* accounts whose save found no connection (a Citus node down):
         * their rows wait in the queue and count in neither figure */
        std::set<std::string> unreachable;
        if (!outcomes.empty())
            unreachable = apply_outcomes_per_account(outcomes);
        if (!events.empty())
            apply_account_events(events);
        count_saved(summary, outcomes, unreachable);
        refreshed = summary.refreshed;
        failed = summary.failed;
        if (fair_claim_)
            save_run(summary, claimed, started);
        else
            spi_exec("SELECT ig_identity.record_run('worker', NULL, pg_catalog.to_timestamp($1::pg_catalog.float8), $2, $3, $4, $5)",
                     {text_param(std::to_string(epoch_seconds(started))), int4_param((int) refreshed), int4_param((int) failed),
                      int4_param((int) claimed), jsonb_param(summary.errors_json())});
    });
    run_id_.reset();
    leased_.clear();
    urgent_.clear();
    outcomes.clear();
    const long long d_refreshed = refreshed - r0, d_failed = failed - f0;
    update_shared([=](WorkerShared &s) {
        s.identities_refreshed += d_refreshed;
        s.failures += d_failed;
    });
}

/* After a failed cycle: gives back every row this worker still leases, in its
 * own transaction, so the next cycle can claim them again. */
void Worker::release_leases()
{
    if (leased_.empty())
        return;
    std::vector<Text> accounts, users;
    for (auto &k : leased_) {
        accounts.emplace_back(k.first);
        users.emplace_back(k.second);
    }
    phase_ = "giving back leased rows";
    unit_of_work("giving back leased rows", [&] {
        limit_lock_waits_at_shutdown();
        spi_exec("SELECT ig_identity._worker_release($1, $2)",
                 {text_array_param(accounts), text_array_param(users)});
    });
    leased_.clear();
    urgent_.clear();
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
        c = claim(kPipeline, {}, {});
    });
    /* committed: now the recorded stops may leave shared memory */
    forget_account_stops(MyDatabaseId, stops, nstops);
    if (!ready)
        return settings.refresh_interval_s * 1000L;
    update_shared([start](WorkerShared &s) { s.last_cycle_start = start; });

    /* the pace of calls a moment ago carries over; older ones are spent */
    {
        const auto now = std::chrono::steady_clock::now();
        const auto spent = std::chrono::duration<double>(
            settings.requests_per_second > 0 ? std::max(1.0, 1.0 / settings.requests_per_second) : 0.0);
        for (auto it = last_call_.begin(); it != last_call_.end();)
            it = now - it->second > spent ? last_call_.erase(it) : std::next(it);
    }
    bool full_batch = false;
    if (!c.targets.empty()) {
        check_shutdown();
        full_batch = fetch_and_apply(c);
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
            urgent_.clear();
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
