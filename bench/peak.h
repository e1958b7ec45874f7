// SPDX-License-Identifier: MIT
// What the machine can do, measured: benchmarks (bench/, `attn bench`) report throughput as a share
// of this peak. Benchmark support, not part of the library's API.
#pragma once

#include "attn/context.h"

namespace attn::bench {

// Peak fp32 FMA throughput in GFLOP/s (2 flops per lane per FMA) on ctx.num_threads() threads at
// once, measured with independent FMA chains on the best SIMD target for about `seconds` in total:
// the best of six short trials, since interference from other work can only lower a trial.
double measure_peak_gflops(const Context& ctx, double seconds = 0.3);

}  // namespace attn::bench
