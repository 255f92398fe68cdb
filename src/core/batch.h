// batch.h — a Graph batch answer (graph.facebook.com only):
// [{"code":200,"headers":[{"name","value"}],"body":"<JSON as a string>"}, null, ...]
// Each body holds its own answer (or error) and is parsed a second time by
// the parser matching the request; a null item means "no answer".
#pragma once

#include "graph_error.h"
#include "profile.h"
#include "usage.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace igid {

struct BatchItem {
    bool answered = false; // false: the item was null (no answer; retry it alone)
    long code = 0;         // the item's HTTP status
    Usage usage;           // from the item's own headers, when present
    std::string body;      // the item's body text, to be parsed again
};

struct BatchResult {
    ParseStatus status = ParseStatus::malformed; // graph_error: the whole batch was refused
    std::vector<BatchItem> items;
    std::optional<GraphError> error;
};

BatchResult parse_batch(std::string_view body);

struct BatchProfileItem {
    std::string igsid;
    bool answered = false;
    long code = 0;
    Usage usage;
    ProfileResult result; // meaningful only when answered
};

// Pairs batch items with the ids they were asked for (same order) and parses
// each body as a profile. Items missing at the end count as unanswered.
// An answer with more items than requested is malformed: returns empty.
std::vector<BatchProfileItem> batch_profiles(const BatchResult &batch, const std::vector<std::string> &igsids);

} // namespace igid
