// SPDX-License-Identifier: MIT
// Fast linear layer: each product a blocked, single-threaded-BLAS GEMM on attn's threads
// (internal::parallel_sgemm; tested against linear_reference.cc).
#include "attn/ops/linear.h"

#include <algorithm>

#include "core/parallel.h"
#include "ops/internal/blas.h"
#include "ops/internal/linear_checks.h"

namespace attn::ops {

void linear_forward(ConstTensorView x, ConstTensorView w, ConstTensorView bias, TensorView out,
                    const Context& ctx) {
  const auto d = internal::check_linear_forward_args("linear_forward", x, w, bias, out);
  internal::BlasInput xm(x), wm(w);
  internal::BlasOutput om(out, false);
  internal::parallel_sgemm(ctx, false, true, d.N, d.OUT, d.IN, 1.0f, xm.matrix(), wm.matrix(), 0.0f,
                           om);
  if (bias.defined()) {
    constexpr int64_t kRows = 64;
    internal::parallel_for(ctx, (d.N + kRows - 1) / kRows, static_cast<double>(kRows * d.OUT),
                           [&](int64_t chunk, int) {
                             for (int64_t n = chunk * kRows; n < std::min(d.N, (chunk + 1) * kRows);
                                  ++n) {
                               float* row = om.data() + n * om.ld();
                               for (int64_t o = 0; o < d.OUT; ++o) row[o] += bias(o);
                             }
                           });
  }
  om.flush();
}

void linear_backward(ConstTensorView x, ConstTensorView w, ConstTensorView dout, TensorView dx,
                     TensorView dw, TensorView dbias, const Context& ctx) {
  const auto d = internal::check_linear_backward_args("linear_backward", x, w, dout, dx, dw, dbias);
  internal::BlasInput gm(dout);
  if (dx.defined()) {  // dx (N, IN) += dout (N, OUT) · w (OUT, IN)
    internal::BlasInput wm(w);
    internal::BlasOutput out(dx, true);
    internal::parallel_sgemm(ctx, false, false, d.N, d.IN, d.OUT, 1.0f, gm.matrix(), wm.matrix(),
                             1.0f, out);
    out.flush();
  }
  if (dw.defined()) {  // dw (OUT, IN) += doutᵀ (OUT, N) · x (N, IN)
    internal::BlasInput xm(x);
    internal::BlasOutput out(dw, true);
    internal::parallel_sgemm(ctx, true, false, d.OUT, d.IN, d.N, 1.0f, gm.matrix(), xm.matrix(),
                             1.0f, out);
    out.flush();
  }
  if (dbias.defined()) {  // column sums in row order, 16 columns per task
    constexpr int64_t kCols = 16;
    const internal::BlasMatrix g = gm.matrix();
    internal::parallel_for(ctx, (d.OUT + kCols - 1) / kCols, static_cast<double>(kCols * d.N),
                           [&](int64_t chunk, int) {
                             const int64_t o0 = chunk * kCols, n_cols = std::min(kCols, d.OUT - o0);
                             float acc[kCols] = {};
                             for (int64_t n = 0; n < d.N; ++n)
                               for (int64_t o = 0; o < n_cols; ++o)
                                 acc[o] += g.data[n * g.ld + o0 + o];
                             for (int64_t o = 0; o < n_cols; ++o) dbias(o0 + o) += acc[o];
                           });
  }
}

}  // namespace attn::ops
