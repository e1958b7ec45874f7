// SPDX-License-Identifier: MIT
// Highway SIMD rows of the 2×2 max pooling's backward, compiled per target and dispatched at run time
// (ops/internal/pool_kernels.h). Branch-free: the scalar walk's argmax branches mispredict on random
// data, and the CNN's pooling backward was 9% of a training step.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/pool_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target re-includes this file once per target; everything below is per target.
#include "hwy/highway.h"
#include "ops/internal/pool_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attn::internal::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_SCALAR
// One lane has no neighbour to compare with: the caller's scalar walk does the rows.
bool MaxPool2x2BackwardRows(const float*, const float*, const float*, int64_t, float*, float*) {
  return false;
}
#else
bool MaxPool2x2BackwardRows(const float* r0, const float* r1, const float* g, int64_t W, float* d0,
                            float* d1) {
  const hn::ScalableTag<float> d;
  const hn::RebindToSigned<decltype(d)> di;
  const auto NL = static_cast<int64_t>(hn::Lanes(d));
  auto chunk_mask = [&](int64_t i) { return hn::FirstN(d, static_cast<size_t>(W - i)); };
  for (int64_t i = 0; i < W; i += NL) {
    const auto m = chunk_mask(i);
    const auto x = hn::MaskedLoad(m, d, r0 + i), y = hn::MaskedLoad(m, d, r1 + i);
    if (!hn::AllFalse(d, hn::Or(hn::IsNaN(x), hn::IsNaN(y)))) return false;
  }
  // Lanes come in window pairs (i is even, as W is): lane p's row neighbour is lane p ^ 1.
  const auto even = hn::RebindMask(
      d, hn::Eq(hn::And(hn::Iota(di, 0), hn::Set(di, 1)), hn::Zero(di)));
  HWY_ALIGN float g_lanes[HWY_MAX_BYTES / sizeof(float)] = {};  // lanes past W stay defined
  for (int64_t i = 0; i < W; i += NL) {
    const auto m = chunk_mask(i);
    const auto x = hn::MaskedLoad(m, d, r0 + i), y = hn::MaskedLoad(m, d, r1 + i);
    const auto xs = hn::Shuffle2301(x), ys = hn::Shuffle2301(y);  // the row neighbours
    // r0's taps (a, b) win over the taps after them on ties and lose to those before; likewise
    // r1's (c, e). Even lanes: a (x) and c (y); odd lanes: b (x) and e (y).
    const auto x_wins = hn::And(
        hn::And(hn::Ge(x, y), hn::Ge(x, ys)),
        hn::Or(hn::And(even, hn::Ge(x, xs)), hn::AndNot(even, hn::Gt(x, xs))));
    const auto y_wins = hn::And(
        hn::And(hn::Gt(y, x), hn::Gt(y, xs)),
        hn::Or(hn::And(even, hn::Ge(y, ys)), hn::AndNot(even, hn::Gt(y, ys))));
    for (int64_t p = 0; p < NL && i + p < W; ++p) g_lanes[p] = g[(i + p) / 2];
    const auto gv = hn::Load(d, g_lanes);
    const auto dx0 = hn::MaskedLoad(m, d, d0 + i), dx1 = hn::MaskedLoad(m, d, d1 + i);
    hn::BlendedStore(hn::IfThenElse(x_wins, hn::Add(dx0, gv), dx0), m, d, d0 + i);
    hn::BlendedStore(hn::IfThenElse(y_wins, hn::Add(dx1, gv), dx1), m, d, d1 + i);
  }
  return true;
}
#endif

}  // namespace HWY_NAMESPACE
}  // namespace attn::internal::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attn::internal::kernels {

HWY_EXPORT(MaxPool2x2BackwardRows);

bool max_pool_2x2_backward_rows(const float* r0, const float* r1, const float* g, int64_t W,
                                float* d0, float* d1) {
  return HWY_DYNAMIC_DISPATCH(MaxPool2x2BackwardRows)(r0, r1, g, W, d0, d1);
}

}  // namespace attn::internal::kernels
#endif
