/*
 * secrets.h — secrets at rest: the key files, sealing a secret before it is
 * stored and opening it where it is used.
 *
 * Secrets (access tokens; later app secrets) are stored as AES-256-GCM
 * envelopes (core/secret_box.h) in bytea columns.  The key comes from the
 * file ig_identity.key_file names, readable by the server's OS user only;
 * ig_identity.previous_key_file holds the key being rotated away from.
 * Every secret column is listed once, in kSecretColumns: sealing, opening
 * and ig_identity_rotate_key() all go by that list.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace igid::pg {

/* One column holding sealed secrets.  The associated data of a value is
 * context_prefix || the row's key, so a value does not open in another row
 * or another column. */
struct SecretColumn {
    const char *table;          /* schema-qualified */
    const char *column;         /* bytea */
    const char *key_column;     /* text, the row's identity */
    const char *context_prefix; /* e.g. "access_token:" */
    const char *what;           /* for messages: "access token" */
};

extern const std::vector<SecretColumn> kSecretColumns;

/* The column entry for "access_token" etc.; throws if unknown. */
const SecretColumn &secret_column(const std::string &column);

void define_secret_settings();

/* Seals plain for storage under the current key.  Without a key: the plain
 * envelope when ig_identity.allow_unencrypted_tokens is on, else an error
 * (55000) whose hint names ig_identity.key_file. */
std::vector<std::uint8_t> seal_for_storage(const std::string &plain, const std::string &context);

/* Opens a stored value (hex of the bytea) of column `col` in the row whose
 * key is row_key.  Errors name the row and the key id, never the secret. */
std::string open_stored_secret(const SecretColumn &col, const std::string &row_key,
                               const std::string &stored_hex);

} // namespace igid::pg
