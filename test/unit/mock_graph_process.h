// mock_graph_process.h — starts test/mock_graph/mock_graph.py for a test,
// reads its startup line for the port, talks to its admin API, and stops it
// with SIGTERM. The mock itself is owned by another engineer; this only runs it.
#pragma once

#include "core/json.h"

#include <string>
#include <vector>

namespace igid::test {

class MockGraphProcess {
public:
    explicit MockGraphProcess(std::vector<std::string> extra_args = {});
    ~MockGraphProcess();
    MockGraphProcess(const MockGraphProcess &) = delete;
    MockGraphProcess &operator=(const MockGraphProcess &) = delete;

    int port() const { return port_; }
    std::string base_url() const; // http://127.0.0.1:<port>/v21.0

    // Admin API; bodies are hand-written JSON. Returns the parsed answer.
    JsonPtr admin(const std::string &method, const std::string &path, const std::string &body = "");
    JsonPtr stats() { return admin("GET", "/_admin/stats"); }
    void reset() { admin("POST", "/_admin/reset"); }
    void config(const std::string &json) { admin("POST", "/_admin/config", json); }
    void fault(const std::string &json) { admin("POST", "/_admin/faults", json); }

private:
    int pid_ = -1;
    int stdout_fd_ = -1;
    int port_ = 0;
};

// Default data the mock contract fixes.
inline const char *kAccountA = "17841400000000001";
inline const char *kTokenA = "mock-token-A-0123456789";
inline const char *kPageA = "1000000000000001";
inline const char *kAccountB = "17841400000000002";
inline const char *kTokenB = "mock-token-B-0123456789";
inline const char *kJane = "1000000000000101";
inline const char *kJohn = "1000000000000102";
inline const char *kStories = "1000000000000103";
inline const char *kNoConsent = "1000000000000104";
inline const char *kGone = "1000000000000105";

} // namespace igid::test
