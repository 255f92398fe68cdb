// account_check.h — what one /me call says about a token, and whether the
// ids given to ig_connect_account belong with it.
//
// Facebook Login (graph.facebook.com, Page token): /me is the Page; its
// instagram_business_account.id is the IG professional account the Page is
// linked to. Instagram Login (graph.instagram.com): /me's user_id is the
// professional account id (webhook entry.id, participants); its id is
// app-scoped and must never be taken for the account id.
#pragma once

#include "graph_client.h"
#include "graph_error.h"

#include <optional>
#include <string>
#include <string_view>

namespace igid {

struct MeInfo {
    std::string ig_account_id;  // instagram_business_account.id or user_id
    std::string page_id;        // facebook host only
    std::string app_scoped_id;  // instagram host only: /me's id
    std::optional<std::string> name_or_username;
};

struct MeParse {
    ParseStatus status = ParseStatus::malformed;
    MeInfo me;
    std::optional<GraphError> error;
};

// Parses the body of me_request(host) for that host's shape.
MeParse parse_me(ApiHost host, std::string_view body);

// Why the ids do not go with the token, if they do not.
enum class AccountMismatch {
    none,
    no_linked_account,   // facebook: the Page has no IG professional account linked
    other_account,       // the token speaks for another IG account
    app_scoped_id_given, // instagram: the caller passed /me's app-scoped id
    page_id_given,       // facebook: the caller passed the Page id as ig_account_id
};

AccountMismatch check_me(ApiHost host, const MeInfo &me, std::string_view ig_account_id);

} // namespace igid
