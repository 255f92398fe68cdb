/*
 * boundary.cpp — the exception boundary between C++ and PostgreSQL
 * (see boundary.h for the rules it enforces).
 */
#include "pg/boundary.h"

extern "C" {
#include "utils/elog.h"
#include "utils/memutils.h"
}

#include <cstring>
#include <new>

namespace igid::pg {

const char *PgError::what() const noexcept
{
    return (edata_ && edata_->message) ? edata_->message : "PostgreSQL error";
}

namespace detail {

/* Where caught errors are copied (see boundary.h). */
static MemoryContext caught_cxt = nullptr;
/* IGID_FUNCTION calls in progress, +1 while the worker holds its errors. */
static int boundary_depth = 0;

void hold_caught_errors()
{
    boundary_depth++;
}

void forget_caught_errors()
{
    if (caught_cxt != nullptr)
        MemoryContextReset(caught_cxt);
}

void run_guarded(void (*fn)(void *), void *arg)
{
    MemoryContext volatile caller_cxt = CurrentMemoryContext;
    ErrorData *volatile edata = nullptr;

    PG_TRY();
    {
        /* created on first use, under PG_TRY: creating it may fail too */
        if (caught_cxt == nullptr)
            caught_cxt = AllocSetContextCreate(TopMemoryContext, "ig_identity caught errors",
                                               ALLOCSET_SMALL_SIZES);
        fn(arg);
    }
    PG_CATCH();
    {
        /* CopyErrorData must not run in ErrorContext, nor in a context fn
         * may have deleted (a failed COMMIT after SPI_finish): copy into the
         * caught-error context, which outlives the C++ unwinding after. */
        MemoryContextSwitchTo(caught_cxt != nullptr ? caught_cxt : TopMemoryContext);
        edata = CopyErrorData();
        FlushErrorState();
        MemoryContextSwitchTo(caller_cxt);
    }
    PG_END_TRY();

    if (edata != nullptr)
        throw PgError(edata);
}

/* Where an exception's text is kept between the catch block and ereport():
 * copying into a fixed buffer allocates nothing, so nothing can longjmp out of
 * a catch block. */
struct CaughtError {
    enum Kind { NONE, POSTGRES, OURS, OUT_OF_MEMORY, OTHER } kind = NONE;
    ErrorData *edata = nullptr;
    int sqlstate = 0;
    char message[1024] = {0};
    char detail[1024] = {0};
    char hint[512] = {0};
};

static void copy_text(char *dst, size_t size, const char *src)
{
    strncpy(dst, src ? src : "", size - 1);
    dst[size - 1] = '\0';
}

Datum call_boundary(Datum (*impl)(FunctionCallInfo), FunctionCallInfo fcinfo)
{
    CaughtError caught;

    /* Outermost call: no C++ frame holds a PgError, the old copies can go. */
    if (boundary_depth == 0)
        forget_caught_errors();
    /* Counted down on every way out: a normal return, and before the
     * re-raise below (no longjmp passes this frame without it). */
    struct Depth {
        Depth() { boundary_depth++; }
        ~Depth() { boundary_depth--; }
    };

    try {
        Depth depth;
        return impl(fcinfo);
    } catch (const PgError &e) {
        caught.kind = CaughtError::POSTGRES;
        caught.edata = e.edata();
    } catch (const Error &e) {
        caught.kind = CaughtError::OURS;
        caught.sqlstate = e.sqlstate();
        copy_text(caught.message, sizeof caught.message, e.what());
        copy_text(caught.detail, sizeof caught.detail, e.detail().c_str());
        copy_text(caught.hint, sizeof caught.hint, e.hint().c_str());
    } catch (const std::bad_alloc &) {
        caught.kind = CaughtError::OUT_OF_MEMORY;
    } catch (const std::exception &e) {
        caught.kind = CaughtError::OTHER;
        copy_text(caught.message, sizeof caught.message, e.what());
    } catch (...) {
        caught.kind = CaughtError::OTHER;
        copy_text(caught.message, sizeof caught.message, "unknown C++ exception");
    }

    /* Every C++ frame is gone now; PostgreSQL may longjmp freely. */
    switch (caught.kind) {
    case CaughtError::POSTGRES:
        ReThrowError(caught.edata);
        break;
    case CaughtError::OURS:
        ereport(ERROR, (errcode(caught.sqlstate), errmsg_internal("%s", caught.message),
                        caught.detail[0] ? errdetail_internal("%s", caught.detail) : 0,
                        caught.hint[0] ? errhint("%s", caught.hint) : 0));
        break;
    case CaughtError::OUT_OF_MEMORY:
        ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory"),
                        errdetail("A C++ allocation in ig_identity failed.")));
        break;
    default:
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                        errmsg("ig_identity internal error: %s", caught.message)));
    }
    pg_unreachable();
}

} // namespace detail
} // namespace igid::pg
