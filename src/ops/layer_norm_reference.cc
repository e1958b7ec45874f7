// SPDX-License-Identifier: MIT
// Reference layer norm over the last dimension (biased variance, as torch.nn.LayerNorm), double
// accumulation.
#include <cmath>
#include <vector>

#include "attn/ops/layer_norm.h"
#include "ops/internal/norm_checks.h"
#include "ops/internal/rows.h"

namespace attn::ops::reference {

namespace {

template <typename T>
void forward_impl(BasicView<const T> x, BasicView<const T> weight, BasicView<const T> bias,
                  double eps, BasicView<T> out, BasicView<T> mean, BasicView<T> rstd) {
  internal::check_layer_norm_forward_args(x, weight, bias, eps, out, mean, rstd);
  const int64_t C = x.dim(-1);
  const auto xr = internal::row_offsets(x), orow = internal::row_offsets(out);
  std::vector<int64_t> mr, rr;
  for_each_offset(mean, [&](int64_t o) { mr.push_back(o); });
  for_each_offset(rstd, [&](int64_t o) { rr.push_back(o); });
  for (size_t r = 0; r < xr.size(); ++r) {
    auto xv = [&](int64_t c) { return static_cast<double>(x.data()[xr[r] + c * x.stride(-1)]); };
    double m = 0.0;
    for (int64_t c = 0; c < C; ++c) m += xv(c);
    m /= static_cast<double>(C);
    double var = 0.0;
    for (int64_t c = 0; c < C; ++c) var += (xv(c) - m) * (xv(c) - m);
    var /= static_cast<double>(C);
    const double s = 1.0 / std::sqrt(var + eps);
    for (int64_t c = 0; c < C; ++c) {
      double y = (xv(c) - m) * s;
      if (weight.defined()) y *= static_cast<double>(weight(c));
      if (bias.defined()) y += static_cast<double>(bias(c));
      out.data()[orow[r] + c * out.stride(-1)] = static_cast<T>(y);
    }
    mean.data()[mr[r]] = static_cast<T>(m);
    rstd.data()[rr[r]] = static_cast<T>(s);
  }
}

// Forward: xhat = (x − μ)·σ⁻¹, y = xhat ⊙ w + b. With g = dy ⊙ w (or dy without weight):
//   dx = σ⁻¹ · (g − mean(g) − xhat · mean(g ⊙ xhat)),   dw = Σ_rows dy ⊙ xhat,   db = Σ_rows dy.
template <typename T>
void backward_impl(BasicView<const T> x, BasicView<const T> weight, BasicView<const T> mean,
                   BasicView<const T> rstd, BasicView<const T> dout, BasicView<T> dx,
                   BasicView<T> dweight, BasicView<T> dbias) {
  internal::check_layer_norm_backward_args(x, weight, mean, rstd, dout, dx, dweight, dbias);
  const int64_t C = x.dim(-1);
  const auto xr = internal::row_offsets(x), gr = internal::row_offsets(dout);
  const auto dxr = dx.defined() ? internal::row_offsets(dx) : std::vector<int64_t>{};
  std::vector<int64_t> mr, rr;
  for_each_offset(mean, [&](int64_t o) { mr.push_back(o); });
  for_each_offset(rstd, [&](int64_t o) { rr.push_back(o); });
  std::vector<double> xhat(static_cast<size_t>(C)), g(static_cast<size_t>(C));
  for (size_t r = 0; r < xr.size(); ++r) {
    const double m = mean.data()[mr[r]], s = rstd.data()[rr[r]];
    double g_mean = 0.0, gx_mean = 0.0;
    for (int64_t c = 0; c < C; ++c) {
      const auto uc = static_cast<size_t>(c);
      const double dy = dout.data()[gr[r] + c * dout.stride(-1)];
      xhat[uc] = (static_cast<double>(x.data()[xr[r] + c * x.stride(-1)]) - m) * s;
      g[uc] = weight.defined() ? dy * static_cast<double>(weight(c)) : dy;
      g_mean += g[uc];
      gx_mean += g[uc] * xhat[uc];
      if (dweight.defined()) dweight(c) += static_cast<T>(dy * xhat[uc]);
      if (dbias.defined()) dbias(c) += static_cast<T>(dy);
    }
    g_mean /= static_cast<double>(C);
    gx_mean /= static_cast<double>(C);
    if (dx.defined())
      for (int64_t c = 0; c < C; ++c) {
        const auto uc = static_cast<size_t>(c);
        dx.data()[dxr[r] + c * dx.stride(-1)] +=
            static_cast<T>(s * (g[uc] - g_mean - xhat[uc] * gx_mean));
      }
  }
}

}  // namespace

void layer_norm_forward(ConstTensorView x, ConstTensorView weight, ConstTensorView bias, double eps,
                        TensorView out, TensorView mean, TensorView rstd, const Context&) {
  forward_impl<float>(x, weight, bias, eps, out, mean, rstd);
}
void layer_norm_forward(ConstTensorViewD x, ConstTensorViewD weight, ConstTensorViewD bias,
                        double eps, TensorViewD out, TensorViewD mean, TensorViewD rstd,
                        const Context&) {
  forward_impl<double>(x, weight, bias, eps, out, mean, rstd);
}
void layer_norm_backward(ConstTensorView x, ConstTensorView weight, ConstTensorView mean,
                         ConstTensorView rstd, ConstTensorView dout, TensorView dx,
                         TensorView dweight, TensorView dbias, const Context&) {
  backward_impl<float>(x, weight, mean, rstd, dout, dx, dweight, dbias);
}
void layer_norm_backward(ConstTensorViewD x, ConstTensorViewD weight, ConstTensorViewD mean,
                         ConstTensorViewD rstd, ConstTensorViewD dout, TensorViewD dx,
                         TensorViewD dweight, TensorViewD dbias, const Context&) {
  backward_impl<double>(x, weight, mean, rstd, dout, dx, dweight, dbias);
}

}  // namespace attn::ops::reference
