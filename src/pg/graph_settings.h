/*
 * graph_settings.h — the ig_identity.* settings about talking to Meta's
 * real Graph API: checking a token at connect time, what a sync whose
 * calls all failed does, the API version in every path, and when the worker
 * refreshes Instagram Login tokens.  Apart from settings.h so that the two grow
 * independently.
 */
#pragma once

#include "core/graph_client.h"

#include <string>

namespace igid::pg {

enum class SyncFailureLevel { error, warning };

struct GraphSettings {
    bool verify_on_connect;    /* ig_connect_account makes one /me call */
    int sync_failure_level;    /* a SyncFailureLevel */
    char *graph_api_version;   /* "vNN.N", at least kOldestGraphVersion */
    int token_refresh_age_s;   /* Instagram Login tokens older than this are refreshed */
};

extern GraphSettings graph_settings;

/*
 * What a request needs of an account: its host's base URL (graph_api_url
 * or the account's own api_host, then graph_api_version), its token and,
 * when its app requires one, the app secret for appsecret_proof.  An
 * unknown api_host counts as graph.facebook.com, as everywhere.
 */
igid::GraphAccount graph_account(const std::string &ig_account_id, const std::string &token,
                                 const std::string &api_host, const std::string &app_secret);

/* Defines these GUCs; called once from _PG_init. */
void define_graph_settings();

} // namespace igid::pg
