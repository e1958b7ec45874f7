// SPDX-License-Identifier: MIT
#include "attn/ops/machine.h"

#include <omp.h>

#include <algorithm>

#include "attn/error.h"
#include "ops/internal/attention_kernels.h"

namespace attn::ops {

double measure_peak_gflops(const Context& ctx, double seconds) {
  if (!(seconds > 0.0 && seconds < 60.0)) fail<ValueError>("measure_peak_gflops", "seconds must be in (0, 60), got ", seconds);
  // The best of several short trials: on a shared machine other work only ever slows a trial down, so the
  // maximum is the closest to what the hardware can do (one long trial swung by ±10% between runs here).
  constexpr int kTrials = 6;
  double best = 0.0;
  for (int trial = 0; trial < kTrials; ++trial) {
    double total = 0.0;
    // All threads run at once, as the kernels do, so shared resources (power, SMT) count.
#pragma omp parallel num_threads(ctx.num_threads()) reduction(+ : total)
    total += internal::kernels::measure_fma_gflops(seconds / kTrials);
    best = std::max(best, total);
  }
  return best;
}

const char* simd_target() { return internal::kernels::simd_target_name(); }

}  // namespace attn::ops
