/*
 * result.cpp — composite results and argument access for SQL functions.
 */
#include "pg/result.h"

extern "C" {
#include "access/htup_details.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
}

namespace igid::pg {

Datum composite_result(FunctionCallInfo fcinfo, const std::vector<OutValue> &values)
{
    const int n = (int) values.size();
    std::vector<Datum> datums(n);
    std::vector<char> nulls(n, 0);
    TupleDesc tupdesc = pg_call([&] {
        TupleDesc td;
        if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("function returning a record called in a context that cannot accept it")));
        return BlessTupleDesc(td);
    });
    if (tupdesc->natts != n)
        throw Error(ERRCODE_DATATYPE_MISMATCH, "ig_identity result has the wrong number of columns",
                    "Expected " + std::to_string(tupdesc->natts) + ", built " + std::to_string(n) + ".",
                    "Run ALTER EXTENSION ig_identity UPDATE so the SQL and the library match.");
    for (int i = 0; i < n; i++) {
        const OutValue &v = values[i];
        if (v.kind == OutValue::NUL) {
            nulls[i] = 1;
            continue;
        }
        std::string text = v.kind == OutValue::INT ? std::to_string(v.number) : v.text;
        Oid typid = TupleDescAttr(tupdesc, i)->atttypid;
        int32 typmod = TupleDescAttr(tupdesc, i)->atttypmod;
        const char *s = text.c_str();
        datums[i] = pg_call([&] {
            Oid infunc, ioparam;
            getTypeInputInfo(typid, &infunc, &ioparam);
            return OidInputFunctionCall(infunc, const_cast<char *>(s), ioparam, typmod);
        });
    }
    Datum *dp = datums.data();
    char *np = nulls.data();
    return pg_call([&] {
        bool *isnull = (bool *) palloc(sizeof(bool) * (n > 0 ? n : 1));
        for (int i = 0; i < n; i++)
            isnull[i] = np[i] != 0;
        return HeapTupleGetDatum(heap_form_tuple(tupdesc, dp, isnull));
    });
}

std::string text_arg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
    if (PG_ARGISNULL(argno))
        throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, std::string(argname) + " must not be NULL", "",
                    "Pass the value as text.");
    char *s = pg_call([&] { return text_to_cstring(PG_GETARG_TEXT_PP(argno)); });
    std::string out(s);
    pg_call([&] { pfree(s); });
    return out;
}

} // namespace igid::pg
