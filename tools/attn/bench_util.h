// SPDX-License-Identifier: MIT
// Timing and memory helpers shared by the `attn bench` subcommands.
#pragma once

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "attn/context.h"
#include "attn/tensor.h"
#include "timing.h"

namespace attn::cli {

// Resets the kernel's peak-RSS counter (Linux >= 4.0) so each case reports its own peak.
inline void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
}
// A line of /proc/self/status in MiB: "VmHWM:" (peak resident set) or "VmRSS:" (current).
inline double status_mib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k(key);
  while (std::getline(f, line))
    if (line.rfind(k, 0) == 0) return std::stod(line.substr(k.size())) / 1024.0;
  return 0.0;
}
inline double peak_rss_mib() { return status_mib("VmHWM:"); }

// A tensor of N(0, 1) values: the benches' inputs.
inline Tensor random_normal(const Shape& shape, Rng& rng) {
  Tensor t(shape);
  for (auto& x : t.values()) x = static_cast<float>(rng.normal());
  return t;
}

// The same values as random_normal (same draws), rounded to bf16 storage.
inline TensorBF16 random_normal_bf16(const Shape& shape, Rng& rng) {
  TensorBF16 t(shape);
  for (auto& x : t.values()) x = bf16(static_cast<float>(rng.normal()));
  return t;
}

using bench::median;
using bench::wall_ms;

// Median wall time of `repeats` runs after one warm-up run, in milliseconds.
template <typename F>
double median_ms(int repeats, F&& f) {
  f();  // warm-up
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) ms.push_back(wall_ms(f));
  return median(std::move(ms));
}

}  // namespace attn::cli
