/*
 * spi.cpp — parameterised SPI calls for the C++ side (see spi.h).
 */
#include "pg/spi.h"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "fmgr.h"
}

namespace igid::pg {

int SPI_connect_checked()
{
    int rc = SPI_connect();
    if (rc != SPI_OK_CONNECT)
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not connect to SPI"),
                        errdetail("SPI_connect returned %d.", rc)));
    return rc;
}

void SPI_finish_checked()
{
    int rc = SPI_finish();
    if (rc != SPI_OK_FINISH)
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not finish SPI"),
                        errdetail("SPI_finish returned %d.", rc)));
}

Param text_param(const Text &v)
{
    if (!v)
        return {TEXTOID, (Datum) 0, true};
    const std::string &s = *v;
    Datum d = pg_call([&] { return PointerGetDatum(cstring_to_text_with_len(s.data(), (int) s.size())); });
    return {TEXTOID, d, false};
}

Param int4_param(std::optional<int> v)
{
    return {INT4OID, v ? Int32GetDatum(*v) : (Datum) 0, !v.has_value()};
}

Param bool_param(bool v)
{
    return {BOOLOID, BoolGetDatum(v), false};
}

/* Builds a one-dimensional array of the given element type. */
static Datum build_array(Oid elemtype, const std::vector<Datum> &values, const std::vector<bool> &nulls)
{
    int16 typlen;
    bool typbyval;
    char typalign;
    const int n = (int) values.size();
    const Datum *vp = values.data();
    /* std::vector<bool> has no data(): copy the flags into a plain array */
    bool *np = nullptr;
    np = pg_call([&] { return (bool *) palloc0(sizeof(bool) * (n > 0 ? n : 1)); });
    for (int i = 0; i < n; i++)
        np[i] = nulls[i];
    return pg_call([&] {
        int dims[1] = {n};
        int lbs[1] = {1};
        get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
        return PointerGetDatum(construct_md_array(const_cast<Datum *>(vp), np, 1, dims, lbs, elemtype,
                                                  typlen, typbyval, typalign));
    });
}

Param text_array_param(const std::vector<Text> &v)
{
    std::vector<Datum> values(v.size());
    std::vector<bool> nulls(v.size());
    for (size_t i = 0; i < v.size(); i++) {
        nulls[i] = !v[i].has_value();
        if (v[i]) {
            const std::string &s = *v[i];
            values[i] = pg_call([&] { return PointerGetDatum(cstring_to_text_with_len(s.data(), (int) s.size())); });
        }
    }
    return {TEXTARRAYOID, build_array(TEXTOID, values, nulls), false};
}

Param int4_array_param(const std::vector<std::optional<int>> &v)
{
    std::vector<Datum> values(v.size());
    std::vector<bool> nulls(v.size());
    for (size_t i = 0; i < v.size(); i++) {
        nulls[i] = !v[i].has_value();
        values[i] = v[i] ? Int32GetDatum(*v[i]) : (Datum) 0;
    }
    return {INT4ARRAYOID, build_array(INT4OID, values, nulls), false};
}

Param bool_array_param(const std::vector<bool> &v)
{
    std::vector<Datum> values(v.size());
    std::vector<bool> nulls(v.size(), false);
    for (size_t i = 0; i < v.size(); i++)
        values[i] = BoolGetDatum(v[i]);
    return {BOOLARRAYOID, build_array(BOOLOID, values, nulls), false};
}

Param timestamptz_array_param(const std::vector<std::optional<double>> &v)
{
    std::vector<Datum> values(v.size());
    std::vector<bool> nulls(v.size());
    for (size_t i = 0; i < v.size(); i++) {
        nulls[i] = !v[i].has_value();
        if (v[i]) {
            /* PostgreSQL's epoch is 2000-01-01; timestamps are microseconds */
            double us = (*v[i] - ((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)) * USECS_PER_SEC;
            values[i] = TimestampTzGetDatum((TimestampTz) us);
        }
    }
    return {TIMESTAMPTZARRAYOID, build_array(TIMESTAMPTZOID, values, nulls), false};
}

Param timestamptz_param(TimestampTz t)
{
    return {TIMESTAMPTZOID, TimestampTzGetDatum(t), false};
}

Param timestamptz_us_param(const Text &unix_us)
{
    if (!unix_us || unix_us->empty())
        return {TIMESTAMPTZOID, (Datum) 0, true};
    size_t used = 0;
    long long us = 0;
    try {
        us = std::stoll(*unix_us, &used);
    } catch (const std::exception &) {
        used = 0;
    }
    if (used == 0 || used != unix_us->size())
        throw Error(ERRCODE_INTERNAL_ERROR, "invalid internal time value \"" + *unix_us + "\"",
                    "ig_identity carries times as microseconds since the Unix epoch.", "");
    const long long offset = (long long) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
    return timestamptz_param((TimestampTz) (us - offset));
}

Param jsonb_param(const std::string &json_text)
{
    Datum d = pg_call([&] {
        return DirectFunctionCall1(jsonb_in, CStringGetDatum(pnstrdup(json_text.data(), json_text.size())));
    });
    return {JSONBOID, d, false};
}

/* Executes under pg_call; leaves the result in SPI_tuptable. */
static int execute(const char *sql, const std::vector<Param> &params, bool read_only)
{
    const int n = (int) params.size();
    std::vector<Oid> types(n);
    std::vector<Datum> values(n);
    std::vector<char> nulls(n);
    for (int i = 0; i < n; i++) {
        types[i] = params[i].type;
        values[i] = params[i].value;
        nulls[i] = params[i].isnull ? 'n' : ' ';
    }
    Oid *tp = types.data();
    Datum *vp = values.data();
    char *np = nulls.data();
    int rc = pg_call([&] { return SPI_execute_with_args(sql, n, tp, vp, np, read_only, 0); });
    if (rc < 0)
        throw Error(ERRCODE_INTERNAL_ERROR, "could not run an ig_identity statement",
                    "SPI_execute_with_args returned " + std::to_string(rc) + ".");
    return rc;
}

std::vector<Row> spi_query(const char *sql, const std::vector<Param> &params, bool read_only)
{
    execute(sql, params, read_only);
    std::vector<Row> rows;
    SPITupleTable *tt = SPI_tuptable;
    if (tt == nullptr)
        return rows;
    const uint64 nrows = SPI_processed;
    const int ncols = tt->tupdesc->natts;
    rows.reserve(nrows);
    for (uint64 r = 0; r < nrows; r++) {
        Row row;
        row.reserve(ncols);
        for (int c = 1; c <= ncols; c++) {
            char *v = pg_call([&] { return SPI_getvalue(tt->vals[r], tt->tupdesc, c); });
            if (v == nullptr)
                row.emplace_back(std::nullopt);
            else
                row.emplace_back(std::string(v));
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

uint64 spi_exec(const char *sql, const std::vector<Param> &params)
{
    execute(sql, params, false);
    return SPI_processed;
}

} // namespace igid::pg
