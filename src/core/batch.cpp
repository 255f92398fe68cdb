// batch.cpp — parsing a Graph batch answer and its profile items.
#include "batch.h"

#include "json.h"

#include <strings.h>

namespace igid {

namespace {

bool read_item(const json_t *value, BatchItem &item) {
    if (json_is_null(value)) {
        item.answered = false;
        return true;
    }
    if (!json_is_object(value))
        return false;
    auto code = json_get_int_lenient(value, "code");
    if (!code)
        return false;
    item.answered = true;
    item.code = static_cast<long>(*code);
    if (json_has(value, "body")) {
        auto body = json_get_string(value, "body");
        if (!body)
            return false;
        item.body = std::move(*body);
    }
    std::optional<std::string> app, buc;
    if (const json_t *headers = json_get_array(value, "headers")) {
        std::size_t i;
        json_t *h;
        json_array_foreach(headers, i, h) {
            auto name = json_get_string(h, "name");
            auto val = json_get_string(h, "value");
            if (!name || !val)
                continue;
            if (strcasecmp(name->c_str(), "X-App-Usage") == 0)
                app = std::move(*val);
            else if (strcasecmp(name->c_str(), "X-Business-Use-Case-Usage") == 0)
                buc = std::move(*val);
        }
    }
    item.usage = parse_usage_headers(app ? std::optional<std::string_view>(*app) : std::nullopt,
                                     buc ? std::optional<std::string_view>(*buc) : std::nullopt);
    return true;
}

} // namespace

BatchResult parse_batch(std::string_view body) {
    BatchResult r;
    JsonPtr root = json_parse(body);
    if (!root)
        return r;
    if (json_is_object(root.get())) {
        r.error = graph_error_from_json(root.get());
        if (r.error)
            r.status = ParseStatus::graph_error;
        return r;
    }
    std::size_t i;
    json_t *value;
    json_array_foreach(root.get(), i, value) {
        BatchItem item;
        if (!read_item(value, item)) {
            r.items.clear();
            return r;
        }
        r.items.push_back(std::move(item));
    }
    r.status = ParseStatus::ok;
    return r;
}

std::vector<BatchProfileItem> batch_profiles(const BatchResult &batch, const std::vector<std::string> &igsids) {
    std::vector<BatchProfileItem> out;
    if (batch.status != ParseStatus::ok || batch.items.size() > igsids.size())
        return out;
    out.reserve(igsids.size());
    for (std::size_t i = 0; i < igsids.size(); ++i) {
        BatchProfileItem p;
        p.igsid = igsids[i];
        if (i < batch.items.size() && batch.items[i].answered) {
            const BatchItem &item = batch.items[i];
            p.answered = true;
            p.code = item.code;
            p.usage = item.usage;
            p.result = parse_profile(item.body, igsids[i]);
        }
        out.push_back(std::move(p));
    }
    return out;
}

} // namespace igid
