// mock_graph_process.cpp — running the Python mock from a test (see mock_graph_process.h).
#include "mock_graph_process.h"

#include <curl/curl.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <poll.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

#ifndef IGID_SOURCE_DIR
#error "IGID_SOURCE_DIR must point at the project root"
#endif
#ifndef IGID_PYTHON3
#define IGID_PYTHON3 "python3"
#endif

namespace igid::test {

namespace {

size_t collect(char *data, size_t size, size_t n, void *userdata) {
    static_cast<std::string *>(userdata)->append(data, size * n);
    return size * n;
}

} // namespace

MockGraphProcess::MockGraphProcess(std::vector<std::string> extra_args) {
    std::string script = std::string(IGID_SOURCE_DIR) + "/test/mock_graph/mock_graph.py";
    std::vector<std::string> args = {IGID_PYTHON3, script, "--port", "0", "--quiet"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    int fds[2];
    if (pipe(fds) != 0)
        throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0)
        throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        std::vector<char *> argv;
        for (std::string &a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        execvp(argv[0], argv.data());
        _exit(127);
    }
    close(fds[1]);
    stdout_fd_ = fds[0];

    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (line.find('\n') == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            break;
        pollfd p{stdout_fd_, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left.count())) <= 0)
            continue;
        char buf[256];
        ssize_t n = read(stdout_fd_, buf, sizeof buf);
        if (n <= 0)
            break;
        line.append(buf, static_cast<size_t>(n));
    }
    const std::string prefix = "mock_graph listening on ";
    auto colon = line.rfind(':');
    if (line.rfind(prefix, 0) != 0 || colon == std::string::npos) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        throw std::runtime_error("mock_graph did not start: '" + line + "'");
    }
    port_ = std::stoi(line.substr(colon + 1));
}

MockGraphProcess::~MockGraphProcess() {
    if (pid_ > 0) {
        kill(pid_, SIGTERM);
        int status = 0;
        for (int i = 0; i < 500; ++i) {
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                break;
            }
            usleep(10 * 1000);
        }
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, &status, 0);
        }
    }
    if (stdout_fd_ >= 0)
        close(stdout_fd_);
}

std::string MockGraphProcess::base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v21.0"; }

JsonPtr MockGraphProcess::admin(const std::string &method, const std::string &path, const std::string &body) {
    CURL *curl = curl_easy_init();
    std::string url = "http://127.0.0.1:" + std::to_string(port_) + path;
    std::string out;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out);
    curl_slist *headers = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (method != "GET") {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK || status != 200)
        throw std::runtime_error("mock admin " + method + " " + path + " failed: " + std::to_string(status) + " " +
                                 out);
    JsonPtr j = json_parse(out);
    if (!j)
        throw std::runtime_error("mock admin answer is not JSON: " + out);
    return j;
}

} // namespace igid::test
