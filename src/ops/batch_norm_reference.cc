// SPDX-License-Identifier: MIT
// The specification of batch norm: the textbook formulas, channel by channel, in double.
#include <cmath>
#include <vector>

#include "attn/ops/batch_norm.h"
#include "ops/internal/batch_norm_checks.h"

namespace attn::ops::reference {

void batch_norm_forward(ConstTensorViewD x, ConstTensorViewD weight, ConstTensorViewD bias,
                        TensorViewD running_mean, TensorViewD running_var, bool batch_stats,
                        double momentum, double eps, TensorViewD out, TensorViewD save_mean,
                        TensorViewD save_rstd, const Context&) {
  const auto d = internal::check_batch_norm_forward_args(
      "reference::batch_norm_forward", x, weight, bias, running_mean, running_var, batch_stats,
      momentum, eps, out, save_mean, save_rstd);
  const double n = static_cast<double>(d.B * d.L);
  for (int64_t c = 0; c < d.C; ++c) {
    std::vector<double> v;
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t l = 0; l < d.L; ++l) v.push_back(x(b, c, l));
    double mean = 0.0, var = 0.0;
    if (batch_stats) {
      for (double e : v) mean += e;
      mean /= n;
      for (double e : v) var += (e - mean) * (e - mean);
      var /= n;
      if (running_mean.defined()) {
        running_mean(c) = (1 - momentum) * running_mean(c) + momentum * mean;
        running_var(c) = (1 - momentum) * running_var(c) + momentum * var * n / (n - 1);
      }
    } else {
      mean = running_mean(c);
      var = running_var(c);
    }
    save_mean(c) = mean;
    save_rstd(c) = 1.0 / std::sqrt(var + eps);
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t l = 0; l < d.L; ++l)
        out(b, c, l) = (x(b, c, l) - mean) * save_rstd(c) * (weight.defined() ? weight(c) : 1.0) +
                       (bias.defined() ? bias(c) : 0.0);
  }
}

void batch_norm_backward(ConstTensorViewD x, ConstTensorViewD weight, ConstTensorViewD save_mean,
                         ConstTensorViewD save_rstd, bool batch_stats, ConstTensorViewD dout,
                         TensorViewD dx, TensorViewD dweight, TensorViewD dbias, const Context&) {
  const auto d = internal::check_batch_norm_backward_args(
      "reference::batch_norm_backward", x, weight, save_mean, save_rstd, dout, dx, dweight, dbias);
  const double n = static_cast<double>(d.B * d.L);
  for (int64_t c = 0; c < d.C; ++c) {
    const double w = weight.defined() ? weight(c) : 1.0;
    double sum_g = 0.0, sum_gx = 0.0;
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t l = 0; l < d.L; ++l) {
        const double xhat = (x(b, c, l) - save_mean(c)) * save_rstd(c);
        sum_g += dout(b, c, l);
        sum_gx += dout(b, c, l) * xhat;
      }
    if (dweight.defined()) dweight(c) += sum_gx;
    if (dbias.defined()) dbias(c) += sum_g;
    if (!dx.defined()) continue;
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t l = 0; l < d.L; ++l) {
        const double xhat = (x(b, c, l) - save_mean(c)) * save_rstd(c);
        const double dxhat = dout(b, c, l) * w;
        // The chain rule through mean and variance (batch statistics); running ones are constants.
        dx(b, c, l) += batch_stats ? save_rstd(c) * (dxhat - w * sum_g / n - xhat * w * sum_gx / n)
                                   : save_rstd(c) * dxhat;
      }
  }
}

}  // namespace attn::ops::reference
