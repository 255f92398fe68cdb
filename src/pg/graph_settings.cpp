/*
 * graph_settings.cpp — defines ig_identity.verify_on_connect and
 * ig_identity.sync_failure (see graph_settings.h).
 */
#include "pg/graph_settings.h"

extern "C" {
#include "postgres.h"
#include "utils/guc.h"
}

namespace igid::pg {

GraphSettings graph_settings = {true, (int) SyncFailureLevel::error};

static const struct config_enum_entry sync_failure_options[] = {
    {"error", (int) SyncFailureLevel::error, false},
    {"warning", (int) SyncFailureLevel::warning, false},
    {nullptr, 0, false},
};

/* Both are the caller's own choice about the caller's own call: any role
 * may set them (neither decides where a token goes). */
void define_graph_settings()
{
    DefineCustomBoolVariable("ig_identity.verify_on_connect",
                             "ig_connect_account checks the token and ids with one /me call.",
                             "Off connects without asking the Graph API (offline setups, tests).",
                             &graph_settings.verify_on_connect, true, PGC_USERSET, 0, nullptr,
                             nullptr, nullptr);
    DefineCustomEnumVariable("ig_identity.sync_failure",
                             "What ig_sync_inbox does when an account's sync failed.",
                             "error raises it (nothing of the call is kept); warning records "
                             "it in ig_identity_status and the run history and returns.",
                             &graph_settings.sync_failure_level, (int) SyncFailureLevel::error,
                             sync_failure_options, PGC_USERSET, 0, nullptr, nullptr, nullptr);
}

} // namespace igid::pg
