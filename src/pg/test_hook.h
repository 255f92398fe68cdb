/*
 * test_hook.h — failure points for the test suites.
 *
 * ig_identity.test_hook (superuser only, hidden from SHOW ALL and the sample
 * file) names one point where ig_identity fails on purpose, so tests can
 * prove that a failure there loses nothing and leaves PostgreSQL sane.  Empty
 * (the default) means none; production never sets it.
 */
#pragma once

namespace igid::pg {

/* Defines ig_identity.test_hook; called from _PG_init. */
void define_test_hook();

/* Throws a PostgreSQL-style Error when the hook names point. */
void test_hook_error(const char *point);

/* Throws std::bad_alloc when the hook names point (a C++ allocation failing
 * where ig_identity copies PostgreSQL data into C++ objects). */
void test_hook_bad_alloc(const char *point);

} // namespace igid::pg
