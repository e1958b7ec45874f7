// SPDX-License-Identifier: MIT
// Highway SIMD loops of the optimisers, compiled per target and dispatched at run time
// (train/internal/optim_kernels.h). AdamW's plain loop (three double divisions and a square root an
// element, scalar in the baseline build) was a tenth of a small model's training step.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "train/optim_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target re-includes this file once per target; everything below is per target.
#include <cmath>

#include "hwy/highway.h"
#include "train/internal/optim_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attn::internal::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DD = hn::ScalableTag<double>;
using DH = hn::Rebind<float, DD>;

// One element the plain way (the tail): the same operations in the same order as the vectors.
inline void adamw_element(float& w, float g, float& m, float& v, const AdamWStep& s) {
  const double gk = static_cast<double>(g);
  const double mk = s.beta1 * static_cast<double>(m) + (1.0 - s.beta1) * gk;
  const double vk = s.beta2 * static_cast<double>(v) + (1.0 - s.beta2) * gk * gk;
  m = static_cast<float>(mk);
  v = static_cast<float>(vk);
  const double wk = static_cast<double>(w) * s.decay;
  w = static_cast<float>(wk - s.lr * (mk / s.c1) / (std::sqrt(vk / s.c2) + s.eps));
}

void AdamWUpdate(float* w, const float* g, float* m, float* v, size_t n, const AdamWStep& s) {
  const DD dd;
  const DH dh;
  const size_t NL = hn::Lanes(dd);
  const auto b1 = hn::Set(dd, s.beta1), one_b1 = hn::Set(dd, 1.0 - s.beta1);
  const auto b2 = hn::Set(dd, s.beta2), one_b2 = hn::Set(dd, 1.0 - s.beta2);
  const auto lr = hn::Set(dd, s.lr), decay = hn::Set(dd, s.decay), eps = hn::Set(dd, s.eps);
  const auto c1 = hn::Set(dd, s.c1), c2 = hn::Set(dd, s.c2);
  auto wide = [&](const float* p) { return hn::PromoteTo(dd, hn::LoadU(dh, p)); };
  size_t k = 0;
  for (; k + NL <= n; k += NL) {
    const auto gk = wide(g + k);
    const auto mk = hn::Add(hn::Mul(b1, wide(m + k)), hn::Mul(one_b1, gk));
    const auto vk = hn::Add(hn::Mul(b2, wide(v + k)), hn::Mul(hn::Mul(one_b2, gk), gk));
    hn::StoreU(hn::DemoteTo(dh, mk), dh, m + k);
    hn::StoreU(hn::DemoteTo(dh, vk), dh, v + k);
    const auto step = hn::Div(hn::Mul(lr, hn::Div(mk, c1)), hn::Add(hn::Sqrt(hn::Div(vk, c2)), eps));
    hn::StoreU(hn::DemoteTo(dh, hn::Sub(hn::Mul(wide(w + k), decay), step)), dh, w + k);
  }
  for (; k < n; ++k) adamw_element(w[k], g[k], m[k], v[k], s);
}

}  // namespace HWY_NAMESPACE
}  // namespace attn::internal::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attn::internal::kernels {

HWY_EXPORT(AdamWUpdate);

void adamw_update(float* w, const float* g, float* m, float* v, size_t n, const AdamWStep& s) {
  HWY_DYNAMIC_DISPATCH(AdamWUpdate)(w, g, m, v, n, s);
}

}  // namespace attn::internal::kernels
#endif  // HWY_ONCE
