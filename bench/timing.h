// SPDX-License-Identifier: MIT
// Timing helpers shared by the programs in bench/ and `attn bench` (tools/attn/bench_util.h).
// Benchmark support, not part of the library's API.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace attn::bench {

// The middle value of a non-empty list (the upper one of an even count).
inline double median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  return x[x.size() / 2];
}

// Wall time of one call of f, in milliseconds.
template <typename F>
double wall_ms(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace attn::bench
