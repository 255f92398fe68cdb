/*
 * inbox.h — every write to the app's inbox tables (instagram_user_cache,
 * instagram_conversations, instagram_messages), made as the table's owner in
 * a security-restricted operation (see privilege.h).
 *
 * The SQL that writes lives in ig_identity's SQL functions (merge_identities,
 * store_conversations, store_messages: SECURITY INVOKER, closed to PUBLIC);
 * these helpers resolve the function as the extension owner, then call it
 * through fmgr as the table's owner, who needs no access to the ig_identity
 * schema.  Must run inside with_spi.
 */
#pragma once

#include "pg/spi.h"

namespace igid::pg {

/* The one merge path for identities (the arrays of upsert_identities):
 * settles the queue and reads the account's own id as the extension owner,
 * then merges as the cache table's owner.  Returns the rows touched. */
long long upsert_identities(const Param &account, const Param &ids, const Param &usernames,
                            const Param &names, const Param &pics, const Param &statuses,
                            const Param &codes, const Param &next_fetch_at);

/* ig_identity.store_conversations as instagram_conversations' owner: the ids
 * of the conversations that are new or changed. */
std::vector<std::string> store_conversations(const std::vector<Param> &args);

/* ig_identity.store_messages as instagram_messages' owner: how many were new. */
long long store_messages(const std::vector<Param> &args);

/* Raises an ERROR unless the inbox tables are safe to read with the
 * extension owner's rights (ig_identity.check_inbox_tables); call it before
 * such reads. */
void check_inbox_tables();

} // namespace igid::pg
