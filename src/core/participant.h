// participant.h — a person in a conversation ({"id","username"?}) and who the
// "other party" is once the business account itself is set aside.
#pragma once

#include <jansson.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace igid {

struct Participant {
    std::string id;
    std::optional<std::string> username; // absent, null and "" all mean unknown
};

// {"id","username"?} → Participant; nullopt without a usable id or when a
// present username is not a string.
std::optional<Participant> participant_from_json(const json_t *value);

// Reads {"data":[...]} or a bare array; entries without a usable id are
// skipped (and counted in *skipped when given). nullopt when the container
// itself is neither shape.
std::optional<std::vector<Participant>> participants_from_json(const json_t *value,
                                                               std::size_t *skipped = nullptr);

// The first participant that is not self. self_id is the business account's
// IGSID; also_self (e.g. the ig_account_id when it differs) is excluded too.
// nullopt when only self (or nobody) is listed.
std::optional<Participant> other_party(const std::vector<Participant> &participants,
                                       std::string_view self_id, std::string_view also_self = {});

} // namespace igid
