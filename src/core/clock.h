// clock.h — the time source core uses, injectable so tests can fake it.
#pragma once

#include <chrono>
#include <functional>

namespace igid {

using TimePoint = std::chrono::steady_clock::time_point;
using Clock = std::function<TimePoint()>;

// The real clock; the default everywhere a Clock is taken.
inline TimePoint steady_now() { return std::chrono::steady_clock::now(); }

} // namespace igid
