// random.cpp — the default jitter source.
#include "random.h"

#include <memory>
#include <random>

namespace igid {

// Each call gets its own generator so no global state needs constructing.
Rng default_rng() {
    auto gen = std::make_shared<std::mt19937_64>(std::random_device{}());
    return [gen]() { return std::uniform_real_distribution<double>(0.0, 1.0)(*gen); };
}

} // namespace igid
