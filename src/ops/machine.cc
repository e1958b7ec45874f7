// SPDX-License-Identifier: MIT
#include "attn/ops/machine.h"

#include <omp.h>

#include "attn/error.h"
#include "ops/internal/attention_kernels.h"

namespace attn::ops {

double measure_peak_gflops(const Context& ctx, double seconds) {
  if (!(seconds > 0.0 && seconds < 60.0)) fail<ValueError>("measure_peak_gflops", "seconds must be in (0, 60), got ", seconds);
  double total = 0.0;
  // All threads run at once, as the kernels do, so shared resources (power, SMT) count.
#pragma omp parallel num_threads(ctx.num_threads()) reduction(+ : total)
  total += internal::kernels::measure_fma_gflops(seconds);
  return total;
}

const char* simd_target() { return internal::kernels::simd_target_name(); }

}  // namespace attn::ops
