// participant.cpp — parsing participants and picking the other party.
#include "participant.h"

#include "json.h"

namespace igid {

std::optional<Participant> participant_from_json(const json_t *value) {
    if (value == nullptr || !json_is_object(value))
        return std::nullopt;
    auto id = json_get_id(value, "id");
    if (!id)
        return std::nullopt;
    Participant p;
    p.id = std::move(*id);
    if (json_has(value, "username")) {
        auto u = json_get_string(value, "username");
        if (!u)
            return std::nullopt;
        if (!u->empty())
            p.username = std::move(*u);
    }
    return p;
}

std::optional<std::vector<Participant>> participants_from_json(const json_t *value, std::size_t *skipped) {
    const json_t *list = value;
    if (value != nullptr && json_is_object(value))
        list = json_get_array(value, "data");
    if (list == nullptr || !json_is_array(list))
        return std::nullopt;
    std::vector<Participant> out;
    std::size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        if (auto p = participant_from_json(item))
            out.push_back(std::move(*p));
        else if (skipped)
            ++*skipped;
    }
    return out;
}

// Self must never be stored as a participant (trap 1), so the filter lives here.
std::optional<Participant> other_party(const std::vector<Participant> &participants, std::string_view self_id,
                                       std::string_view also_self) {
    for (const Participant &p : participants) {
        if (p.id.empty() || p.id == self_id || (!also_self.empty() && p.id == also_self))
            continue;
        return p;
    }
    return std::nullopt;
}

} // namespace igid
