// profile.cpp — parsing and validating a User Profile API answer.
#include "profile.h"

#include "json.h"

namespace igid {

namespace {

// A present field of the wrong type makes the whole answer untrustworthy.
template <typename T, typename Getter>
bool read_field(const json_t *root, const char *key, std::optional<T> &out, Getter get) {
    if (!json_has(root, key))
        return true;
    out = get(root, key);
    return out.has_value();
}

bool read_text(const json_t *root, const char *key, std::optional<std::string> &out) {
    if (!read_field(root, key, out, json_get_string))
        return false;
    if (out && out->empty())
        out.reset();
    return true;
}

} // namespace

ProfileResult profile_from_json(const json_t *root, std::string_view requested_id) {
    ProfileResult r;
    if (root == nullptr || !json_is_object(root))
        return r;
    if (has_error_member(root)) {
        r.error = graph_error_from_json(root);
        r.status = r.error ? ProfileStatus::graph_error : ProfileStatus::malformed;
        return r;
    }
    Profile p;
    std::optional<std::string> id;
    if (json_has(root, "id")) {
        id = json_get_id(root, "id");
        if (!id)
            return r;
        if (*id != requested_id) {
            r.status = ProfileStatus::id_mismatch;
            return r;
        }
    }
    if (!read_text(root, "username", p.username) || !read_text(root, "name", p.name) ||
        !read_text(root, "profile_pic", p.profile_pic) ||
        !read_field(root, "is_verified_user", p.is_verified_user, json_get_bool) ||
        !read_field(root, "is_user_follow_business", p.is_user_follow_business, json_get_bool) ||
        !read_field(root, "is_business_follow_user", p.is_business_follow_user, json_get_bool) ||
        !read_field(root, "follower_count", p.follower_count, json_get_int))
        return r;
    bool any_value = p.username || p.name || p.profile_pic || p.is_verified_user || p.is_user_follow_business ||
                     p.is_business_follow_user || p.follower_count;
    if (!id && !any_value) {
        r.status = ProfileStatus::no_information;
        return r;
    }
    p.id = std::string(requested_id);
    r.status = ProfileStatus::ok;
    r.profile = std::move(p);
    return r;
}

ProfileResult parse_profile(std::string_view body, std::string_view requested_id) {
    JsonPtr root = json_parse(body);
    if (!root)
        return {};
    return profile_from_json(root.get(), requested_id);
}

} // namespace igid
