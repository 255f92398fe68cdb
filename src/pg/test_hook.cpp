/*
 * test_hook.cpp — the ig_identity.test_hook failure points (see test_hook.h).
 */
#include "pg/test_hook.h"

#include "pg/boundary.h"

extern "C" {
#include "utils/guc.h"
}

#include <cstring>
#include <new>
#include <string>

namespace igid::pg {

static char *test_hook = nullptr;

void define_test_hook()
{
    DefineCustomStringVariable("ig_identity.test_hook",
                               "Failure point for ig_identity's own tests (empty: none).", nullptr,
                               &test_hook, "", PGC_SUSET,
                               GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_SUPERUSER_ONLY, nullptr,
                               nullptr, nullptr);
}

static bool hook_is(const char *point)
{
    return test_hook != nullptr && strcmp(test_hook, point) == 0;
}

void test_hook_error(const char *point)
{
    if (hook_is(point))
        throw Error(ERRCODE_INTERNAL_ERROR, std::string("ig_identity test hook \"") + point + "\" failed on purpose",
                    "ig_identity.test_hook is set.", "Reset ig_identity.test_hook.");
}

void test_hook_bad_alloc(const char *point)
{
    if (hook_is(point))
        throw std::bad_alloc();
}

} // namespace igid::pg
