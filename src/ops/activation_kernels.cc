// SPDX-License-Identifier: MIT
// Highway SIMD GELU rows, compiled per target and dispatched at run time
// (ops/internal/activation_kernels.h). std::erf is ~20 ns an element here; this is ~1.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/activation_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target re-includes this file once per target; everything below is per target.
#include <algorithm>

#include "core/simd_helpers.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "ops/internal/activation_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attn::internal::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
// A row's last, partial vector: only its lanes are touched, on every target (core/simd_helpers.h).
using simd::HWY_NAMESPACE::load_first_n;
using simd::HWY_NAMESPACE::store_first_n;

// Φ(x), the standard normal CDF, and (through phi) the density φ(x) = exp(-x²/2)/√(2π).
// ½·erfc(z) = ½·t·P(t)·exp(-z²), t = 1/(1 + p·z), z = |x|/√2 (A&S 7.1.26); Φ = 1 - that for x >= 0.
HWY_INLINE hn::Vec<DF> normal_cdf(DF d, hn::Vec<DF> x, hn::Vec<DF>* phi) {
  const auto z = hn::Mul(hn::Abs(x), hn::Set(d, 0.70710678118654752f));
  const auto t = hn::Div(hn::Set(d, 1.0f), hn::MulAdd(hn::Set(d, 0.3275911f), z, hn::Set(d, 1.0f)));
  auto p = hn::Set(d, 1.061405429f);
  p = hn::MulAdd(p, t, hn::Set(d, -1.453152027f));
  p = hn::MulAdd(p, t, hn::Set(d, 1.421413741f));
  p = hn::MulAdd(p, t, hn::Set(d, -0.284496736f));
  p = hn::MulAdd(p, t, hn::Set(d, 0.254829592f));
  p = hn::Mul(p, t);
  // exp(-x²/2); Exp gives exactly 0 below -104 (and for -inf, so φ(±inf) = 0 and inf·φ is NaN as in
  // the reference).
  const auto e = hn::Exp(d, hn::Neg(hn::Mul(z, z)));
  if (phi) *phi = hn::Mul(e, hn::Set(d, 0.39894228040143268f));
  const auto half_erfc = hn::Mul(hn::Mul(hn::Set(d, 0.5f), p), e);
  // x >= 0 is false for NaN, which keeps NaN (half_erfc is NaN there).
  return hn::IfThenElse(hn::Ge(x, hn::Zero(d)), hn::Sub(hn::Set(d, 1.0f), half_erfc), half_erfc);
}

void GeluRow(const float* x, float* y, int64_t n) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + NL <= n; i += NL) {
    const auto v = hn::LoadU(d, x + i);
    hn::StoreU(hn::Mul(v, normal_cdf(d, v, nullptr)), d, y + i);
  }
  if (i < n) {
    const auto rest = static_cast<size_t>(n - i);
    const auto v = load_first_n(d, x + i, rest);
    store_first_n(hn::Mul(v, normal_cdf(d, v, nullptr)), d, y + i, rest);
  }
}

void GeluBackwardRow(const float* x, const float* g, float* dx, int64_t n) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  auto grad = [&](hn::Vec<DF> v, hn::Vec<DF> gv, hn::Vec<DF> acc) {
    hn::Vec<DF> phi = hn::Zero(d);
    const auto cdf = normal_cdf(d, v, &phi);
    return hn::MulAdd(gv, hn::MulAdd(v, phi, cdf), acc);
  };
  int64_t i = 0;
  for (; i + NL <= n; i += NL)
    hn::StoreU(grad(hn::LoadU(d, x + i), hn::LoadU(d, g + i), hn::LoadU(d, dx + i)), d, dx + i);
  if (i < n) {
    const auto rest = static_cast<size_t>(n - i);
    const auto v = grad(load_first_n(d, x + i, rest), load_first_n(d, g + i, rest),
                        load_first_n(d, dx + i, rest));
    store_first_n(v, d, dx + i, rest);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace attn::internal::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attn::internal::kernels {

HWY_EXPORT(GeluRow);
HWY_EXPORT(GeluBackwardRow);

void gelu_row(const float* x, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(GeluRow)(x, y, n); }
void gelu_backward_row(const float* x, const float* g, float* dx, int64_t n) {
  HWY_DYNAMIC_DISPATCH(GeluBackwardRow)(x, g, dx, n);
}

}  // namespace attn::internal::kernels
#endif
