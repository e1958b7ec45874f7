// SPDX-License-Identifier: MIT
// Fast batch norm: one task per channel (sums over B·L in double, two passes), tested against
// batch_norm_reference.cc.
#include <cmath>

#include "attn/ops/batch_norm.h"
#include "core/parallel.h"
#include "ops/internal/batch_norm_checks.h"

namespace attn::ops {
namespace {

double D(float v) { return static_cast<double>(v); }

// Σ f(x[b, c, l]) over b and l for channel c.
template <typename F>
double channel_sum(ConstTensorView x, F&& f) {
  double s = 0.0;
  for (int64_t b = 0; b < x.dim(0); ++b)
    for (int64_t l = 0; l < x.dim(2); ++l) s += static_cast<double>(f(b, l));
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
  internal::parallel_for(ctx, d.C, 3.0 * n, [&](int64_t c, int) {
    double mean, var;
    if (batch_stats) {
      mean = channel_sum(x, [&](int64_t b, int64_t l) { return x(b, c, l); }) / n;
      var = channel_sum(x,
                        [&](int64_t b, int64_t l) {
                          const double e = D(x(b, c, l)) - mean;
                          return e * e;
                        }) /
            n;
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
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t l = 0; l < d.L; ++l) out(b, c, l) = x(b, c, l) * scale + shift;
  });
}

void batch_norm_backward(ConstTensorView x, ConstTensorView weight, ConstTensorView save_mean,
                         ConstTensorView save_rstd, bool batch_stats, ConstTensorView dout,
                         TensorView dx, TensorView dweight, TensorView dbias, const Context& ctx) {
  const auto d = internal::check_batch_norm_backward_args(
      "batch_norm_backward", x, weight, save_mean, save_rstd, dout, dx, dweight, dbias);
  const double n = static_cast<double>(d.B * d.L);
  internal::parallel_for(ctx, d.C, 4.0 * n, [&](int64_t c, int) {
    const double mean = D(save_mean(c)), rstd = D(save_rstd(c));
    const double w = weight.defined() ? D(weight(c)) : 1.0;
    const double sum_g = channel_sum(x, [&](int64_t b, int64_t l) { return dout(b, c, l); });
    const double sum_gx = channel_sum(x, [&](int64_t b, int64_t l) {
      return D(dout(b, c, l)) * ((D(x(b, c, l)) - mean) * rstd);
    });
    if (dweight.defined()) dweight(c) += static_cast<float>(sum_gx);
    if (dbias.defined()) dbias(c) += static_cast<float>(sum_g);
    if (!dx.defined()) return;
    // dx = k·(dout − a − xhat·m) with k = w·rstd, a = mean(dout), m = mean(dout·xhat) (batch
    // statistics), or k·dout (running statistics).
    const double k = w * rstd, a = batch_stats ? sum_g / n : 0.0,
                 m = batch_stats ? sum_gx / n : 0.0;
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t l = 0; l < d.L; ++l) {
        const double xhat = (D(x(b, c, l)) - mean) * rstd;
        dx(b, c, l) += static_cast<float>(k * (D(dout(b, c, l)) - a - xhat * m));
      }
  });
}

}  // namespace attn::ops
