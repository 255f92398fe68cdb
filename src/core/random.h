// random.h — the randomness core uses (jitter), injectable so tests can fix it.
#pragma once

#include <functional>

namespace igid {

// Returns a uniform double in [0, 1).
using Rng = std::function<double()>;

// A seeded Mersenne Twister; good enough for jitter, not for secrets.
Rng default_rng();

} // namespace igid
