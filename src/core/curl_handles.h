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

// The process's TLS session cache, shared by every transfer of every driver
// (created on first use, never freed: easy handles may use it until exit).
// A later driver, or the next ig_resolve_profile call, resumes the TLS
// session instead of a full handshake; libcurl resumes only under the same
// TLS settings (CA bundle included). nullptr when it cannot be made: the
// transfers then do full handshakes, nothing else changes.
CURLSH *shared_tls_sessions();

// Why libcurl, with these features (curl_version_info()->features), cannot
// serve the extension, or nullptr when it can. Without an asynchronous
// resolver a name lookup blocks in getaddrinfo(), past every timeout and past
// SIGTERM, so such a build is refused when the library loads.
const char *curl_unusable_reason(long features);

// The features of the libcurl loaded in this process.
long curl_runtime_features();

} // namespace igid
