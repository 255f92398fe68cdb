// curl_handles.cpp — header-list append and the lazy global init.
#include "curl_handles.h"

namespace igid {

bool slist_append(CurlSlist &list, const char *line) {
    curl_slist *grown = curl_slist_append(list.get(), line);
    if (grown == nullptr)
        return false;
    list.release();
    list.reset(grown);
    return true;
}

// A function-local static: initialised on first call, never at load time.
bool ensure_curl_global_init() {
    static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    return ok;
}

CURLSH *shared_tls_sessions() {
    static CURLSH *const share = [] {
        CURLSH *s = curl_share_init();
        if (s != nullptr && curl_share_setopt(s, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
            curl_share_cleanup(s);
            s = nullptr;
        }
        return s;
    }();
    return share;
}

const char *curl_unusable_reason(long features) {
    if ((features & CURL_VERSION_ASYNCHDNS) == 0)
        return "libcurl was built without an asynchronous DNS resolver";
    return nullptr;
}

long curl_runtime_features() {
    const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
    return info ? info->features : 0;
}

} // namespace igid
