// SPDX-License-Identifier: MIT
// One attention call through an installed attn: truncated self-attention over 1000 positions,
// checked against the reference. Prints the largest difference and exits 0 if it is small.
#include <cmath>
#include <cstdio>

#include "attn/attn.h"

int main() {
  attn::Rng rng(0);
  attn::Tensor q({1, 4, 1000, 32}), k({1, 4, 1000, 32}), v({1, 4, 1000, 32});
  for (attn::Tensor* t : {&q, &k, &v})
    for (float& x : t->values()) x = static_cast<float>(rng.normal());
  attn::ops::AttentionOptions options;
  options.mask.window_left = 16, options.mask.window_right = 16;
  try {
    const attn::ops::AttentionResult fast = attn::ops::attention(q, k, v, options);
    const attn::ops::AttentionResult ref = attn::ops::reference::attention(q, k, v, options);
    double max_diff = 0.0;
    for (int64_t i = 0; i < fast.out.numel(); ++i)
      max_diff = std::fmax(max_diff, std::fabs(fast.out.data()[i] - ref.out.data()[i]));
    std::printf(
        "attn %s consumer: window attention on SIMD target %s, max |fast - reference| = %.3g\n",
        attn::kVersion, attn::ops::simd_target(), max_diff);
    return max_diff < 1e-4 ? 0 : 1;
  } catch (const attn::Error& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
