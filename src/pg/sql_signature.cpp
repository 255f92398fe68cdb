/*
 * sql_signature.cpp — ig_verify_webhook_signature(raw_body bytea,
 * signature_header text, app_secret text): lets an app that hands the raw
 * webhook body to the database check Meta's X-Hub-Signature-256 before
 * trusting (or ingesting) it.
 */
#include "core/webhook_signature.h"
#include "pg/boundary.h"

extern "C" {
#include "utils/builtins.h"
}

using namespace igid;
using namespace igid::pg;

/*
 * Returns true only for a header that matches HMAC-SHA256(app_secret,
 * raw_body); a missing or malformed header is false (an unsigned or forged
 * delivery), a missing body or secret is a caller error.
 */
IGID_FUNCTION(ig_verify_webhook_signature)
{
    if (PG_ARGISNULL(0))
        throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "raw_body must not be NULL",
                    "Without the body there is nothing to check the signature against.",
                    "Pass the request body exactly as received, as bytea.");
    if (PG_ARGISNULL(2))
        throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, "app_secret must not be NULL",
                    "The signature is an HMAC keyed with the app secret.",
                    "Pass the app secret of the Meta app the webhook is subscribed to.");
    if (PG_ARGISNULL(1))
        return BoolGetDatum(false);
    struct Args {
        const char *body, *header, *secret;
        size_t body_len, header_len, secret_len;
    };
    Args a = pg_call([&] {
        bytea *b = PG_GETARG_BYTEA_PP(0);
        text *h = PG_GETARG_TEXT_PP(1);
        text *s = PG_GETARG_TEXT_PP(2);
        return Args{VARDATA_ANY(b), VARDATA_ANY(h), VARDATA_ANY(s),
                    (size_t) VARSIZE_ANY_EXHDR(b), (size_t) VARSIZE_ANY_EXHDR(h),
                    (size_t) VARSIZE_ANY_EXHDR(s)};
    });
    if (a.secret_len == 0)
        throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "app_secret must not be empty",
                    "The signature is an HMAC keyed with the app secret.",
                    "Pass the app secret of the Meta app the webhook is subscribed to.");
    SignatureCheck r = check_webhook_signature(std::string(a.body, a.body_len),
                                               std::string(a.header, a.header_len),
                                               std::string(a.secret, a.secret_len));
    return BoolGetDatum(r == SignatureCheck::Valid);
}
