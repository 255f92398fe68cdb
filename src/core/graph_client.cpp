// graph_client.cpp — Graph base URLs, id checks and request builders.
#include "graph_client.h"

#include "url.h"

namespace igid {

namespace {

HttpRequest get(const GraphAccount &account, std::string path_and_query) {
    HttpRequest r;
    r.account = account.account_id;
    r.method = "GET";
    r.url = account.base_url + "/" + path_and_query;
    r.bearer_token = account.token;
    return r;
}

} // namespace

std::optional<ApiHost> api_host_from_name(std::string_view name) {
    if (name == "graph.facebook.com")
        return ApiHost::facebook;
    if (name == "graph.instagram.com")
        return ApiHost::instagram;
    return std::nullopt;
}

std::string_view api_host_name(ApiHost host) {
    return host == ApiHost::instagram ? "graph.instagram.com" : "graph.facebook.com";
}

std::string graph_base_url(std::string_view override_url, ApiHost host) {
    std::string base = override_url.empty()
                           ? "https://" + std::string(api_host_name(host)) + "/" + std::string(kGraphVersion)
                           : std::string(override_url);
    while (!base.empty() && base.back() == '/')
        base.pop_back();
    return base;
}

bool is_valid_igsid(std::string_view id) {
    if (id.empty() || id.size() > 32)
        return false;
    for (char c : id)
        if (c < '0' || c > '9')
            return false;
    return true;
}

bool is_valid_object_id(std::string_view id) {
    if (id.empty() || id.size() > 512)
        return false;
    for (char c : id) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-' || c == '=';
        if (!ok)
            return false;
    }
    return true;
}

std::optional<HttpRequest> profile_request(const GraphAccount &account, std::string_view igsid, bool basic_fields) {
    if (!is_valid_igsid(igsid))
        return std::nullopt;
    std::string_view fields = basic_fields ? kBasicProfileFields : kProfileFields;
    return get(account, std::string(igsid) + "?fields=" + std::string(fields));
}

// Facebook Login: `me` is the Page, whose linked IG account says which
// account the token manages. Instagram Login: `user_id` is the professional
// account; `id` is app-scoped.
HttpRequest me_request(const GraphAccount &account) {
    return get(account, account.host == ApiHost::facebook ? "me?fields=id,name,instagram_business_account"
                                                          : "me?fields=user_id,username");
}

std::string conversation_list_owner(ApiHost host, std::string_view ig_account_id, std::string_view page_id) {
    if (host == ApiHost::facebook)
        return is_valid_igsid(page_id) ? std::string(page_id) : std::string("me");
    return is_valid_igsid(ig_account_id) ? std::string(ig_account_id) : std::string("me");
}

std::optional<HttpRequest> conversations_request(const GraphAccount &account, std::string_view owner_id,
                                                 std::string_view after_cursor) {
    if (owner_id != "me" && !is_valid_igsid(owner_id))
        return std::nullopt;
    // The newest messages ride along (field expansion): one call per page.
    // Braces are not valid in a URL; they travel percent-encoded.
    std::string q = std::string(owner_id) +
                    "/conversations?platform=instagram&fields=id,updated_time,participants,"
                    "messages.limit(20)%7Bid,created_time,from,to,message%7D&limit=25";
    if (!after_cursor.empty())
        q += "&after=" + url_encode(after_cursor);
    return get(account, std::move(q));
}

std::optional<HttpRequest> conversation_messages_request(const GraphAccount &account,
                                                         std::string_view conversation_id) {
    if (!is_valid_object_id(conversation_id))
        return std::nullopt;
    // Braces are not valid in a URL; they travel percent-encoded.
    return get(account, url_encode(conversation_id) +
                            "?fields=participants,messages.limit(20)%7Bid,created_time,from,to,message%7D");
}

std::optional<HttpRequest> batch_profiles_request(const GraphAccount &account, const std::vector<std::string> &igsids,
                                                  bool basic_fields) {
    if (account.host != ApiHost::facebook || igsids.empty() || igsids.size() > kMaxBatchItems)
        return std::nullopt;
    std::string_view fields = basic_fields ? kBasicProfileFields : kProfileFields;
    // Ids are digits and fields are fixed, so the JSON needs no escaping.
    std::string batch = "[";
    for (std::size_t i = 0; i < igsids.size(); ++i) {
        if (!is_valid_igsid(igsids[i]))
            return std::nullopt;
        if (i > 0)
            batch += ",";
        batch += R"({"method":"GET","relative_url":")" + igsids[i] + "?fields=" + std::string(fields) + "\"}";
    }
    batch += "]";
    HttpRequest r;
    r.account = account.account_id;
    r.method = "POST";
    r.url = account.base_url + "/";
    r.body = "batch=" + url_encode(batch) + "&include_headers=true";
    r.bearer_token = account.token;
    return r;
}

} // namespace igid
