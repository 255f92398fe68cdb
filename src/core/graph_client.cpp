// graph_client.cpp — Graph base URLs, id checks and request builders.
#include "graph_client.h"

#include "json.h"
#include "url.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cctype>

namespace igid {

namespace {

// "&appsecret_proof=<hex>" when the account's app has a secret, else "".
std::string proof_param(const GraphAccount &account, char sep) {
    if (account.app_secret.empty())
        return {};
    return std::string(1, sep) + "appsecret_proof=" + appsecret_proof(account.app_secret, account.token);
}

HttpRequest get(const GraphAccount &account, std::string path_and_query) {
    HttpRequest r;
    r.account = account.account_id;
    r.method = "GET";
    const char sep = path_and_query.find('?') == std::string::npos ? '?' : '&';
    r.url = account.base_url + "/" + path_and_query + proof_param(account, sep);
    r.bearer_token = account.token;
    return r;
}

// The digits of a valid version: "v26.0" -> (26, 0).
std::pair<int, int> version_numbers(std::string_view v) {
    int major = 0, minor = 0;
    std::size_t i = 1;
    for (; i < v.size() && v[i] != '.'; ++i)
        major = major * 10 + (v[i] - '0');
    for (++i; i < v.size(); ++i)
        minor = minor * 10 + (v[i] - '0');
    return {major, minor};
}

} // namespace

bool is_valid_graph_version(std::string_view v) {
    if (v.size() < 4 || v[0] != 'v')
        return false;
    std::size_t dot = v.find('.');
    if (dot == std::string_view::npos || dot < 2 || dot > 4 || v.size() - dot - 1 < 1 || v.size() - dot - 1 > 2)
        return false;
    if (v[1] == '0')
        return false;
    for (std::size_t i = 1; i < v.size(); ++i)
        if (i != dot && !std::isdigit(static_cast<unsigned char>(v[i])))
            return false;
    return true;
}

int compare_graph_versions(std::string_view a, std::string_view b) {
    auto x = version_numbers(a), y = version_numbers(b);
    if (x == y)
        return 0;
    return x < y ? -1 : 1;
}

std::string appsecret_proof(std::string_view app_secret, std::string_view token) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), app_secret.data(), static_cast<int>(app_secret.size()),
              reinterpret_cast<const unsigned char *>(token.data()), token.size(), mac, &mac_len))
        return {};
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(mac_len * 2);
    for (unsigned int i = 0; i < mac_len; ++i) {
        out.push_back(kHex[mac[i] >> 4]);
        out.push_back(kHex[mac[i] & 0xF]);
    }
    OPENSSL_cleanse(mac, sizeof mac);
    return out;
}

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

std::string graph_base_url(std::string_view override_url, ApiHost host, std::string_view version) {
    std::string base = override_url.empty() ? "https://" + std::string(api_host_name(host)) : std::string(override_url);
    while (!base.empty() && base.back() == '/')
        base.pop_back();
    // a version that ends the override's path gives way to the configured one
    const std::size_t slash = base.rfind('/');
    const std::size_t scheme_end = base.find("://");
    if (slash != std::string::npos && (scheme_end == std::string::npos || slash > scheme_end + 2) &&
        is_valid_graph_version(std::string_view(base).substr(slash + 1)))
        base.erase(slash);
    return base + "/" + std::string(version.empty() ? kDefaultGraphVersion : version);
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
    r.body = "batch=" + url_encode(batch) + "&include_headers=true" + proof_param(account, '&');
    r.bearer_token = account.token;
    return r;
}

std::optional<HttpRequest> token_refresh_request(const GraphAccount &account) {
    if (account.host != ApiHost::instagram || account.token.empty())
        return std::nullopt;
    HttpRequest r;
    r.account = account.account_id;
    r.method = "GET";
    r.url = account.base_url + "/refresh_access_token?grant_type=ig_refresh_token&access_token=" +
            url_encode(account.token) + proof_param(account, '&');
    r.url_secret = account.token;
    return r;
}

TokenRefreshParse parse_token_refresh(std::string_view body) {
    TokenRefreshParse out;
    JsonPtr root = json_parse(body);
    if (!root || !json_is_object(root.get()))
        return out;
    if (has_error_member(root.get())) {
        out.error = graph_error_from_json(root.get());
        out.status = out.error ? ParseStatus::graph_error : ParseStatus::malformed;
        return out;
    }
    auto token = json_get_string(root.get(), "access_token");
    auto expires_in = json_get_int_lenient(root.get(), "expires_in");
    if (!token || token->empty() || token->size() > 4096 || !expires_in || *expires_in <= 0 ||
        *expires_in > 10LL * 365 * 86400)
        return out;
    for (char c : *token)
        if (c < '!' || c > '~')
            return out;
    out.access_token = std::move(*token);
    out.expires_in = *expires_in;
    out.status = ParseStatus::ok;
    return out;
}

} // namespace igid
