// SPDX-License-Identifier: MIT
// Softmax over the last dimension, the fast path beside softmax_reference.cc: float math, rows in
// parallel in fixed chunks (as layer_norm.cc), a fully masked row (all -inf) gives zeros.
#include <algorithm>
#include <cmath>
#include <limits>

#include "attn/ops/softmax.h"
#include "core/parallel.h"
#include "ops/internal/norm_checks.h"
#include "ops/internal/rows.h"

namespace attn::ops {

namespace {
constexpr int64_t kChunkElements = 16384;

// fn(row) for every row, in chunks of about kChunkElements elements.
template <typename F>
void for_rows(const Context& ctx, int64_t rows, int64_t D, F&& fn) {
  const int64_t per = std::max<int64_t>(1, kChunkElements / std::max<int64_t>(D, 1));
  internal::parallel_for(ctx, (rows + per - 1) / per, [&](int64_t chunk, int) {
    for (int64_t r = chunk * per; r < std::min(rows, (chunk + 1) * per); ++r)
      fn(static_cast<size_t>(r));
  });
}
}  // namespace

void softmax_forward(ConstTensorView x, TensorView out, const Context& ctx) {
  internal::check_softmax_forward_args(x, out);
  const int64_t D = x.dim(-1), xs = x.stride(-1), os = out.stride(-1);
  const auto xr = internal::row_offsets(x), orow = internal::row_offsets(out);
  for_rows(ctx, static_cast<int64_t>(xr.size()), D, [&](size_t r) {
    const float* xp = x.data() + xr[r];
    float* op = out.data() + orow[r];
    float row_max = -std::numeric_limits<float>::infinity();
    for (int64_t d = 0; d < D; ++d) row_max = std::max(row_max, xp[d * xs]);
    if (row_max == -std::numeric_limits<float>::infinity()) {  // all masked: zeros, not NaN
      for (int64_t d = 0; d < D; ++d) op[d * os] = 0.0f;
      return;
    }
    float sum = 0.0f;
    for (int64_t d = 0; d < D; ++d) {
      const float e = std::exp(xp[d * xs] - row_max);
      op[d * os] = e;
      sum += e;
    }
    const float inv = 1.0f / sum;
    for (int64_t d = 0; d < D; ++d) op[d * os] *= inv;
  });
}

// y = softmax(x) has Jacobian diag(y) − y yᵀ, so dx = y ⊙ (dy − ⟨dy, y⟩).
void softmax_backward(ConstTensorView out, ConstTensorView dout, TensorView dx,
                      const Context& ctx) {
  internal::check_softmax_backward_args(out, dout, dx);
  const int64_t D = out.dim(-1), ys = out.stride(-1), gs = dout.stride(-1), xs = dx.stride(-1);
  const auto yr = internal::row_offsets(out), gr = internal::row_offsets(dout),
             xr = internal::row_offsets(dx);
  for_rows(ctx, static_cast<int64_t>(yr.size()), D, [&](size_t r) {
    const float* y = out.data() + yr[r];
    const float* g = dout.data() + gr[r];
    float* d = dx.data() + xr[r];
    double dot = 0.0;
    for (int64_t i = 0; i < D; ++i)
      dot += static_cast<double>(y[i * ys]) * static_cast<double>(g[i * gs]);
    const float df = static_cast<float>(dot);
    for (int64_t i = 0; i < D; ++i) d[i * xs] += y[i * ys] * (g[i * gs] - df);
  });
}

}  // namespace attn::ops
