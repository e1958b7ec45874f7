// SPDX-License-Identifier: MIT
// Highway SIMD rows of the 2×2 max pooling's backward, compiled per target and dispatched at run
// time (ops/internal/pool_kernels.h). Branch-free: the scalar walk's argmax branches mispredict on
// random data, and the CNN's pooling backward was 9% of a training step.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/pool_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target re-includes this file once per target; everything below is per target.
#include <cmath>

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
// The rule on one vector of lanes (full loads and stores: masked ones may fault on some targets).
template <class D>
HWY_INLINE void max_pool_2x2_backward_vector(D d, const float* r0, const float* r1, const float* g,
                                             float* d0, float* d1) {
  const hn::RebindToSigned<D> di;
  // Lanes come in window pairs (chunks start at even offsets): lane p's row neighbour is p ^ 1.
  const auto even =
      hn::RebindMask(d, hn::Eq(hn::And(hn::Iota(di, 0), hn::Set(di, 1)), hn::Zero(di)));
  const auto x = hn::LoadU(d, r0), y = hn::LoadU(d, r1);
  const auto xs = hn::Shuffle2301(x), ys = hn::Shuffle2301(y);  // the row neighbours
  // r0's taps (a, b) win over the taps after them on ties and lose to those before; likewise r1's
  // (c, e). Even lanes: a (x) and c (y); odd lanes: b (x) and e (y).
  const auto x_wins =
      hn::And(hn::And(hn::Ge(x, y), hn::Ge(x, ys)),
              hn::Or(hn::And(even, hn::Ge(x, xs)), hn::AndNot(even, hn::Gt(x, xs))));
  const auto y_wins =
      hn::And(hn::And(hn::Gt(y, x), hn::Gt(y, xs)),
              hn::Or(hn::And(even, hn::Ge(y, ys)), hn::AndNot(even, hn::Gt(y, ys))));
  const auto gv = hn::LoadU(d, g), dx0 = hn::LoadU(d, d0), dx1 = hn::LoadU(d, d1);
  hn::StoreU(hn::IfThenElse(x_wins, hn::Add(dx0, gv), dx0), d, d0);
  hn::StoreU(hn::IfThenElse(y_wins, hn::Add(dx1, gv), dx1), d, d1);
}

bool MaxPool2x2BackwardRows(const float* r0, const float* r1, const float* g, int64_t W, float* d0,
                            float* d1) {
  const hn::ScalableTag<float> d;
  const auto NL = static_cast<int64_t>(hn::Lanes(d));
  const int64_t full = W - W % NL;  // lanes in whole vectors; the rest goes through buffers
  for (int64_t i = 0; i < full; i += NL)
    if (!hn::AllFalse(d, hn::Or(hn::IsNaN(hn::LoadU(d, r0 + i)), hn::IsNaN(hn::LoadU(d, r1 + i)))))
      return false;
  for (int64_t i = full; i < W; ++i)
    if (std::isnan(r0[i]) || std::isnan(r1[i])) return false;
  constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);
  HWY_ALIGN float g_lanes[kMaxLanes] = {};  // each window's gradient, once per tap column
  for (int64_t i = 0; i < full; i += NL) {
    for (int64_t p = 0; p < NL; ++p) g_lanes[p] = g[(i + p) / 2];
    max_pool_2x2_backward_vector(d, r0 + i, r1 + i, g_lanes, d0 + i, d1 + i);
  }
  if (full < W) {  // the last lanes, copied into zero-padded buffers and back
    HWY_ALIGN float x[kMaxLanes] = {}, y[kMaxLanes] = {}, o0[kMaxLanes] = {}, o1[kMaxLanes] = {};
    const int64_t n = W - full;
    for (int64_t p = 0; p < n; ++p) {
      x[p] = r0[full + p], y[p] = r1[full + p], o0[p] = d0[full + p], o1[p] = d1[full + p];
      g_lanes[p] = g[(full + p) / 2];
    }
    for (int64_t p = n; p < NL; ++p) g_lanes[p] = 0.0f;
    max_pool_2x2_backward_vector(d, x, y, g_lanes, o0, o1);
    for (int64_t p = 0; p < n; ++p) d0[full + p] = o0[p], d1[full + p] = o1[p];
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
