// SPDX-License-Identifier: MIT
// Argument checks and geometry of conv2d, shared by the fast and reference versions.
#pragma once

#include "attn/ops/conv.h"
#include "ops/internal/checks.h"

namespace attn::internal {

struct ConvDims {
  int64_t B, C_in, H, W, C_out, KH, KW, OH, OW, G;  // G: groups
  int64_t cin_g() const { return C_in / G; }
  int64_t cout_g() const { return C_out / G; }
};

ConvDims conv2d_dims(const char* fn, const Shape& x, const Shape& w, const ops::Conv2dOptions& o);

template <typename T>
ConvDims check_conv2d_forward_args(const char* fn, const BasicView<const T>& x,
                                   const BasicView<const T>& w, const BasicView<const T>& bias,
                                   const ops::Conv2dOptions& o, const BasicView<T>& out) {
  check_rank(fn, "x", x, 4);
  check_rank(fn, "w", w, 4);
  const ConvDims d = conv2d_dims(fn, x.shape(), w.shape(), o);
  if (bias.defined()) check_shape(fn, "bias", bias, Shape{d.C_out}, "(C_out)");
  check_shape(fn, "out", out, Shape{d.B, d.C_out, d.OH, d.OW}, "(B, C_out, OH, OW)");
  check_output(fn, "out", out, x, w, bias);
  return d;
}

template <typename T>
ConvDims check_conv2d_backward_args(const char* fn, const BasicView<const T>& x,
                                    const BasicView<const T>& w, const BasicView<const T>& dout,
                                    const ops::Conv2dOptions& o, const BasicView<T>& dx,
                                    const BasicView<T>& dw, const BasicView<T>& dbias) {
  check_rank(fn, "x", x, 4);
  check_rank(fn, "w", w, 4);
  const ConvDims d = conv2d_dims(fn, x.shape(), w.shape(), o);
  check_shape(fn, "dout", dout, Shape{d.B, d.C_out, d.OH, d.OW}, "(B, C_out, OH, OW)");
  if (dx.defined()) check_shape(fn, "dx", dx, x.shape(), "same as x");
  if (dw.defined()) check_shape(fn, "dw", dw, w.shape(), "same as w");
  if (dbias.defined()) check_shape(fn, "dbias", dbias, Shape{d.C_out}, "(C_out)");
  check_output(fn, "dx", dx, x, w, dout, dw, dbias);
  check_output(fn, "dw", dw, x, w, dout, dbias);
  check_output(fn, "dbias", dbias, x, w, dout);
  return d;
}

}  // namespace attn::internal
