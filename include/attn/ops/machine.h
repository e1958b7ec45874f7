// SPDX-License-Identifier: MIT
// What the machine can do, measured: benchmarks report their throughput as a share of this peak.
#pragma once

#include "attn/context.h"

namespace attn::ops {

// Peak fp32 FMA throughput in GFLOP/s (2 flops per lane per FMA) on ctx.num_threads() threads at once,
// measured with independent FMA chains on the best SIMD target for about `seconds` in total: the best of
// six short trials, since interference from other work can only lower a trial.
double measure_peak_gflops(const Context& ctx, double seconds = 0.3);

// The SIMD target the kernels dispatch to on this machine ("AVX3", "AVX2", "SSE4", "NEON", ...).
const char* simd_target();

}  // namespace attn::ops
