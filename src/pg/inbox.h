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

#include <optional>
#include <utility>

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

/* ig_identity.clear_unsent_messages as instagram_messages' owner: clears
 * the text of these unsent messages (rows kept); how many were cleared. */
long long clear_unsent_messages(const std::string &account, const std::vector<Text> &mids);

/*
 * Reads, as the table's owner in a security-restricted operation too:
 * planning or running a read can run code the owner attached to the table
 * (index and statistics expressions, policies).  Each reader returns plain
 * values that the extension owner's statements then use.
 */

/* The participants worth refreshing of these (account, self id) pairs: the
 * other party of every conversation and every sender or recipient of
 * messages since messages_since, never the account itself; sorted. */
std::vector<std::pair<std::string, std::string>>
participants_of(const std::vector<std::pair<std::string, std::string>> &accounts, TimestampTz messages_since);

/* Queues (reason `reason`) those of an account's participants whose cached
 * identity wants a fetch; returns how many were queued. */
long long enqueue_participants(const std::string &account, const std::vector<Text> &ids,
                               const std::vector<bool> &inbound, const std::string &reason);

/* The worker's stale sweep: queues at most `limit` stale or missing
 * identities of callable accounts; returns how many. */
long long queue_stale(int stale_after_s, int limit);

/* ig_identity.cache_row as the cache's owner: an ig_identity_profile
 * composite Datum (in the current memory context), nullopt if none. */
std::optional<Datum> cache_row(const std::string &account, const std::string &user);

} // namespace igid::pg
