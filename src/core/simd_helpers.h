// SPDX-License-Identifier: MIT
// Small SIMD building blocks the kernel files share (attention, activations, RNN gates, layer norm,
// fbank).
//
// The last, partial vector of a row: load or store only its first n lanes, on every target.
// Highway 1.0's MaskedLoad and BlendedStore are an aligned full-vector load (and a load, blend and
// full store) on SSE4 and below: they fault on rows that start off a 16-byte boundary and touch
// memory past the row's end. AVX2 (vmaskmovps) and AVX-512 (masked moves) touch only the selected
// lanes, so there the masked forms are used; elsewhere the lanes go through a zero-padded stack
// buffer. Include this from a foreach_target kernel file, inside nothing: it opens the target's
// namespace itself (per-target include guard, as Highway's own headers do).
#if defined(ATTN_CORE_SIMD_HELPERS_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef ATTN_CORE_SIMD_HELPERS_H_
#undef ATTN_CORE_SIMD_HELPERS_H_
#else
#define ATTN_CORE_SIMD_HELPERS_H_
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace attn::internal::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_AVX2 || !HWY_MEM_OPS_MIGHT_FAULT
inline constexpr bool kMaskedAccessIsExact = true;
#else
inline constexpr bool kMaskedAccessIsExact = false;
#endif

// Lanes [0, n) from p (n <= Lanes(d)); the others are zero. Only p[0, n) is read. (AVX2 has no
// masked load of 8- or 16-bit lanes: Highway 1.0 then loads the whole vector, aligned, and blends,
// so those lane sizes take the copy.)
template <class D>
HWY_INLINE hn::Vec<D> load_first_n(D d, const hn::TFromD<D>* HWY_RESTRICT p, size_t n) {
  using T = hn::TFromD<D>;
  if constexpr (kMaskedAccessIsExact && sizeof(T) >= 4) {
    return hn::MaskedLoad(hn::FirstN(d, n), d, p);
  } else {
    HWY_ALIGN T buf[HWY_MAX_BYTES / sizeof(T)] = {};
    std::memcpy(buf, p, n * sizeof(T));
    return hn::Load(d, buf);
  }
}

// Lanes [0, n) of v to p (n <= Lanes(d)). Only p[0, n) is written (or read).
template <class D>
HWY_INLINE void store_first_n(hn::Vec<D> v, D d, hn::TFromD<D>* HWY_RESTRICT p, size_t n) {
  using T = hn::TFromD<D>;
  if constexpr (kMaskedAccessIsExact) {
    hn::BlendedStore(v, hn::FirstN(d, n), d, p);
  } else {
    HWY_ALIGN T buf[HWY_MAX_BYTES / sizeof(T)];
    hn::Store(v, d, buf);
    std::memcpy(p, buf, n * sizeof(T));
  }
}

// Σ p[0, n) in double, over two chains of vector adds (one chain of dependent adds would cost more
// than the arithmetic). dd: a double tag; the floats are read as many at a time as it has lanes.
template <class DD>
HWY_INLINE double sum_in_double(DD dd, const float* HWY_RESTRICT p, int64_t n) {
  const hn::Rebind<float, DD> df;
  const auto NL = static_cast<int64_t>(hn::Lanes(dd));
  auto s0 = hn::Zero(dd), s1 = hn::Zero(dd);
  int64_t j = 0;
  for (; j + 2 * NL <= n; j += 2 * NL) {
    s0 = hn::Add(s0, hn::PromoteTo(dd, hn::LoadU(df, p + j)));
    s1 = hn::Add(s1, hn::PromoteTo(dd, hn::LoadU(df, p + j + NL)));
  }
  for (; j + NL <= n; j += NL) s0 = hn::Add(s0, hn::PromoteTo(dd, hn::LoadU(df, p + j)));
  double sum = hn::GetLane(hn::SumOfLanes(dd, hn::Add(s0, s1)));
  for (; j < n; ++j) sum += static_cast<double>(p[j]);
  return sum;
}

// Are the `rows` rows of `len` floats, `stride` apart, all finite? A float's bits with the sign
// masked off are >= those of +inf exactly for Inf and NaN: keep the largest.
template <class DF>
HWY_INLINE bool rows_finite(DF d, const float* p, int64_t rows, int64_t len, int64_t stride) {
  const hn::RebindToUnsigned<DF> du;
  const auto NL = static_cast<int64_t>(hn::Lanes(d));
  const auto magnitude = hn::Set(du, 0x7FFFFFFFu);
  auto worst = hn::Zero(du);
  auto add = [&](hn::Vec<DF> v) { worst = hn::Max(worst, hn::And(hn::BitCast(du, v), magnitude)); };
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = p + r * stride;
    int64_t c = 0;
    for (; c + NL <= len; c += NL) add(hn::LoadU(d, row + c));
    if (c < len) add(load_first_n(d, row + c, static_cast<size_t>(len - c)));  // the rest as 0
  }
  return hn::GetLane(hn::MaxOfLanes(du, worst)) < 0x7F800000u;
}

#if HWY_TARGET != HWY_SCALAR
// A 4 × 4 block of floats transposed through 128-bit registers (every SIMD target has them): the
// rows r0..r3 (4 floats each) go to dst[i · stride + j] = r_j[i], i, j < 4. 8 interleaves, 4
// stores.
template <class V>
HWY_INLINE void store_transposed_4x4(V r0, V r1, V r2, V r3, float* HWY_RESTRICT dst,
                                     int64_t stride) {
  const hn::FixedTag<float, 4> d4;
  const hn::Repartition<double, decltype(d4)> dd;
  auto lo64 = [&](V a, V b) {
    return hn::BitCast(d4, hn::InterleaveLower(dd, hn::BitCast(dd, a), hn::BitCast(dd, b)));
  };
  auto hi64 = [&](V a, V b) {
    return hn::BitCast(d4, hn::InterleaveUpper(dd, hn::BitCast(dd, a), hn::BitCast(dd, b)));
  };
  const V t0 = hn::InterleaveLower(d4, r0, r1);  // r0[0] r1[0] r0[1] r1[1]
  const V t1 = hn::InterleaveLower(d4, r2, r3);
  const V t2 = hn::InterleaveUpper(d4, r0, r1);  // r0[2] r1[2] r0[3] r1[3]
  const V t3 = hn::InterleaveUpper(d4, r2, r3);
  hn::StoreU(lo64(t0, t1), d4, dst);
  hn::StoreU(hi64(t0, t1), d4, dst + stride);
  hn::StoreU(lo64(t2, t3), d4, dst + 2 * stride);
  hn::StoreU(hi64(t2, t3), d4, dst + 3 * stride);
}
#endif

}  // namespace HWY_NAMESPACE
}  // namespace attn::internal::simd
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
