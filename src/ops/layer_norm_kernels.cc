// SPDX-License-Identifier: MIT
// Highway SIMD rows of layer norm, compiled per target and dispatched at run time
// (ops/internal/layer_norm_kernels.h). The scalar loops they replace summed each row in one chain
// of dependent double adds: ~2 ns an element, most of a small model's layer norm.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/layer_norm_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target re-includes this file once per target; everything below is per target.
#include <cmath>

#include "core/simd_helpers.h"
#include "hwy/highway.h"
#include "ops/internal/layer_norm_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attn::internal::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Doubles, and floats as many as there are doubles: sums are in double, element arithmetic in float.
using DD = hn::ScalableTag<double>;
using DH = hn::Rebind<float, DD>;

void LayerNormRow(const float* x, int64_t C, double eps, const float* w, const float* b,
                  float* out, float* mean, float* rstd) {
  const DD dd;
  const DH dh;
  const auto NL = static_cast<int64_t>(hn::Lanes(dd));
  auto wide = [&](int64_t c) { return hn::PromoteTo(dd, hn::LoadU(dh, x + c)); };
  const double m = simd::HWY_NAMESPACE::sum_in_double(dd, x, C) / static_cast<double>(C);
  const auto vm = hn::Set(dd, m);
  // Two chains: one chain of dependent adds would cost more than the arithmetic.
  auto q0 = hn::Zero(dd), q1 = hn::Zero(dd);
  int64_t c = 0;
  for (; c + 2 * NL <= C; c += 2 * NL) {
    const auto d0 = hn::Sub(wide(c), vm), d1 = hn::Sub(wide(c + NL), vm);
    q0 = hn::MulAdd(d0, d0, q0), q1 = hn::MulAdd(d1, d1, q1);
  }
  for (; c + NL <= C; c += NL) {
    const auto d0 = hn::Sub(wide(c), vm);
    q0 = hn::MulAdd(d0, d0, q0);
  }
  double sq = hn::GetLane(hn::SumOfLanes(dd, hn::Add(q0, q1)));
  for (; c < C; ++c) sq += (static_cast<double>(x[c]) - m) * (static_cast<double>(x[c]) - m);
  const auto mf = static_cast<float>(m);
  const auto s = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(C) + eps));
  const auto vmf = hn::Set(dh, mf), vs = hn::Set(dh, s);
  for (c = 0; c + NL <= C; c += NL) {
    auto y = hn::Mul(hn::Sub(hn::LoadU(dh, x + c), vmf), vs);
    if (w) y = hn::Mul(y, hn::LoadU(dh, w + c));
    if (b) y = hn::Add(y, hn::LoadU(dh, b + c));
    hn::StoreU(y, dh, out + c);
  }
  for (; c < C; ++c) {
    float y = (x[c] - mf) * s;
    if (w) y *= w[c];
    if (b) y += b[c];
    out[c] = y;
  }
  *mean = mf;
  *rstd = s;
}

void LayerNormBackwardRow(const float* x, const float* dy, int64_t C, float mean, float rstd,
                          const float* w, float* dx, double* pw) {
  const DD dd;
  const DH dh;
  const auto NL = static_cast<int64_t>(hn::Lanes(dd));
  const auto vm = hn::Set(dh, mean), vs = hn::Set(dh, rstd);
  auto g_acc = hn::Zero(dd), gx_acc = hn::Zero(dd);
  double g_sum = 0.0, gx_sum = 0.0;
  int64_t c = 0;
  for (; c + NL <= C; c += NL) {
    const auto d = hn::LoadU(dh, dy + c);
    const auto xhat = hn::Mul(hn::Sub(hn::LoadU(dh, x + c), vm), vs);
    const auto g = w ? hn::Mul(d, hn::LoadU(dh, w + c)) : d;
    const auto gw = hn::PromoteTo(dd, g), xw = hn::PromoteTo(dd, xhat);
    g_acc = hn::Add(g_acc, gw);
    gx_acc = hn::MulAdd(gw, xw, gx_acc);
    if (pw) {
      const auto dw = hn::PromoteTo(dd, d);
      hn::StoreU(hn::MulAdd(dw, xw, hn::LoadU(dd, pw + c)), dd, pw + c);
      hn::StoreU(hn::Add(hn::LoadU(dd, pw + C + c), dw), dd, pw + C + c);
    }
  }
  for (; c < C; ++c) {
    const float xhat = (x[c] - mean) * rstd, g = w ? dy[c] * w[c] : dy[c];
    g_sum += static_cast<double>(g);
    gx_sum += static_cast<double>(g) * static_cast<double>(xhat);
    if (pw) {
      pw[c] += static_cast<double>(dy[c]) * static_cast<double>(xhat);
      pw[C + c] += static_cast<double>(dy[c]);
    }
  }
  if (!dx) return;
  g_sum += hn::GetLane(hn::SumOfLanes(dd, g_acc));
  gx_sum += hn::GetLane(hn::SumOfLanes(dd, gx_acc));
  const auto g_mean = static_cast<float>(g_sum / static_cast<double>(C));
  const auto gx_mean = static_cast<float>(gx_sum / static_cast<double>(C));
  const auto vg = hn::Set(dh, g_mean), vgx = hn::Set(dh, gx_mean);
  for (c = 0; c + NL <= C; c += NL) {
    const auto d = hn::LoadU(dh, dy + c);
    const auto xhat = hn::Mul(hn::Sub(hn::LoadU(dh, x + c), vm), vs);
    const auto g = w ? hn::Mul(d, hn::LoadU(dh, w + c)) : d;
    const auto step = hn::Mul(vs, hn::Sub(hn::Sub(g, vg), hn::Mul(xhat, vgx)));
    hn::StoreU(hn::Add(hn::LoadU(dh, dx + c), step), dh, dx + c);
  }
  for (; c < C; ++c) {
    const float xhat = (x[c] - mean) * rstd, g = w ? dy[c] * w[c] : dy[c];
    dx[c] += rstd * (g - g_mean - xhat * gx_mean);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace attn::internal::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attn::internal::kernels {

HWY_EXPORT(LayerNormRow);
HWY_EXPORT(LayerNormBackwardRow);

void layer_norm_row(const float* x, int64_t C, double eps, const float* w, const float* b,
                    float* out, float* mean, float* rstd) {
  HWY_DYNAMIC_DISPATCH(LayerNormRow)(x, C, eps, w, b, out, mean, rstd);
}

void layer_norm_backward_row(const float* x, const float* dy, int64_t C, float mean, float rstd,
                             const float* w, float* dx, double* pw) {
  HWY_DYNAMIC_DISPATCH(LayerNormBackwardRow)(x, dy, C, mean, rstd, w, dx, pw);
}

}  // namespace attn::internal::kernels
#endif
