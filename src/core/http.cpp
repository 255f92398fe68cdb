// http.cpp — the curl multi driver (see http.h).
#include "http.h"

#include "curl_handles.h"
#include "rate_limiter.h"
#include "redact.h"
#include "url.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <stdexcept>
#include <strings.h>
#include <unordered_map>

namespace igid {

namespace {

constexpr std::size_t kInitialBodyReserve = 16 * 1024;
constexpr std::size_t kMaxHeaderValue = 4096;

// One running transfer. Lives at a stable address: curl callbacks get a pointer.
struct Transfer {
    HttpRequest request;
    CurlEasy easy;
    CurlSlist headers;
    std::string body;
    std::size_t cap = 0;
    bool too_large = false;
    std::optional<std::string> app_usage;
    std::optional<std::string> business_usage;
    std::optional<std::string> content_type;
    char errbuf[CURL_ERROR_SIZE] = {};
    TimePoint started{};
};

// Appends to the pre-reserved body; aborts the transfer past the cap.
// Never throws: an exception must not cross into curl.
size_t on_body(char *data, size_t size, size_t count, void *userdata) noexcept {
    auto *t = static_cast<Transfer *>(userdata);
    const size_t n = size * count;
    if (t->body.size() + n > t->cap) {
        t->too_large = true;
        return 0;
    }
    try {
        t->body.append(data, n);
    } catch (...) {
        return 0;
    }
    return n;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

bool header_is(std::string_view name, const char *wanted) {
    return name.size() == std::strlen(wanted) && strncasecmp(name.data(), wanted, name.size()) == 0;
}

// Keeps only the headers we use; a new status line (1xx, redirects) starts over.
size_t on_header(char *data, size_t size, size_t count, void *userdata) noexcept {
    auto *t = static_cast<Transfer *>(userdata);
    const size_t n = size * count;
    std::string_view line(data, n);
    try {
        if (line.size() >= 5 && line.compare(0, 5, "HTTP/") == 0) {
            t->app_usage.reset();
            t->business_usage.reset();
            t->content_type.reset();
            return n;
        }
        size_t colon = line.find(':');
        if (colon == std::string_view::npos)
            return n;
        std::string_view name = trim(line.substr(0, colon));
        std::string_view value = trim(line.substr(colon + 1));
        if (value.size() > kMaxHeaderValue)
            return n;
        if (header_is(name, "X-App-Usage"))
            t->app_usage.emplace(value);
        else if (header_is(name, "X-Business-Use-Case-Usage"))
            t->business_usage.emplace(value);
        else if (header_is(name, "Content-Type"))
            t->content_type.emplace(value);
    } catch (...) {
        return 0;
    }
    return n;
}

TransportError map_curl_code(CURLcode rc, bool too_large) {
    if (too_large)
        return TransportError::too_large;
    switch (rc) {
    case CURLE_OK:
        return TransportError::none;
    case CURLE_OPERATION_TIMEDOUT:
        return TransportError::timeout;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return TransportError::connect_failed;
    case CURLE_FILESIZE_EXCEEDED:
        return TransportError::too_large;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
        return TransportError::reset;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
        return TransportError::tls;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return TransportError::refused_url;
    default:
        return TransportError::other;
    }
}

} // namespace

struct HttpDriver::Impl {
    struct Account {
        std::deque<HttpRequest> queue;
        int in_flight = 0;
        RateLimiter limiter;
        std::optional<TimePoint> paused_until;
        explicit Account(double rate, const Clock &clock) : limiter(rate, 1, clock) {}
    };

    HttpOptions options;
    CurlMulti multi;
    std::map<std::string, Account> accounts;
    std::unordered_map<CURL *, std::unique_ptr<Transfer>> active;
    std::string round_robin_last;
    // What the last answer came over: 2 for HTTP/2, 1 for HTTP/1.x, 0 unknown.
    int http_major = 0;

    explicit Impl(HttpOptions opts) : options(std::move(opts)) {
        if (!options.clock)
            options.clock = steady_now;
        options.max_concurrency = std::max(1, options.max_concurrency);
        options.per_account_concurrency = std::max(1, options.per_account_concurrency);
        if (!ensure_curl_global_init())
            throw std::runtime_error("could not initialise libcurl");
        multi.reset(curl_multi_init());
        if (!multi)
            throw std::runtime_error("could not create a curl multi handle");
        curl_multi_setopt(multi.get(), CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_MULTIPLEX));
        curl_multi_setopt(multi.get(), CURLMOPT_MAXCONNECTS, static_cast<long>(std::max(4, options.max_concurrency)));
    }

    ~Impl() { cancel_all(); }

    Account &account(const std::string &name) {
        auto it = accounts.find(name);
        if (it == accounts.end())
            it = accounts.emplace(name, Account(options.requests_per_second, options.clock)).first;
        return it->second;
    }

    void cancel_all() {
        for (auto &entry : active)
            curl_multi_remove_handle(multi.get(), entry.first);
        active.clear();
        for (auto &entry : accounts) {
            entry.second.queue.clear();
            entry.second.in_flight = 0;
        }
    }

    static HttpResponse response_for(const HttpRequest &r) {
        HttpResponse out;
        out.id = r.id;
        out.account = r.account;
        return out;
    }

    HttpResponse refused(const HttpRequest &r, TransportError e, const char *why) {
        HttpResponse out = response_for(r);
        out.error = e;
        out.error_text = why;
        out.started = out.finished = options.clock();
        return out;
    }

    bool paused(Account &a, TimePoint now) {
        if (a.paused_until && *a.paused_until <= now)
            a.paused_until.reset();
        return a.paused_until.has_value();
    }

    // Returns every queued request of a paused account as not attempted.
    void flush_paused(std::vector<HttpResponse> &out) {
        TimePoint now = options.clock();
        for (auto &entry : accounts) {
            Account &a = entry.second;
            if (a.queue.empty() || !paused(a, now))
                continue;
            for (HttpRequest &r : a.queue) {
                HttpResponse resp = response_for(r);
                resp.attempted = false;
                resp.paused_until = a.paused_until;
                out.push_back(std::move(resp));
            }
            a.queue.clear();
        }
    }

    // Configures one easy handle; false when an option the guard relies on fails.
    bool configure(Transfer &t, const std::string &protocol) {
        CURL *e = t.easy.get();
        const HttpRequest &r = t.request;
        bool ok = true;
        auto set = [&ok](CURLcode rc) { ok = ok && rc == CURLE_OK; };
        set(curl_easy_setopt(e, CURLOPT_URL, r.url.c_str()));
#if LIBCURL_VERSION_NUM >= 0x075500
        set(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, protocol.c_str()));
        set(curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https"));
#else
        set(curl_easy_setopt(e, CURLOPT_PROTOCOLS, protocol == "http" ? CURLPROTO_HTTP : CURLPROTO_HTTPS));
        set(curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, CURLPROTO_HTTPS));
#endif
        set(curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L));
        // Plain http goes to a loopback host only: never through a proxy the
        // environment names (http_proxy, all_proxy), which would get the
        // token in clear text. "" overrides the variables. https keeps them
        // (a proxy tunnels TLS, verified end to end).
        if (protocol == "http")
            set(curl_easy_setopt(e, CURLOPT_PROXY, ""));
        set(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
        set(curl_easy_setopt(e, CURLOPT_VERBOSE, 0L));
        set(curl_easy_setopt(e, CURLOPT_NOPROGRESS, 1L));
        set(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, options.connect_timeout_ms));
        set(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r.timeout_ms > 0 ? r.timeout_ms : options.total_timeout_ms));
        set(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_response_bytes)));
        set(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body));
        set(curl_easy_setopt(e, CURLOPT_WRITEDATA, &t));
        set(curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header));
        set(curl_easy_setopt(e, CURLOPT_HEADERDATA, &t));
        set(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.errbuf));
        set(curl_easy_setopt(e, CURLOPT_PRIVATE, &t));
        set(curl_easy_setopt(e, CURLOPT_USERAGENT, "ig_identity/1.0"));
        set(curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L));
        // Certificate and host name checks stay on; a CA bundle of our own
        // (a private CA, a TLS-intercepting proxy) replaces the system store.
        set(curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L));
        set(curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L));
        if (!options.ca_file.empty())
            set(curl_easy_setopt(e, CURLOPT_CAINFO, options.ca_file.c_str()));
        // Resume TLS sessions across drivers (a handshake's round trip and
        // certificate checks saved); optional, so its failure is ignored.
        if (CURLSH *share = shared_tls_sessions())
            curl_easy_setopt(e, CURLOPT_SHARE, share);
        // HTTP/2 over TLS, multiplexed on one connection; HTTP/1.1 keep-alive otherwise.
        set(curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS)));
        if (protocol == "https")
            curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
        if (r.method == "POST") {
            set(curl_easy_setopt(e, CURLOPT_POST, 1L));
            set(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size())));
            set(curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.c_str()));
        } else {
            set(curl_easy_setopt(e, CURLOPT_HTTPGET, 1L));
        }
        bool headers_ok = slist_append(t.headers, "Accept: application/json") && slist_append(t.headers, "Expect:");
        if (!r.bearer_token.empty()) {
            std::string auth = "Authorization: Bearer " + r.bearer_token;
            headers_ok = headers_ok && slist_append(t.headers, auth.c_str());
            std::fill(auth.begin(), auth.end(), '\0');
        }
        if (!headers_ok)
            return false;
        set(curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.headers.get()));
        return ok;
    }

    // Starts one request now, or answers it at once when the guard refuses it.
    void start(HttpRequest r, Account &a, std::vector<HttpResponse> &out) {
        if (r.method != "GET" && r.method != "POST") {
            out.push_back(refused(r, TransportError::refused_url, "method not allowed"));
            return;
        }
        // The token refresh's url carries its token on purpose: checked with
        // that value taken out, and only when it is there exactly once, as
        // the access_token parameter.
        std::optional<std::string> protocol;
        if (r.url_secret.empty()) {
            protocol = allowed_protocol(r.url);
        } else {
            const std::string param = "access_token=" + url_encode(r.url_secret);
            const std::size_t at = r.url.find(param);
            if (at != std::string::npos && at > 0 && (r.url[at - 1] == '?' || r.url[at - 1] == '&') &&
                r.url.find(param, at + 1) == std::string::npos) {
                std::string without = r.url;
                without.replace(at, param.size(), "access_token_omitted");
                protocol = allowed_protocol(without);
            }
        }
        if (!protocol) {
            out.push_back(refused(r, TransportError::refused_url,
                                  "url refused: https only (http only to loopback), no token in the url"));
            return;
        }
        auto t = std::make_unique<Transfer>();
        t->request = std::move(r);
        t->cap = options.max_response_bytes;
        t->body.reserve(std::min(kInitialBodyReserve, t->cap));
        t->easy.reset(curl_easy_init());
        if (!t->easy || !configure(*t, *protocol)) {
            out.push_back(refused(t->request, TransportError::other, "could not set up the transfer"));
            return;
        }
        t->started = options.clock();
        CURL *handle = t->easy.get();
        if (curl_multi_add_handle(multi.get(), handle) != CURLM_OK) {
            out.push_back(refused(t->request, TransportError::other, "could not start the transfer"));
            return;
        }
        active.emplace(handle, std::move(t));
        ++a.in_flight;
    }

    bool may_start(Account &a, TimePoint now) const {
        return !a.queue.empty() && !(a.paused_until && *a.paused_until > now) &&
               a.in_flight < options.per_account_concurrency &&
               static_cast<int>(active.size()) < options.max_concurrency;
    }

    // Round-robin over accounts, one start per account per pass.
    void start_ready(std::vector<HttpResponse> &out) {
        bool progress = true;
        while (progress && static_cast<int>(active.size()) < options.max_concurrency) {
            progress = false;
            TimePoint now = options.clock();
            auto first = accounts.upper_bound(round_robin_last);
            for (std::size_t n = 0; n < accounts.size(); ++n) {
                if (first == accounts.end())
                    first = accounts.begin();
                auto it = first++;
                Account &a = it->second;
                if (!may_start(a, now) || !a.limiter.try_start())
                    continue;
                HttpRequest r = std::move(a.queue.front());
                a.queue.pop_front();
                start(std::move(r), a, out);
                round_robin_last = it->first;
                progress = true;
                if (static_cast<int>(active.size()) >= options.max_concurrency)
                    break;
            }
        }
    }

    // Turns finished transfers into responses.
    void collect(std::vector<HttpResponse> &out) {
        int left = 0;
        while (CURLMsg *msg = curl_multi_info_read(multi.get(), &left)) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *handle = msg->easy_handle;
            CURLcode rc = msg->data.result;
            auto it = active.find(handle);
            if (it == active.end())
                continue;
            std::unique_ptr<Transfer> t = std::move(it->second);
            active.erase(it);
            curl_multi_remove_handle(multi.get(), handle);
            Account &a = account(t->request.account);
            a.in_flight = std::max(0, a.in_flight - 1);

            HttpResponse r = response_for(t->request);
            r.started = t->started;
            r.finished = options.clock();
            long status = 0;
            curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
            r.status = status;
            r.error = map_curl_code(rc, t->too_large);
            if (r.error == TransportError::too_large) {
                r.error_text = "response larger than " + std::to_string(t->cap) + " bytes";
            } else if (r.error != TransportError::none) {
                const char *text = t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(rc);
                r.error_text = redact(text, {t->request.bearer_token, t->request.url_secret,
                                             url_encode(t->request.url_secret)});
                // Name the layer: "SSL certificate problem: ..." alone does not
                // say the request never reached the server (no token was sent).
                if (r.error == TransportError::tls)
                    r.error_text = "TLS failure (nothing was sent): " + r.error_text;
            }
            if (r.error == TransportError::none)
                r.body = std::move(t->body);
            note_http_version(handle, rc);
            r.app_usage = std::move(t->app_usage);
            r.business_usage = std::move(t->business_usage);
            r.content_type = std::move(t->content_type);
            out.push_back(std::move(r));
        }
    }

    // Once the server answers over HTTP/2, at most two connections per host:
    // the one in use and, after a GOAWAY, the one replacing it while the old
    // one drains. Without the cap libcurl opens a connection per waiting
    // transfer after a GOAWAY (PIPEWAIT does not wait on a draining
    // connection's successor) and the refresh goes on over max_concurrency
    // connections. An HTTP/1.1 answer lifts the cap again (keep-alive needs
    // one connection per transfer in flight).
    void note_http_version(CURL *handle, CURLcode rc) {
        if (rc != CURLE_OK)
            return;
        long version = 0;
        if (curl_easy_getinfo(handle, CURLINFO_HTTP_VERSION, &version) != CURLE_OK)
            return;
        const int major = version == CURL_HTTP_VERSION_2_0 ? 2 : version != 0 ? 1 : 0;
        if (major == 0 || major == http_major)
            return;
        http_major = major;
        curl_multi_setopt(multi.get(), CURLMOPT_MAX_HOST_CONNECTIONS, major == 2 ? 2L : 0L);
    }

    void perform() {
        int running = 0;
        curl_multi_perform(multi.get(), &running);
    }

    // How long until a rate-limited request may start; max_wait when none.
    int wait_ms(int max_wait) {
        TimePoint now = options.clock();
        int best = max_wait;
        if (static_cast<int>(active.size()) >= options.max_concurrency)
            return best;
        for (auto &entry : accounts) {
            Account &a = entry.second;
            if (!may_start(a, now))
                continue;
            auto due = a.limiter.next_start() - now;
            auto ms = std::chrono::ceil<std::chrono::milliseconds>(due).count();
            best = std::min<long long>(best, std::max<long long>(0, ms));
        }
        return best;
    }

    std::vector<HttpResponse> step(int max_wait_ms) {
        std::vector<HttpResponse> out;
        flush_paused(out);
        start_ready(out);
        perform();
        collect(out);
        if (!out.empty() || max_wait_ms <= 0)
            return out;
        if (active.empty() && queued() == 0)
            return out;
        int wait = wait_ms(max_wait_ms);
        if (wait > 0)
            curl_multi_poll(multi.get(), nullptr, 0, wait, nullptr);
        perform();
        collect(out);
        // Hand finished work back before starting more, so the caller can
        // pause an account on what just came back.
        if (!out.empty())
            return out;
        flush_paused(out);
        std::size_t before = active.size();
        start_ready(out);
        if (active.size() != before)
            perform();
        return out;
    }

    std::size_t queued() const {
        std::size_t n = 0;
        for (const auto &entry : accounts)
            n += entry.second.queue.size();
        return n;
    }
};

HttpDriver::HttpDriver(HttpOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpDriver::~HttpDriver() = default;

void HttpDriver::submit(HttpRequest request) {
    std::string name = request.account;
    impl_->account(name).queue.push_back(std::move(request));
}

std::vector<HttpResponse> HttpDriver::step(int max_wait_ms) { return impl_->step(max_wait_ms); }

void HttpDriver::set_account_rate(const std::string &account, double requests_per_second) {
    impl_->account(account).limiter.set_rate(requests_per_second);
}

void HttpDriver::hold_account(const std::string &account, TimePoint earliest) {
    impl_->account(account).limiter.hold_until(earliest);
}

void HttpDriver::pause_account(const std::string &account, TimePoint until) {
    impl_->account(account).paused_until = until;
}

std::optional<TimePoint> HttpDriver::paused_until(const std::string &account) const {
    auto it = impl_->accounts.find(account);
    if (it == impl_->accounts.end() || !it->second.paused_until || *it->second.paused_until <= impl_->options.clock())
        return std::nullopt;
    return it->second.paused_until;
}

void HttpDriver::cancel_all() { impl_->cancel_all(); }

std::size_t HttpDriver::queued() const { return impl_->queued(); }

std::size_t HttpDriver::queued(const std::string &account) const {
    auto it = impl_->accounts.find(account);
    return it == impl_->accounts.end() ? 0 : it->second.queue.size();
}

std::size_t HttpDriver::in_flight() const { return impl_->active.size(); }

std::size_t HttpDriver::in_flight(const std::string &account) const {
    auto it = impl_->accounts.find(account);
    return it == impl_->accounts.end() ? 0 : static_cast<std::size_t>(it->second.in_flight);
}

} // namespace igid
