// SPDX-License-Identifier: MIT
// Peak FMA throughput, measured with Highway on the same dispatched target as the kernels.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "peak.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target re-includes this file once per target; everything below is per target.
#include <chrono>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace attn::bench {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

double MeasureFmaGflops(double seconds) {
  const hn::ScalableTag<float> d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  // 12 independent chains hide the FMA latency (4-5 cycles) on two FMA ports.
  constexpr int kChains = 12;
  hn::Vec<decltype(d)> acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = hn::Set(d, 1.0f + 1e-3f * static_cast<float>(c));
  const auto a = hn::Set(d, 0.999999f), b = hn::Set(d, 1e-7f);
  int64_t iterations = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0.0;
  while (elapsed < seconds) {
    for (int rep = 0; rep < 4096; ++rep)
      for (int c = 0; c < kChains; ++c) acc[c] = hn::MulAdd(acc[c], a, b);
    iterations += 4096;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  auto sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = hn::Add(sum, acc[c]);
  volatile float sink = hn::GetLane(sum);
  (void)sink;
  return static_cast<double>(iterations) * kChains * static_cast<double>(NL) * 2.0 / elapsed / 1e9;
}

}  // namespace HWY_NAMESPACE
}  // namespace attn::bench
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <omp.h>

#include <algorithm>

#include "attn/error.h"
#include "peak.h"

namespace attn::bench {

HWY_EXPORT(MeasureFmaGflops);

double measure_peak_gflops(const Context& ctx, double seconds) {
  if (!(seconds > 0.0 && seconds < 60.0))
    fail<ValueError>("measure_peak_gflops", "seconds must be in (0, 60), got ", seconds);
  // The best of several short trials: on a shared machine other work only ever slows a trial down,
  // so the maximum is the closest to what the hardware can do (one long trial swung by ±10% between
  // runs here).
  constexpr int kTrials = 6;
  double best = 0.0;
  for (int trial = 0; trial < kTrials; ++trial) {
    double total = 0.0;
    // All threads run at once, as the kernels do, so shared resources (power, SMT) count.
#pragma omp parallel num_threads(ctx.num_threads()) reduction(+ : total)
    total += HWY_DYNAMIC_DISPATCH(MeasureFmaGflops)(seconds / kTrials);
    best = std::max(best, total);
  }
  return best;
}

}  // namespace attn::bench
#endif
