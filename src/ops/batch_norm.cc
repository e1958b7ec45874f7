// SPDX-License-Identifier: MIT
// Fast batch norm: one task per channel (sums over B·L in double, two passes), tested against
// batch_norm_reference.cc.
#include <cmath>

#include "attn/ops/batch_norm.h"
#include "core/parallel.h"
#include "ops/internal/batch_norm_checks.h"
#include "ops/internal/dense.h"

namespace attn::ops {
namespace {

double D(float v) { return static_cast<double>(v); }

// Σ f(v) over channel c of a contiguous (B, C, L) buffer: B runs of L values. Eight partial sums
// in a fixed pattern (element l goes to sum l mod 8), so the adds vectorise and the result is still
// the same for any thread count.
template <typename F>
double channel_sum(const float* x, const internal::BatchNormDims& d, int64_t c, F&& f) {
  constexpr int64_t kLanes = 8;
  double part[kLanes] = {};
  for (int64_t b = 0; b < d.B; ++b) {
    const float* row = x + (b * d.C + c) * d.L;
    int64_t l = 0;
    for (; l + kLanes <= d.L; l += kLanes)
      for (int64_t j = 0; j < kLanes; ++j) part[j] += f(row[l + j]);
    for (; l < d.L; ++l) part[l % kLanes] += f(row[l]);
  }
  double s = 0.0;
  for (double p : part) s += p;
  return s;
}

}  // namespace

void batch_norm_forward(ConstTensorView x, ConstTensorView weight, ConstTensorView bias,
                        TensorView running_mean, TensorView running_var, bool batch_stats,
                        double momentum, double eps, TensorView out, TensorView save_mean,
                        TensorView save_rstd, const Context& ctx) {
  const auto d = internal::check_batch_norm_forward_args("batch_norm_forward", x, weight, bias,
                                                         running_mean, running_var, batch_stats,
                                                         momentum, eps, out, save_mean, save_rstd);
  const double n = static_cast<double>(d.B * d.L);
  const internal::Dense xd(x);
  internal::DenseOut od(out);
  internal::parallel_for(ctx, d.C, 3.0 * n, [&](int64_t c, int) {
    double mean, var;
    if (batch_stats) {
      mean = channel_sum(xd.data, d, c, [](float v) { return D(v); }) / n;
      var = channel_sum(xd.data, d, c, [&](float v) { return (D(v) - mean) * (D(v) - mean); }) / n;
      if (running_mean.defined()) {
        running_mean(c) = static_cast<float>((1 - momentum) * D(running_mean(c)) + momentum * mean);
        running_var(c) =
            static_cast<float>((1 - momentum) * D(running_var(c)) + momentum * var * n / (n - 1));
      }
    } else {
      mean = D(running_mean(c));
      var = D(running_var(c));
    }
    const double rstd = 1.0 / std::sqrt(var + eps);
    save_mean(c) = static_cast<float>(mean);
    save_rstd(c) = static_cast<float>(rstd);
    const float scale = static_cast<float>(rstd * (weight.defined() ? D(weight(c)) : 1.0));
    const float shift = static_cast<float>((bias.defined() ? D(bias(c)) : 0.0) - mean * D(scale));
    for (int64_t b = 0; b < d.B; ++b) {
      const float* in = xd.data + (b * d.C + c) * d.L;
      float* o = od.data + (b * d.C + c) * d.L;
      for (int64_t l = 0; l < d.L; ++l) o[l] = in[l] * scale + shift;
    }
  });
  od.flush_overwrite();
}

void batch_norm_backward(ConstTensorView x, ConstTensorView weight, ConstTensorView save_mean,
                         ConstTensorView save_rstd, bool batch_stats, ConstTensorView dout,
                         TensorView dx, TensorView dweight, TensorView dbias, const Context& ctx) {
  const auto d = internal::check_batch_norm_backward_args(
      "batch_norm_backward", x, weight, save_mean, save_rstd, dout, dx, dweight, dbias);
  const double n = static_cast<double>(d.B * d.L);
  const internal::Dense xd(x), gd(dout);
  internal::DenseOut dxo(dx);
  internal::parallel_for(ctx, d.C, 4.0 * n, [&](int64_t c, int) {
    const double mean = D(save_mean(c)), rstd = D(save_rstd(c));
    const double w = weight.defined() ? D(weight(c)) : 1.0;
    const double sum_g = channel_sum(gd.data, d, c, [](float g) { return D(g); });
    // Σ g·xhat = rstd·(Σ g·x − mean·Σ g), with Σ g·x over products rounded to double exactly.
    double sum_gxs[8] = {};
    for (int64_t b = 0; b < d.B; ++b) {
      const float* xr = xd.data + (b * d.C + c) * d.L;
      const float* gr = gd.data + (b * d.C + c) * d.L;
      int64_t l = 0;
      for (; l + 8 <= d.L; l += 8)
        for (int64_t j = 0; j < 8; ++j) sum_gxs[j] += D(gr[l + j]) * (D(xr[l + j]) - mean);
      for (; l < d.L; ++l) sum_gxs[l % 8] += D(gr[l]) * (D(xr[l]) - mean);
    }
    double sum_gx = 0.0;
    for (double p : sum_gxs) sum_gx += p;
    sum_gx *= rstd;
    if (dweight.defined()) dweight(c) += static_cast<float>(sum_gx);
    if (dbias.defined()) dbias(c) += static_cast<float>(sum_g);
    if (!dxo.data) return;
    // dx = k·(dout − a − xhat·m) with k = w·rstd, a = mean(dout), m = mean(dout·xhat) (batch
    // statistics), or k·dout (running statistics). In float: xhat·m = (x − mean)·(rstd·m).
    const double a = batch_stats ? sum_g / n : 0.0, m = batch_stats ? sum_gx / n : 0.0;
    const auto k = static_cast<float>(w * rstd), fa = static_cast<float>(a),
               fm = static_cast<float>(rstd * m), fmean = static_cast<float>(mean);
    for (int64_t b = 0; b < d.B; ++b) {
      const float* xr = xd.data + (b * d.C + c) * d.L;
      const float* gr = gd.data + (b * d.C + c) * d.L;
      float* o = dxo.data + (b * d.C + c) * d.L;
      for (int64_t l = 0; l < d.L; ++l) o[l] += k * (gr[l] - fa - (xr[l] - fmean) * fm);
    }
  });
  dxo.flush_accumulate();
}

}  // namespace attn::ops
