/*
 * spi.h — parameterised SQL from C++ through SPI, behind the boundary.
 *
 * Every statement takes parameters (never values pasted into SQL); results
 * come back as plain C++ values, so callers hold no PostgreSQL pointers
 * across calls that might raise an ERROR.
 */
#pragma once

#include "pg/boundary.h"

extern "C" {
#include "datatype/timestamp.h"
}

#include <optional>
#include <string>
#include <vector>

namespace igid::pg {

using Text = std::optional<std::string>; /* SQL text or NULL */
using Row = std::vector<Text>;

/* One bound parameter: a type OID and a Datum built inside pg_call. */
struct Param {
    Oid type;
    Datum value;
    bool isnull;
};

/* Parameter builders (they palloc in the current memory context). */
Param text_param(const Text &v);
Param int4_param(std::optional<int> v);
Param text_array_param(const std::vector<Text> &v);
Param int4_array_param(const std::vector<std::optional<int>> &v);
Param bool_array_param(const std::vector<bool> &v);
/* timestamptz[] from seconds since the Unix epoch (NULL where absent) */
Param timestamptz_array_param(const std::vector<std::optional<double>> &v);
Param jsonb_param(const std::string &json_text);
/* timestamptz from whole microseconds since the Unix epoch, written as a
 * decimal integer (how the C++ side carries an exact time: never a
 * DateStyle/TimeZone-dependent text form); NULL when absent */
Param timestamptz_us_param(const Text &unix_us);
/* timestamptz from a TimestampTz */
Param timestamptz_param(TimestampTz t);
Param bool_param(bool v);

/* Runs sql with params; returns every row's columns as text. */
std::vector<Row> spi_query(const char *sql, const std::vector<Param> &params, bool read_only = false);

/* Runs sql with params; returns the number of rows processed. */
uint64 spi_exec(const char *sql, const std::vector<Param> &params);

/* Wrappers that raise a proper ERROR when SPI reports failure. */
int SPI_connect_checked();
void SPI_finish_checked();

/*
 * with_spi(f): SPI_connect, run f, SPI_finish.  Anything allocated by the
 * statements in f is freed at SPI_finish, which bounds memory per batch.  If f
 * throws, SPI is left for transaction abort to clean up, as PostgreSQL does.
 */
template <typename F>
void with_spi(F &&f)
{
    pg_call([] { (void) SPI_connect_checked(); });
    f();
    pg_call([] { SPI_finish_checked(); });
}

} // namespace igid::pg
