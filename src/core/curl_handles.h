// curl_handles.h — RAII for libcurl handles and the one-time global init.
#pragma once

#include <curl/curl.h>

#include <memory>

namespace igid {

struct CurlEasyCleanup {
    void operator()(CURL *h) const noexcept { curl_easy_cleanup(h); }
};
struct CurlMultiCleanup {
    void operator()(CURLM *h) const noexcept { curl_multi_cleanup(h); }
};
struct CurlSlistFree {
    void operator()(curl_slist *l) const noexcept { curl_slist_free_all(l); }
};

using CurlEasy = std::unique_ptr<CURL, CurlEasyCleanup>;
using CurlMulti = std::unique_ptr<CURLM, CurlMultiCleanup>;
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistFree>;

// Appends a header line; on allocation failure returns false and keeps the list.
bool slist_append(CurlSlist &list, const char *line);

// curl_global_init once per process, on first use (lazy and idempotent; core
// is single-threaded). Returns false when libcurl could not initialise.
bool ensure_curl_global_init();

} // namespace igid
