// SPDX-License-Identifier: MIT
// Helpers the feature extractors share.
#pragma once

#include <cmath>
#include <cstdint>

#include "attn/error.h"
#include "attn/tensor.h"
#include "audio/internal/feature_kernels.h"

namespace attn::audio::internal {

// ValueError from `fn` naming the first NaN or Inf sample of (N) `waveform`. The scan has no early
// exit and is SIMD for unit stride; the index is looked up only when there is one.
inline void check_finite_samples(const char* fn, ConstTensorView waveform) {
  const float* x = waveform.data();
  const int64_t n = waveform.dim(0), stride = waveform.stride(0);
  bool finite = true;
  if (stride == 1) {
    finite = all_finite(x, n);
  } else {
    for (int64_t i = 0; i < n; ++i) finite &= std::fabs(x[i * stride]) <= 3.4028235e38f;
  }
  if (finite) return;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i * stride]))
      fail<ValueError>(fn, "waveform has a non-finite sample at ", i);
}

}  // namespace attn::audio::internal
