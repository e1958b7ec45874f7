// SPDX-License-Identifier: MIT
// SIMD rows of the max pooling's backward (src/ops/pool_kernels.cc, Highway with runtime dispatch).
// Internal.
#pragma once

#include <cstdint>

namespace attn::internal::kernels {

// One row pair of a 2×2, stride-2 max pooling's backward: rows r0, r1 of W = 2·OW input values hold
// the OW windows (r0[2w], r0[2w+1], r1[2w], r1[2w+1]); g holds their OW gradients. The first
// largest tap of each window, in that order, gets its window's gradient: d0[p] += g[p / 2] where
// r0[p] is it, d1[p] likewise for r1; every other value of d0 and d1 is left as it is, bits and
// all. Returns false, with nothing written, when r0 or r1 holds a NaN (the NaN rule is the
// caller's), and always on a one-lane target.
bool max_pool_2x2_backward_rows(const float* r0, const float* r1, const float* g, int64_t W,
                                float* d0, float* d1);

}  // namespace attn::internal::kernels
