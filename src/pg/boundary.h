/*
 * boundary.h — where C++ meets PostgreSQL.
 *
 * PostgreSQL reports errors with longjmp, which skips C++ destructors, and a
 * C++ exception must never unwind through PostgreSQL frames.  Two tools keep
 * the two worlds apart:
 *
 *   IGID_FUNCTION(name)  defines an SQL-callable function whose body may throw;
 *                        every exception is caught and turned into ereport()
 *                        only after the catch block has ended.
 *   pg_call(f)           runs f (PostgreSQL calls only, no C++ objects with
 *                        destructors inside f) under PG_TRY and turns an
 *                        ERROR into a C++ PgError, so C++ objects alive in the
 *                        caller are destroyed normally on the way out.
 *
 * This file and the rest of src/pg/ are the only code that includes
 * PostgreSQL headers.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
}

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

namespace igid::pg {

/* A PostgreSQL ERROR caught by pg_call(), carried until it can be re-raised. */
class PgError : public std::exception {
public:
    explicit PgError(ErrorData *edata) noexcept : edata_(edata) {}
    ErrorData *edata() const noexcept { return edata_; }
    const char *what() const noexcept override;

private:
    ErrorData *edata_; /* in the caught-error context (see detail::caught_errors) */
};

/* An error raised from C++ that should reach the client as a proper
 * PostgreSQL error: SQLSTATE, lower-case message, sentence detail and hint. */
class Error : public std::exception {
public:
    Error(int sqlstate, std::string message, std::string detail = {}, std::string hint = {})
        : sqlstate_(sqlstate), message_(std::move(message)), detail_(std::move(detail)),
          hint_(std::move(hint)) {}
    int sqlstate() const noexcept { return sqlstate_; }
    const std::string &detail() const noexcept { return detail_; }
    const std::string &hint() const noexcept { return hint_; }
    const char *what() const noexcept override { return message_.c_str(); }

private:
    int sqlstate_;
    std::string message_, detail_, hint_;
};

namespace detail {
/* Runs fn(arg) under PG_TRY; throws PgError if it raised an ERROR.  fn may
 * delete the memory context that was current when it started (SPI_finish
 * deletes "SPI Proc", a failed commit leaves none): the error is copied into
 * the caught-error context, never into the caller's. */
void run_guarded(void (*fn)(void *), void *arg);
/*
 * Every PgError's ErrorData lives in one context under TopMemoryContext, so
 * it outlives whatever the failed call freed.  It is emptied when the
 * outermost IGID_FUNCTION is entered (no C++ frame can hold a PgError then)
 * and, in the worker, which is never inside an IGID_FUNCTION, at the start
 * of each pass: hold_caught_errors() tells call_boundary not to empty it, and
 * forget_caught_errors() empties it.
 */
void hold_caught_errors();
void forget_caught_errors();
/* Calls impl(fcinfo), catching every exception and re-raising it with
 * ereport() once no C++ frame is left to unwind. */
Datum call_boundary(Datum (*impl)(FunctionCallInfo), FunctionCallInfo fcinfo);
} // namespace detail

/*
 * pg_call: call PostgreSQL from C++ code that has live C++ objects.
 * f must itself hold nothing with a destructor: a longjmp out of it skips f's
 * frame.  Its result must be trivially destructible (pointers, Datums, ints).
 */
template <typename F>
auto pg_call(F &&f)
{
    using R = std::invoke_result_t<F &>;
    if constexpr (std::is_void_v<R>) {
        detail::run_guarded([](void *p) { (*static_cast<std::remove_reference_t<F> *>(p))(); },
                            static_cast<void *>(&f));
    } else {
        static_assert(std::is_trivially_destructible_v<R>,
                      "pg_call results must be trivially destructible");
        struct Thunk {
            std::remove_reference_t<F> *f;
            R result;
        } thunk{&f, R{}};
        detail::run_guarded([](void *p) {
            auto *t = static_cast<Thunk *>(p);
            t->result = (*t->f)();
        }, &thunk);
        return thunk.result;
    }
}

} // namespace igid::pg

/*
 * IGID_FUNCTION(name) { ... }  — an SQL-callable function (version-1 calling
 * convention) whose body runs inside the exception boundary.
 */
#define IGID_FUNCTION(name)                                                          \
    static Datum name##_impl(FunctionCallInfo fcinfo);                               \
    extern "C" {                                                                     \
    PG_FUNCTION_INFO_V1(name);                                                       \
    Datum name(PG_FUNCTION_ARGS) { return igid::pg::detail::call_boundary(name##_impl, fcinfo); } \
    }                                                                                \
    static Datum name##_impl(FunctionCallInfo fcinfo)
