// SPDX-License-Identifier: MIT
// Fast linear layer: one OpenBLAS sgemm per product (tested against linear_reference.cc).
#include "attn/ops/linear.h"

#include "ops/internal/blas.h"
#include "ops/internal/linear_checks.h"

namespace attn::ops {

void linear_forward(ConstTensorView x, ConstTensorView w, ConstTensorView bias, TensorView out,
                    const Context& ctx) {
  const auto d = internal::check_linear_forward_args("linear_forward", x, w, bias, out);
  internal::set_blas_threads(ctx.num_threads());
  internal::BlasInput xm(x), wm(w);
  internal::BlasOutput om(out, false);
  internal::sgemm(false, true, d.N, d.OUT, d.IN, 1.0f, xm.matrix(), wm.matrix(), 0.0f, om);
  if (bias.defined())
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t o = 0; o < d.OUT; ++o) om.data()[n * om.ld() + o] += bias(o);
  om.flush();
}

void linear_backward(ConstTensorView x, ConstTensorView w, ConstTensorView dout, TensorView dx,
                     TensorView dw, TensorView dbias, const Context& ctx) {
  const auto d = internal::check_linear_backward_args("linear_backward", x, w, dout, dx, dw, dbias);
  internal::set_blas_threads(ctx.num_threads());
  internal::BlasInput gm(dout);
  if (dx.defined()) {  // dx (N, IN) += dout (N, OUT) · w (OUT, IN)
    internal::BlasInput wm(w);
    internal::BlasOutput out(dx, true);
    internal::sgemm(false, false, d.N, d.IN, d.OUT, 1.0f, gm.matrix(), wm.matrix(), 1.0f, out);
    out.flush();
  }
  if (dw.defined()) {  // dw (OUT, IN) += doutᵀ (OUT, N) · x (N, IN)
    internal::BlasInput xm(x);
    internal::BlasOutput out(dw, true);
    internal::sgemm(true, false, d.OUT, d.IN, d.N, 1.0f, gm.matrix(), xm.matrix(), 1.0f, out);
    out.flush();
  }
  if (dbias.defined())
    for (int64_t o = 0; o < d.OUT; ++o) {
      float acc = 0.0f;
      for (int64_t n = 0; n < d.N; ++n) acc += dout(n, o);
      dbias(o) += acc;
    }
}

}  // namespace attn::ops
