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

} // namespace igid
