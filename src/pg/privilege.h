/*
 * privilege.h — who a statement runs as.
 *
 * Two roles, never mixed in one statement:
 *  - the extension's owner, for the private tables (tokens, account state,
 *    the refresh queue), so callers need only EXECUTE on the SQL functions;
 *  - the inbox table's owner, for every write to an inbox table, under
 *    SECURITY_RESTRICTED_OPERATION, as PostgreSQL's own maintenance commands
 *    (VACUUM, CREATE INDEX, REFRESH MATERIALIZED VIEW) run the table owner's
 *    code.  The app's triggers, defaults, constraints and index expressions
 *    on its tables therefore never run with more rights than the role that
 *    attached them, even when the worker (a superuser) saves an identity.
 */
#pragma once

extern "C" {
#include "postgres.h"
}

namespace igid::pg {

/* While alive, statements run as `user`, with `sec_flags` added to the
 * security context (restored by the destructor, which cannot fail; a
 * transaction abort restores it too). */
class AsUser {
public:
    AsUser(Oid user, int sec_flags);
    ~AsUser();
    AsUser(const AsUser &) = delete;
    AsUser &operator=(const AsUser &) = delete;

private:
    Oid saved_user_;
    int saved_sec_context_;
};

/* While alive, statements run as the extension's owner. */
class AsExtensionOwner : public AsUser {
public:
    AsExtensionOwner();
};

/* While alive, statements run as the owner of the inbox table `relname` (in
 * the extension's schema) in a security-restricted operation. */
class AsInboxOwner : public AsUser {
public:
    explicit AsInboxOwner(const char *relname);
};

/* Whether inbox table `relname` (in the extension's schema) is a
 * declaratively partitioned table; false when absent. */
bool inbox_is_partitioned(const char *relname);

/* The role that owns the ig_identity extension in this database. */
Oid extension_owner();

} // namespace igid::pg
