/*
 * privilege.h — who a statement runs as.
 *
 * The fetch functions run as their caller, so the app's own triggers on the
 * inbox tables never run with more rights than the caller has.  Only the
 * statements on the extension's private tables (tokens, account state, the
 * refresh queue) switch to the extension's owner, for their duration.
 */
#pragma once

extern "C" {
#include "postgres.h"
}

namespace igid::pg {

/* While alive, statements run as the extension's owner (restored by the
 * destructor, which cannot fail; a transaction abort restores it too). */
class AsExtensionOwner {
public:
    AsExtensionOwner();
    ~AsExtensionOwner();
    AsExtensionOwner(const AsExtensionOwner &) = delete;
    AsExtensionOwner &operator=(const AsExtensionOwner &) = delete;

private:
    Oid saved_user_;
    int saved_sec_context_;
};

/* The role that owns the ig_identity extension in this database. */
Oid extension_owner();

} // namespace igid::pg
