// SPDX-License-Identifier: MIT
// Reference layer norm over the last dimension (biased variance, as torch.nn.LayerNorm), double
// accumulation.
#include <cmath>
#include <vector>

#include "attn/ops/layer_norm.h"
#include "ops/internal/checks.h"
#include "ops/internal/rows.h"

namespace attn::ops::reference {

namespace {

template <typename T>
Shape leading_shape(const BasicView<T>& x) {
  return Shape(std::span<const int64_t>(x.shape().begin(), static_cast<size_t>(x.rank() - 1)));
}

template <typename T>
void check_common(const char* fn, const BasicView<const T>& x, const BasicView<const T>& weight) {
  internal::check_defined(fn, "x", x);
  if (x.rank() < 1) fail<ShapeError>(fn, "x must have rank >= 1, got shape ", x.shape().str());
  if (weight.defined()) internal::check_shape(fn, "weight", weight, Shape{x.dim(-1)}, "(C) with C = x.shape[-1]");
}

template <typename T>
void forward_impl(BasicView<const T> x, BasicView<const T> weight, BasicView<const T> bias, double eps,
                  BasicView<T> out, BasicView<T> mean, BasicView<T> rstd) {
  constexpr const char* fn = "layer_norm_forward";
  check_common(fn, x, weight);
  const int64_t C = x.dim(-1);
  if (bias.defined()) internal::check_shape(fn, "bias", bias, Shape{C}, "(C) with C = x.shape[-1]");
  if (!std::isfinite(eps) || eps < 0) fail<ValueError>(fn, "eps must be finite and >= 0, got ", eps);
  if (C == 0) fail<ShapeError>(fn, "x has an empty last dimension (shape ", x.shape().str(), ")");
  internal::check_shape(fn, "out", out, x.shape(), "same as x");
  internal::check_shape(fn, "mean", mean, leading_shape(x), "x's shape without the last dimension");
  internal::check_shape(fn, "rstd", rstd, leading_shape(x), "x's shape without the last dimension");
  internal::check_output(fn, "out", out, x, weight, bias, mean, rstd);
  internal::check_output(fn, "mean", mean, x, weight, bias, rstd);
  internal::check_output(fn, "rstd", rstd, x, weight, bias);
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
                   BasicView<const T> rstd, BasicView<const T> dout, BasicView<T> dx, BasicView<T> dweight,
                   BasicView<T> dbias) {
  constexpr const char* fn = "layer_norm_backward";
  check_common(fn, x, weight);
  const int64_t C = x.dim(-1);
  internal::check_shape(fn, "mean", mean, leading_shape(x), "x's shape without the last dimension");
  internal::check_shape(fn, "rstd", rstd, leading_shape(x), "x's shape without the last dimension");
  internal::check_shape(fn, "dout", dout, x.shape(), "same as x");
  if (dx.defined()) internal::check_shape(fn, "dx", dx, x.shape(), "same as x");
  if (dweight.defined()) internal::check_shape(fn, "dweight", dweight, Shape{C}, "(C)");
  if (dbias.defined()) internal::check_shape(fn, "dbias", dbias, Shape{C}, "(C)");
  internal::check_output(fn, "dx", dx, x, weight, mean, rstd, dout, dweight, dbias);
  internal::check_output(fn, "dweight", dweight, x, weight, mean, rstd, dout, dbias);
  internal::check_output(fn, "dbias", dbias, x, weight, mean, rstd, dout);
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
        dx.data()[dxr[r] + c * dx.stride(-1)] += static_cast<T>(s * (g[uc] - g_mean - xhat[uc] * gx_mean));
      }
  }
}

}  // namespace

void layer_norm_forward(ConstTensorView x, ConstTensorView weight, ConstTensorView bias, double eps,
                        TensorView out, TensorView mean, TensorView rstd, const Context&) {
  forward_impl<float>(x, weight, bias, eps, out, mean, rstd);
}
void layer_norm_forward(ConstTensorViewD x, ConstTensorViewD weight, ConstTensorViewD bias, double eps,
                        TensorViewD out, TensorViewD mean, TensorViewD rstd, const Context&) {
  forward_impl<double>(x, weight, bias, eps, out, mean, rstd);
}
void layer_norm_backward(ConstTensorView x, ConstTensorView weight, ConstTensorView mean, ConstTensorView rstd,
                         ConstTensorView dout, TensorView dx, TensorView dweight, TensorView dbias,
                         const Context&) {
  backward_impl<float>(x, weight, mean, rstd, dout, dx, dweight, dbias);
}
void layer_norm_backward(ConstTensorViewD x, ConstTensorViewD weight, ConstTensorViewD mean,
                         ConstTensorViewD rstd, ConstTensorViewD dout, TensorViewD dx, TensorViewD dweight,
                         TensorViewD dbias, const Context&) {
  backward_impl<double>(x, weight, mean, rstd, dout, dx, dweight, dbias);
}

}  // namespace attn::ops::reference
