/*
 * result.h — building a function's composite result from C++ values.
 */
#pragma once

#include "pg/spi.h"

namespace igid::pg {

/* One output column's value: text, int, jsonb text, timestamptz text or NULL. */
struct OutValue {
    enum Kind { NUL, TEXT, INT, JSONB } kind = NUL;
    std::string text;
    long long number = 0;
    static OutValue null() { return {}; }
    static OutValue of(const Text &t) { return t ? OutValue{TEXT, *t, 0} : OutValue{}; }
    static OutValue of(long long n) { return {INT, {}, n}; }
    static OutValue json(std::string j) { return {JSONB, std::move(j), 0}; }
};

/* Forms the function's declared composite result type from the values,
 * converting each through the column type's input function. */
Datum composite_result(FunctionCallInfo fcinfo, const std::vector<OutValue> &values);

/* A text argument, or an error naming the argument when it is NULL. */
std::string text_arg(FunctionCallInfo fcinfo, int argno, const char *argname);

} // namespace igid::pg
