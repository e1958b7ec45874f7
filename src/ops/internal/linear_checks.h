// SPDX-License-Identifier: MIT
// Argument checks of linear_forward/backward, shared by the fast and reference versions.
#pragma once

#include "ops/internal/checks.h"

namespace attn::internal {

struct LinearDims {
  int64_t N, IN, OUT;
};

template <typename T>
LinearDims check_linear_inputs(const char* fn, const BasicView<const T>& x,
                               const BasicView<const T>& w) {
  check_rank(fn, "x", x, 2);
  check_rank(fn, "w", w, 2);
  if (w.dim(1) != x.dim(1))
    fail<ShapeError>(fn, "w has shape ", w.shape().str(), " (OUT, IN) but x has shape ",
                     x.shape().str(), " (N, IN): IN differs");
  return {x.dim(0), x.dim(1), w.dim(0)};
}

template <typename T>
LinearDims check_linear_forward_args(const char* fn, const BasicView<const T>& x,
                                     const BasicView<const T>& w, const BasicView<const T>& bias,
                                     const BasicView<T>& out) {
  const LinearDims d = check_linear_inputs(fn, x, w);
  if (bias.defined()) check_shape(fn, "bias", bias, Shape{d.OUT}, "(OUT)");
  check_shape(fn, "out", out, Shape{d.N, d.OUT}, "(N, OUT)");
  check_output(fn, "out", out, x, w, bias);
  return d;
}

template <typename T>
LinearDims check_linear_backward_args(const char* fn, const BasicView<const T>& x,
                                      const BasicView<const T>& w, const BasicView<const T>& dout,
                                      const BasicView<T>& dx, const BasicView<T>& dw,
                                      const BasicView<T>& dbias) {
  const LinearDims d = check_linear_inputs(fn, x, w);
  check_shape(fn, "dout", dout, Shape{d.N, d.OUT}, "(N, OUT)");
  if (dx.defined()) check_shape(fn, "dx", dx, x.shape(), "same as x");
  if (dw.defined()) check_shape(fn, "dw", dw, w.shape(), "same as w");
  if (dbias.defined()) check_shape(fn, "dbias", dbias, Shape{d.OUT}, "(OUT)");
  check_output(fn, "dx", dx, x, w, dout, dw, dbias);
  check_output(fn, "dw", dw, x, w, dout, dbias);
  check_output(fn, "dbias", dbias, x, w, dout);
  return d;
}

}  // namespace attn::internal
