// graph_client.h — the Graph-specific request layer: which base URL an
// account uses, and the requests ig_identity makes (profile, me,
// conversations list, one conversation's messages, batch). Every id is
// validated before it goes into a URL path; the token goes only into the
// request's bearer field, never into the URL.
#pragma once

#include "http.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace igid {

enum class ApiHost { facebook, instagram };

constexpr std::string_view kGraphVersion = "v21.0";
constexpr std::string_view kProfileFields =
    "name,username,profile_pic,follower_count,is_user_follow_business,is_business_follow_user,is_verified_user";
// Asked for after a field-not-permitted answer (2018218, 2018247).
constexpr std::string_view kBasicProfileFields = "name,username,profile_pic";
constexpr std::size_t kMaxBatchItems = 50;

// "graph.facebook.com" or "graph.instagram.com"; nullopt for anything else.
std::optional<ApiHost> api_host_from_name(std::string_view name);
std::string_view api_host_name(ApiHost host);

// The override (e.g. http://127.0.0.1:8123/v21.0) when not empty, else
// https://<api_host>/v21.0; without a trailing slash.
std::string graph_base_url(std::string_view override_url, ApiHost host);

// Digits only, 1–32 characters: IGSIDs, IG account ids, page ids.
bool is_valid_igsid(std::string_view id);
// Conversation and message ids: [A-Za-z0-9_-] and '=', 1–512 characters.
bool is_valid_object_id(std::string_view id);

struct GraphAccount {
    std::string account_id; // ig_account_id: the key for limits and pauses
    std::string token;
    ApiHost host = ApiHost::facebook;
    std::string base_url; // from graph_base_url()
};

// GET /{igsid}?fields=...; nullopt when igsid is not valid.
std::optional<HttpRequest> profile_request(const GraphAccount &account, std::string_view igsid,
                                           bool basic_fields = false);

// The one /me call that tells who a token speaks for, per login flavour:
// facebook host GET /me?fields=id,name,instagram_business_account (the Page),
// instagram host GET /me?fields=user_id,username (see account_check.h).
HttpRequest me_request(const GraphAccount &account);

// Who owns an account's conversation list: with a Page token (facebook
// host) the Page (page_id when valid, else "me"), never the IG account id,
// which Meta refuses there; with an Instagram token the IG account id.
std::string conversation_list_owner(ApiHost host, std::string_view ig_account_id,
                                    std::string_view page_id = {});

// GET /{owner_id}/conversations?platform=instagram&fields=id,updated_time,participants,
//     messages.limit(20){id,created_time,from,to,message}&limit=25[&after=]
// owner_id is "me" or an id from conversation_list_owner(); the cursor is
// URL-encoded. nullopt when owner_id is not valid.
std::optional<HttpRequest> conversations_request(const GraphAccount &account, std::string_view owner_id,
                                                 std::string_view after_cursor = {});

// GET /{conversation_id}?fields=participants,messages.limit(20){id,created_time,from,to,message}
std::optional<HttpRequest> conversation_messages_request(const GraphAccount &account,
                                                         std::string_view conversation_id);

// POST / with batch=[{"method":"GET","relative_url":"{igsid}?fields=..."},...].
// nullopt for the instagram host, no ids, more than 50, or an invalid id.
std::optional<HttpRequest> batch_profiles_request(const GraphAccount &account, const std::vector<std::string> &igsids,
                                                  bool basic_fields = false);

} // namespace igid
