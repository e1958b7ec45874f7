// SPDX-License-Identifier: MIT
// SIMD element loops of the optimisers (src/train/optim_kernels.cc, Highway with runtime dispatch).
// Internal: train/optim.cc calls them on its chunks of the parameters.
#pragma once

#include <cstddef>

namespace attn::internal::kernels {

// AdamW's constants for one step: decay = 1 − lr·weight_decay, c1 = 1 − β1^t, c2 = 1 − β2^t.
struct AdamWStep {
  double lr, decay, beta1, beta2, eps, c1, c2;
};

// One AdamW step over n elements, in double, with the operations of the plain loop in its order
// (no fused multiply-adds, IEEE division and square root), so every target gives the same bits:
//   m = β1·m + (1 − β1)·g;   v = β2·v + ((1 − β2)·g)·g;
//   w = w·decay − (lr·(m / c1)) / (√(v / c2) + eps),
// m and v rounded to float before they are stored and w after its update.
void adamw_update(float* w, const float* g, float* m, float* v, size_t n, const AdamWStep& s);

}  // namespace attn::internal::kernels
