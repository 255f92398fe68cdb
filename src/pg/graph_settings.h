/*
 * graph_settings.h — the ig_identity.* settings about talking to Meta's
 * real Graph API: checking a token at connect time, and what a sync whose
 * calls all failed does.  Apart from settings.h so that the two grow
 * independently.
 */
#pragma once

namespace igid::pg {

enum class SyncFailureLevel { error, warning };

struct GraphSettings {
    bool verify_on_connect;    /* ig_connect_account makes one /me call */
    int sync_failure_level;    /* a SyncFailureLevel */
};

extern GraphSettings graph_settings;

/* Defines these GUCs; called once from _PG_init. */
void define_graph_settings();

} // namespace igid::pg
