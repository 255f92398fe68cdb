/*
 * secrets.cpp — key files, sealing and opening stored secrets, and the SQL
 * functions ig_identity.seal_secret() and ig_identity_rotate_key().
 */
#include "core/secret_box.h"
#include "pg/privilege.h"
#include "pg/result.h"
#include "pg/secrets.h"
#include "pg/spi.h"

extern "C" {
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/errcodes.h"
#include "utils/guc.h"
}

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <cerrno>
#include <cstring>
#include <optional>

using namespace igid;

namespace igid::pg {

/* The one list of secret columns.  A new secret column is one line here
 * (and its bytea column in the SQL). */
const std::vector<SecretColumn> kSecretColumns = {
    {"ig_identity.account_tokens", "access_token", "ig_account_id", "access_token:", "access token"},
    {"ig_identity.account_tokens", "app_secret", "ig_account_id", "app_secret:", "app secret"},
};

static char *key_file = nullptr;
static char *previous_key_file = nullptr;
static bool allow_unencrypted = false;

const SecretColumn &secret_column(const std::string &column)
{
    for (const auto &c : kSecretColumns)
        if (column == c.column)
            return c;
    throw Error(ERRCODE_INTERNAL_ERROR, "unknown secret column \"" + column + "\"");
}

void define_secret_settings()
{
    DefineCustomStringVariable(
        "ig_identity.key_file",
        "File holding the key that encrypts stored access tokens (32 bytes, raw or as 64 hex digits).",
        "Readable by the server's OS user only. Empty: no key, and ig_connect_account refuses.",
        &key_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "ig_identity.previous_key_file",
        "File holding the previous key, during a key rotation.",
        "Values sealed with it still open; new values are sealed with ig_identity.key_file. "
        "ig_identity_rotate_key() re-seals them all with the current key.",
        &previous_key_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "ig_identity.allow_unencrypted_tokens",
        "Whether access tokens may be stored and read unencrypted when no key is configured.",
        "For a migration or a test only: off, a server without a key refuses to store tokens.",
        &allow_unencrypted, false, PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, nullptr, nullptr);
}

/* Reads the key of the file `setting` names; nullopt when the setting is
 * empty.  Refuses a file others could read, or one that is not a key. */
static std::optional<SecretKey> load_key(const char *setting, const char *path)
{
    if (path == nullptr || path[0] == '\0')
        return std::nullopt;
    const std::string name = setting;
    int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        const int e = errno;
        throw Error(ERRCODE_CONFIG_FILE_ERROR, "could not open the key file that " + name + " names",
                    std::string(strerror(e)) + ".",
                    "Check the path in " + name + " and that the server's OS user can read the file.");
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error(ERRCODE_CONFIG_FILE_ERROR, "the key file that " + name + " names is not a regular file");
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0 || st.st_uid != geteuid()) {
        ::close(fd);
        throw Error(ERRCODE_CONFIG_FILE_ERROR,
                    "the key file that " + name + " names is accessible to other users",
                    "A key file must be owned by the server's OS user, with no group or other permissions.",
                    "chmod 600 the file and chown it to the server's OS user (for example postgres).");
    }
    std::string contents;
    char buf[256];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        contents.append(buf, (size_t) n);
        if (contents.size() > 1024)
            break;
    }
    ::close(fd);
    explicit_bzero(buf, sizeof buf);
    auto key = key_from_file_contents(contents);
    if (!contents.empty())
        explicit_bzero(&contents[0], contents.size());
    if (!key)
        throw Error(ERRCODE_CONFIG_FILE_ERROR, "the key file that " + name + " names holds no key",
                    "A key file holds 32 bytes, or 64 hexadecimal digits and an optional line break.",
                    "Create one with: openssl rand -hex 32 > FILE; chmod 600 FILE");
    return key;
}

namespace {
struct Keys {
    std::optional<SecretKey> current, previous;
    std::vector<const SecretKey *> list() const
    {
        return {current ? &*current : nullptr, previous ? &*previous : nullptr};
    }
    std::string describe() const
    {
        std::string s = "ig_identity.key_file holds ";
        s += current ? "key " + current->id_hex() : std::string("no key");
        s += "; ig_identity.previous_key_file holds ";
        s += previous ? "key " + previous->id_hex() : std::string("none");
        return s + ".";
    }
};

/* Read at each use, so a reload (or a new file at the same path) takes
 * effect at once; the files are tiny. */
Keys load_keys()
{
    Keys k;
    k.current = load_key("ig_identity.key_file", key_file);
    k.previous = load_key("ig_identity.previous_key_file", previous_key_file);
    return k;
}

const char *const kNoKeyHint =
    "Create a key file (openssl rand -hex 32 > FILE; chmod 600 FILE, owned by the server's OS user), "
    "set ig_identity.key_file to its path in postgresql.conf, reload the configuration, and try again.";

Error no_key_error()
{
    return Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "no encryption key is configured for ig_identity",
                 "Access tokens are stored encrypted with the key that ig_identity.key_file names, and it is empty.",
                 kNoKeyHint);
}

std::vector<std::uint8_t> seal_with(const Keys &keys, const std::string &plain, const std::string &context)
{
    if (keys.current)
        return seal(*keys.current, plain, context);
    if (allow_unencrypted)
        return plain_envelope(plain);
    throw no_key_error();
}

/* Opens a value, or throws an error naming the row and key id. */
std::string open_with(const Keys &keys, const SecretColumn &col, const std::string &row_key,
                      const std::vector<std::uint8_t> &env, OpenStatus *status_out = nullptr)
{
    OpenResult r = open(keys.list(), env, col.context_prefix + row_key);
    if (status_out)
        *status_out = r.status;
    const std::string whose = std::string("the stored ") + col.what + " of \"" + row_key + "\"";
    switch (r.status) {
    case OpenStatus::Ok:
        return std::move(r.secret);
    case OpenStatus::Plain:
        if (allow_unencrypted || status_out)
            return std::move(r.secret);
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, whose + " is not encrypted",
                    "It was stored while no key was configured, and ig_identity.allow_unencrypted_tokens is off.",
                    "Set ig_identity.key_file and run SELECT ig_identity_rotate_key() to encrypt it, or set "
                    "ig_identity.allow_unencrypted_tokens = on for the migration.");
    case OpenStatus::UnknownKey:
        /* the five-argument ig_connect_account keeps the stored app secret
         * (and opens it): only the six-argument one replaces it */
        throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    whose + " is encrypted with key " + r.key_id_hex + ", which this server does not have",
                    keys.describe() + " The stored value is kept as it is.",
                    "Point ig_identity.key_file (or ig_identity.previous_key_file) at the file of key " +
                        r.key_id_hex + " and reload, or connect the account again with ig_connect_account" +
                        (std::strcmp(col.column, "app_secret") == 0
                             ? std::string(", the six-argument form, passing the app secret again.")
                             : std::string(".")));
    case OpenStatus::Corrupt:
        throw Error(ERRCODE_DATA_CORRUPTED, whose + " does not decrypt with key " + r.key_id_hex,
                    "The value was altered, or copied from another row; it is bound to its own row.",
                    "Connect the account again with ig_connect_account.");
    case OpenStatus::BadFormat:
        break;
    }
    throw Error(ERRCODE_DATA_CORRUPTED, whose + " is not an ig_identity encrypted value",
                "Its first byte is neither a known envelope version nor the unencrypted marker.",
                "Connect the account again with ig_connect_account.");
}
} // namespace

std::vector<std::uint8_t> seal_for_storage(const std::string &plain, const std::string &context)
{
    return seal_with(load_keys(), plain, context);
}

std::string open_stored_secret(const SecretColumn &col, const std::string &row_key, const std::string &stored_hex)
{
    auto env = from_hex(stored_hex);
    if (!env)
        throw Error(ERRCODE_DATA_CORRUPTED, std::string("the stored ") + col.what + " of \"" + row_key +
                                                "\" could not be read");
    return open_with(load_keys(), col, row_key, *env);
}

static Datum bytea_datum(const std::vector<std::uint8_t> &bytes)
{
    const std::uint8_t *p = bytes.data();
    const size_t n = bytes.size();
    return pg_call([&] {
        bytea *b = (bytea *) palloc(VARHDRSZ + n);
        SET_VARSIZE(b, VARHDRSZ + n);
        memcpy(VARDATA(b), p, n);
        return PointerGetDatum(b);
    });
}

} // namespace igid::pg

using namespace igid::pg;

/*
 * ig_identity.seal_secret(plain text, context text) RETURNS bytea — the
 * envelope to store; private (ig_connect_account and the update script).
 */
IGID_FUNCTION(ig_seal_secret)
{
    std::string plain = text_arg(fcinfo, 0, "plain");
    const std::string context = text_arg(fcinfo, 1, "context");
    auto env = seal_for_storage(plain, context);
    explicit_bzero(&plain[0], plain.size());
    return bytea_datum(env);
}

/*
 * ig_identity_rotate_key() RETURNS bigint — re-seals every stored secret
 * that is not under the current key (sealed with the previous key, or
 * stored unencrypted) with the current key; returns how many it re-sealed.
 * Superuser only.  One value that does not open stops it all, and the
 * transaction keeps every value as it was.
 */
IGID_FUNCTION(ig_rotate_key)
{
    if (!pg_call([] { return superuser(); }))
        throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied to rotate the ig_identity key", "",
                    "Only a superuser may run ig_identity_rotate_key().");
    Keys keys = load_keys();
    if (!keys.current)
        throw no_key_error();
    long long resealed = 0;
    AsExtensionOwner owner;
    with_spi([&] {
        for (const SecretColumn &col : kSecretColumns) {
            const std::string select = std::string("SELECT ") + col.key_column + ", pg_catalog.encode(" +
                                       col.column + ", 'hex') FROM " + col.table + " WHERE " + col.column +
                                       " IS NOT NULL ORDER BY " +
                                       col.key_column + " COLLATE \"C\" FOR UPDATE";
            const std::string update = std::string("UPDATE ") + col.table + " SET " + col.column +
                                       " = pg_catalog.decode($2, 'hex') WHERE " + col.key_column +
                                       " OPERATOR(pg_catalog.=) $1";
            for (auto &row : spi_query(select.c_str(), {}, false)) {
                const std::string row_key = row[0].value_or("");
                auto env = from_hex(row[1].value_or(""));
                if (!env)
                    throw Error(ERRCODE_DATA_CORRUPTED, std::string("the stored ") + col.what + " of \"" +
                                                            row_key + "\" could not be read");
                if (envelope_key_id(*env) == keys.current->id_hex())
                    continue;
                OpenStatus status;
                std::string plain = open_with(keys, col, row_key, *env, &status);
                auto sealed = seal(*keys.current, plain, col.context_prefix + row_key);
                explicit_bzero(&plain[0], plain.size());
                spi_exec(update.c_str(),
                         {text_param(row_key), text_param(to_hex(sealed.data(), sealed.size()))});
                resealed++;
            }
        }
    });
    PG_RETURN_INT64(resealed);
}

/*
 * ig_identity.secret_matches(column text, row_key text, stored bytea,
 * candidate text) RETURNS boolean — whether a stored value opens to
 * candidate (constant-time comparison): how a superuser checks which token
 * is stored without any function returning one.  A value that does not open
 * raises the same errors as its use would.  Private.
 */
IGID_FUNCTION(ig_secret_matches)
{
    const SecretColumn &col = secret_column(text_arg(fcinfo, 0, "column"));
    const std::string row_key = text_arg(fcinfo, 1, "row_key");
    if (PG_ARGISNULL(2))
        throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "stored must not be NULL");
    std::string candidate = text_arg(fcinfo, 3, "candidate");
    std::vector<std::uint8_t> env;
    /* sized outside pg_call (resize can throw), filled inside */
    const size_t n = pg_call([&] { return (size_t) VARSIZE_ANY_EXHDR(PG_GETARG_BYTEA_PP(2)); });
    env.resize(n);
    std::uint8_t *dst = env.data();
    pg_call([&] { memcpy(dst, VARDATA_ANY(PG_GETARG_BYTEA_PP(2)), n); });
    std::string plain = open_with(load_keys(), col, row_key, env);
    const bool same = plain.size() == candidate.size() &&
                      CRYPTO_memcmp(plain.data(), candidate.data(), plain.size()) == 0;
    explicit_bzero(&plain[0], plain.size());
    explicit_bzero(&candidate[0], candidate.size());
    PG_RETURN_BOOL(same);
}
