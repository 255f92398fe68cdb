// account_check.cpp — parsing /me per login flavour (see account_check.h).
#include "account_check.h"

#include "graph_client.h"
#include "json.h"

namespace igid {

MeParse parse_me(ApiHost host, std::string_view body) {
    MeParse out;
    JsonPtr root = json_parse(body);
    if (!root || !json_is_object(root.get()))
        return out;
    if (has_error_member(root.get())) {
        out.error = graph_error_from_json(root.get());
        out.status = out.error ? ParseStatus::graph_error : ParseStatus::malformed;
        return out;
    }
    auto id = json_get_id(root.get(), "id");
    if (host == ApiHost::facebook) {
        if (!id || !is_valid_igsid(*id))
            return out;
        out.me.page_id = *id;
        out.me.name_or_username = json_get_string(root.get(), "name");
        // absent or null: the Page has no linked professional account
        if (const json_t *ig = json_get_object(root.get(), "instagram_business_account")) {
            auto ig_id = json_get_id(ig, "id");
            if (!ig_id || !is_valid_igsid(*ig_id))
                return out;
            out.me.ig_account_id = *ig_id;
        } else if (json_has(root.get(), "instagram_business_account")) {
            return out; // present but not an object
        }
    } else {
        auto user_id = json_get_id(root.get(), "user_id");
        if (!user_id || !is_valid_igsid(*user_id))
            return out;
        out.me.ig_account_id = *user_id;
        if (id)
            out.me.app_scoped_id = *id;
        out.me.name_or_username = json_get_string(root.get(), "username");
    }
    out.status = ParseStatus::ok;
    return out;
}

AccountMismatch check_me(ApiHost host, const MeInfo &me, std::string_view ig_account_id) {
    if (host == ApiHost::facebook) {
        if (me.ig_account_id.empty())
            return ig_account_id == me.page_id ? AccountMismatch::page_id_given : AccountMismatch::no_linked_account;
        if (me.ig_account_id == ig_account_id)
            return AccountMismatch::none;
        return ig_account_id == me.page_id ? AccountMismatch::page_id_given : AccountMismatch::other_account;
    }
    if (me.ig_account_id == ig_account_id)
        return AccountMismatch::none;
    if (!me.app_scoped_id.empty() && me.app_scoped_id == ig_account_id)
        return AccountMismatch::app_scoped_id_given;
    return AccountMismatch::other_account;
}

} // namespace igid
