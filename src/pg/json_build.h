/*
 * json_build.h — building JSON with jansson inside the server.
 *
 * The postgres executable exports an SQL-callable C function named
 * json_object, and a module's undefined symbols bind to the executable
 * first: a call to jansson's json_object() from src/pg would run
 * PostgreSQL's function instead.  jansson's own internal calls bind inside
 * libjansson, so objects are created through json_pack("{}").  Code in
 * src/pg must use new_json_object(), never json_object().
 */
#pragma once

#include <jansson.h>

namespace igid::pg {

inline json_t *new_json_object()
{
    return json_pack("{}");
}

} // namespace igid::pg

/* Any json_object() call after this header fails to compile. */
#define json_object() json_object_is_captured_by_postgres_use_new_json_object()
