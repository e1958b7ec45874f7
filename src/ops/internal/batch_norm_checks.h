// SPDX-License-Identifier: MIT
// Argument checks of batch_norm_forward/backward, shared by the fast and reference versions.
#pragma once

#include "ops/internal/checks.h"

namespace attn::internal {

struct BatchNormDims {
  int64_t B, C, L;
};

template <typename T>
void check_channel_vector(const char* fn, const char* name, const BasicView<T>& v, int64_t C) {
  if (v.defined()) check_shape(fn, name, v, Shape{C}, "(C)");
}

template <typename T>
BatchNormDims check_batch_norm_forward_args(
    const char* fn, const BasicView<const T>& x, const BasicView<const T>& weight,
    const BasicView<const T>& bias, const BasicView<T>& running_mean,
    const BasicView<T>& running_var, bool batch_stats, double momentum, double eps,
    const BasicView<T>& out, const BasicView<T>& save_mean, const BasicView<T>& save_rstd) {
  check_rank(fn, "x", x, 3);
  const BatchNormDims d{x.dim(0), x.dim(1), x.dim(2)};
  check_channel_vector(fn, "weight", weight, d.C);
  check_channel_vector(fn, "bias", bias, d.C);
  check_channel_vector(fn, "running_mean", running_mean, d.C);
  check_channel_vector(fn, "running_var", running_var, d.C);
  if (running_mean.defined() != running_var.defined())
    fail<ValueError>(fn, "running_mean and running_var must be given together");
  if (!batch_stats && !running_mean.defined())
    fail<ValueError>(fn,
                     "evaluation mode (batch_stats = false) needs running_mean and running_var");
  if (batch_stats && d.B * d.L <= 1)
    fail<ValueError>(fn, "batch statistics need more than 1 value per channel, x has shape ",
                     x.shape().str());
  if (!(eps >= 0.0) || !std::isfinite(eps))
    fail<ValueError>(fn, "eps must be finite and >= 0, got ", eps);
  if (!(momentum >= 0.0 && momentum <= 1.0))
    fail<ValueError>(fn, "momentum must be in [0, 1], got ", momentum);
  check_shape(fn, "out", out, x.shape(), "same as x");
  check_shape(fn, "save_mean", save_mean, Shape{d.C}, "(C)");
  check_shape(fn, "save_rstd", save_rstd, Shape{d.C}, "(C)");
  check_output(fn, "out", out, x, weight, bias, running_mean, running_var, save_mean, save_rstd);
  check_output(fn, "save_mean", save_mean, x, weight, bias, running_mean, running_var, save_rstd);
  check_output(fn, "save_rstd", save_rstd, x, weight, bias, running_mean, running_var);
  check_output(fn, "running_mean", running_mean, x, weight, bias, running_var);
  check_output(fn, "running_var", running_var, x, weight, bias);
  return d;
}

template <typename T>
BatchNormDims check_batch_norm_backward_args(const char* fn, const BasicView<const T>& x,
                                             const BasicView<const T>& weight,
                                             const BasicView<const T>& save_mean,
                                             const BasicView<const T>& save_rstd,
                                             const BasicView<const T>& dout, const BasicView<T>& dx,
                                             const BasicView<T>& dweight,
                                             const BasicView<T>& dbias) {
  check_rank(fn, "x", x, 3);
  const BatchNormDims d{x.dim(0), x.dim(1), x.dim(2)};
  check_channel_vector(fn, "weight", weight, d.C);
  check_shape(fn, "save_mean", save_mean, Shape{d.C}, "(C)");
  check_shape(fn, "save_rstd", save_rstd, Shape{d.C}, "(C)");
  check_shape(fn, "dout", dout, x.shape(), "same as x");
  if (dx.defined()) check_shape(fn, "dx", dx, x.shape(), "same as x");
  check_channel_vector(fn, "dweight", dweight, d.C);
  check_channel_vector(fn, "dbias", dbias, d.C);
  check_output(fn, "dx", dx, x, weight, save_mean, save_rstd, dout, dweight, dbias);
  check_output(fn, "dweight", dweight, x, weight, save_mean, save_rstd, dout, dbias);
  check_output(fn, "dbias", dbias, x, weight, save_mean, save_rstd, dout);
  return d;
}

}  // namespace attn::internal
