// graph_client.h — the Graph-specific request layer: which base URL an
// account uses, and the requests ig_identity makes (profile, me,
// conversations list, one conversation's messages, batch, token refresh).
// Every id is validated before it goes into a URL path; the token goes only
// into the request's bearer field, never into the URL (the documented token
// refresh is the one exception, see token_refresh_request). With an app
// secret, every request carries appsecret_proof.
#pragma once

#include "graph_error.h"
#include "http.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace igid {

enum class ApiHost { facebook, instagram };

// The Graph API version in every path unless ig_identity.graph_api_version
// says otherwise: the newest one Meta documents; kOldestGraphVersion is the
// oldest still served (it goes away in January 2027).
constexpr std::string_view kDefaultGraphVersion = "v26.0";
constexpr std::string_view kOldestGraphVersion = "v21.0";
constexpr std::string_view kProfileFields =
    "name,username,profile_pic,follower_count,is_user_follow_business,is_business_follow_user,is_verified_user";
// Asked for after a field-not-permitted answer (2018218, 2018247).
constexpr std::string_view kBasicProfileFields = "name,username,profile_pic";
constexpr std::size_t kMaxBatchItems = 50;

// "graph.facebook.com" or "graph.instagram.com"; nullopt for anything else.
std::optional<ApiHost> api_host_from_name(std::string_view name);
std::string_view api_host_name(ApiHost host);

// "vNN.N": v, 1-3 digits without a leading zero, a dot, 1-2 digits.
bool is_valid_graph_version(std::string_view version);
// Compares two valid versions numerically (v9.0 < v21.0): <0, 0, >0.
int compare_graph_versions(std::string_view a, std::string_view b);

// <base>/<version> without a trailing slash, where base is the override
// (e.g. http://127.0.0.1:8123) when not empty, else https://<api_host>.
// A version segment at the end of the override (1.0 configurations wrote
// http://host/v21.0) is replaced by `version`. The host comes only from the
// override or from the account's own api_host, never from the version.
std::string graph_base_url(std::string_view override_url, ApiHost host,
                           std::string_view version = kDefaultGraphVersion);

// Hex HMAC-SHA256 of the token keyed with the app secret (appsecret_proof).
std::string appsecret_proof(std::string_view app_secret, std::string_view token);

// Digits only, 1–32 characters: IGSIDs, IG account ids, page ids.
bool is_valid_igsid(std::string_view id);
// Conversation and message ids: [A-Za-z0-9_-] and '=', 1–512 characters.
bool is_valid_object_id(std::string_view id);

struct GraphAccount {
    std::string account_id; // ig_account_id: the key for limits and pauses
    std::string token;
    ApiHost host = ApiHost::facebook;
    std::string base_url; // from graph_base_url()
    std::string app_secret; // "" = the app does not require appsecret_proof
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

// Instagram Login only: GET <base>/refresh_access_token?grant_type=ig_refresh_token
// &access_token=<token>[&appsecret_proof=], as Meta documents it, with the
// token in the query string: the one request that may carry one there. The
// request names the token in url_secret, so the transport lets it pass and
// scrubs it (and the URL) from every error text. nullopt for facebook.
std::optional<HttpRequest> token_refresh_request(const GraphAccount &account);

struct TokenRefreshParse {
    ParseStatus status = ParseStatus::malformed;
    std::string access_token;
    long long expires_in = 0; // seconds
    std::optional<GraphError> error;
};

// {"access_token","token_type":"bearer","expires_in":N}; a token that is not
// printable ASCII without spaces, or a non-positive lifetime, is malformed.
TokenRefreshParse parse_token_refresh(std::string_view body);

} // namespace igid
