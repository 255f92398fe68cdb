// profile.h — the User Profile API answer
// GET /{IGSID}?fields=name,username,profile_pic,follower_count,
//     is_user_follow_business,is_business_follow_user,is_verified_user
#pragma once

#include "graph_error.h"

#include <jansson.h>

#include <optional>
#include <string>
#include <string_view>

namespace igid {

// Absent and null are the same (nullopt); `false` and `0` are values.
// Empty strings are treated as absent so they never overwrite a cached value.
struct Profile {
    std::string id;
    std::optional<std::string> username;
    std::optional<std::string> name;
    std::optional<std::string> profile_pic;
    std::optional<bool> is_verified_user;
    std::optional<bool> is_user_follow_business;
    std::optional<bool> is_business_follow_user;
    std::optional<long long> follower_count;
};

enum class ProfileStatus {
    ok,
    no_information, // {} or no id and no known field with a value: not a success
    id_mismatch,    // the echoed id is not the one asked for
    malformed,      // not JSON, not an object, or a field of the wrong type
    graph_error,    // an error envelope
};

struct ProfileResult {
    ProfileStatus status = ProfileStatus::malformed;
    std::optional<Profile> profile; // set only when status == ok
    std::optional<GraphError> error; // set only when status == graph_error
};

// Parses a profile body for requested_id (the IGSID that was asked for).
ProfileResult parse_profile(std::string_view body, std::string_view requested_id);

// The same, from an already parsed value (used for batch item bodies too).
ProfileResult profile_from_json(const json_t *root, std::string_view requested_id);

} // namespace igid
