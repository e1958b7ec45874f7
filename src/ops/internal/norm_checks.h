// SPDX-License-Identifier: MIT
// Argument checks of layer_norm_* and softmax_*, shared by the fast ops and their references so
// that both reject the same inputs with the same messages.
#pragma once

#include <cmath>

#include "ops/internal/checks.h"

namespace attn::internal {

template <typename T>
Shape leading_shape(const BasicView<T>& x) {
  return Shape(std::span<const int64_t>(x.shape().begin(), static_cast<size_t>(x.rank() - 1)));
}

template <typename T>
void check_layer_norm_common(const char* fn, const BasicView<const T>& x,
                             const BasicView<const T>& weight) {
  check_defined(fn, "x", x);
  if (x.rank() < 1) fail<ShapeError>(fn, "x must have rank >= 1, got shape ", x.shape().str());
  if (weight.defined())
    check_shape(fn, "weight", weight, Shape{x.dim(-1)}, "(C) with C = x.shape[-1]");
}

template <typename T>
void check_layer_norm_forward_args(const BasicView<const T>& x, const BasicView<const T>& weight,
                                   const BasicView<const T>& bias, double eps,
                                   const BasicView<T>& out, const BasicView<T>& mean,
                                   const BasicView<T>& rstd) {
  constexpr const char* fn = "layer_norm_forward";
  check_layer_norm_common(fn, x, weight);
  const int64_t C = x.dim(-1);
  if (bias.defined()) check_shape(fn, "bias", bias, Shape{C}, "(C) with C = x.shape[-1]");
  if (!std::isfinite(eps) || eps < 0)
    fail<ValueError>(fn, "eps must be finite and >= 0, got ", eps);
  if (C == 0) fail<ShapeError>(fn, "x has an empty last dimension (shape ", x.shape().str(), ")");
  check_shape(fn, "out", out, x.shape(), "same as x");
  check_shape(fn, "mean", mean, leading_shape(x), "x's shape without the last dimension");
  check_shape(fn, "rstd", rstd, leading_shape(x), "x's shape without the last dimension");
  check_output(fn, "out", out, x, weight, bias, mean, rstd);
  check_output(fn, "mean", mean, x, weight, bias, rstd);
  check_output(fn, "rstd", rstd, x, weight, bias);
}

template <typename T>
void check_layer_norm_backward_args(const BasicView<const T>& x, const BasicView<const T>& weight,
                                    const BasicView<const T>& mean, const BasicView<const T>& rstd,
                                    const BasicView<const T>& dout, const BasicView<T>& dx,
                                    const BasicView<T>& dweight, const BasicView<T>& dbias) {
  constexpr const char* fn = "layer_norm_backward";
  check_layer_norm_common(fn, x, weight);
  const int64_t C = x.dim(-1);
  check_shape(fn, "mean", mean, leading_shape(x), "x's shape without the last dimension");
  check_shape(fn, "rstd", rstd, leading_shape(x), "x's shape without the last dimension");
  check_shape(fn, "dout", dout, x.shape(), "same as x");
  if (dx.defined()) check_shape(fn, "dx", dx, x.shape(), "same as x");
  if (dweight.defined()) check_shape(fn, "dweight", dweight, Shape{C}, "(C)");
  if (dbias.defined()) check_shape(fn, "dbias", dbias, Shape{C}, "(C)");
  check_output(fn, "dx", dx, x, weight, mean, rstd, dout, dweight, dbias);
  check_output(fn, "dweight", dweight, x, weight, mean, rstd, dout, dbias);
  check_output(fn, "dbias", dbias, x, weight, mean, rstd, dout);
}

template <typename T>
void check_softmax_forward_args(const BasicView<const T>& x, const BasicView<T>& out) {
  constexpr const char* fn = "softmax_forward";
  check_defined(fn, "x", x);
  if (x.rank() < 1) fail<ShapeError>(fn, "x must have rank >= 1, got shape ", x.shape().str());
  check_shape(fn, "out", out, x.shape(), "same as x");
  check_output(fn, "out", out, x);
}

template <typename T>
void check_softmax_backward_args(const BasicView<const T>& out, const BasicView<const T>& dout,
                                 const BasicView<T>& dx) {
  constexpr const char* fn = "softmax_backward";
  check_defined(fn, "out", out);
  if (out.rank() < 1)
    fail<ShapeError>(fn, "out must have rank >= 1, got shape ", out.shape().str());
  check_shape(fn, "dout", dout, out.shape(), "same as out");
  check_shape(fn, "dx", dx, out.shape(), "same as out");
  check_output(fn, "dx", dx, out, dout);
}

}  // namespace attn::internal
