// SPDX-License-Identifier: MIT
// Highway SIMD loops of the optimisers, compiled per target and dispatched at run time
// (train/internal/optim_kernels.h). AdamW's plain loop (three double divisions and a square root an
// element, scalar in the baseline build) was a tenth of a small model's training step.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "train/optim_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target re-includes this file once per target; everything below is per target.
#include <algorithm>

#include "core/simd_helpers.h"
#include "hwy/highway.h"
#include "train/internal/optim_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attn::internal::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DD = hn::ScalableTag<double>;
using DH = hn::Rebind<float, DD>;

// The tail takes the vector path too, on its first lanes (the padding lanes compute on zeros: no
// division by zero, eps > 0, and they are never stored), so there is one copy of the arithmetic.
void AdamWUpdate(float* w, const float* g, float* m, float* v, size_t n, const AdamWStep& s) {
  using simd::HWY_NAMESPACE::load_first_n;
  using simd::HWY_NAMESPACE::store_first_n;
  const DD dd;
  const DH dh;
  const size_t NL = hn::Lanes(dd);
  const auto b1 = hn::Set(dd, s.beta1), one_b1 = hn::Set(dd, 1.0 - s.beta1);
  const auto b2 = hn::Set(dd, s.beta2), one_b2 = hn::Set(dd, 1.0 - s.beta2);
  const auto lr = hn::Set(dd, s.lr), decay = hn::Set(dd, s.decay), eps = hn::Set(dd, s.eps);
  const auto c1 = hn::Set(dd, s.c1), c2 = hn::Set(dd, s.c2);
  for (size_t k = 0; k < n; k += NL) {
    const size_t count = std::min(NL, n - k);
    auto wide = [&](const float* p) { return hn::PromoteTo(dd, load_first_n(dh, p + k, count)); };
    auto narrow_to = [&](float* p, hn::Vec<DD> x) {
      store_first_n(hn::DemoteTo(dh, x), dh, p + k, count);
    };
    const auto gk = wide(g);
    const auto mk = hn::Add(hn::Mul(b1, wide(m)), hn::Mul(one_b1, gk));
    const auto vk = hn::Add(hn::Mul(b2, wide(v)), hn::Mul(hn::Mul(one_b2, gk), gk));
    const auto step = hn::Div(hn::Mul(lr, hn::Div(mk, c1)), hn::Add(hn::Sqrt(hn::Div(vk, c2)), eps));
    narrow_to(w, hn::Sub(hn::Mul(wide(w), decay), step));
    narrow_to(m, mk);
    narrow_to(v, vk);
  }
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
