// SPDX-License-Identifier: MIT
// Highway SIMD kernels for the fused attention, compiled for every x86/Arm target Highway knows and
// dispatched at run time (AVX-512, AVX2, SSE4, NEON, ...). The only file with vector intrinsics.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target re-includes this file once per target; everything below is per target.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "core/simd_helpers.h"
#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "ops/internal/attention_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attn::internal::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using simd::HWY_NAMESPACE::load_first_n;
using simd::HWY_NAMESPACE::store_first_n;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;

// Accumulator tile: R rows × V vectors. 6 × 4 on 32-register targets (AVX-512), 6 × 2 otherwise, so
// that accumulators + B vectors + one broadcast fit in the register file.
constexpr int kRows = 6;
constexpr int kVecsWide = HWY_LANES(float) >= 16 ? 4 : 2;

// What a tile does besides computing and storing its accumulators: start from C (accumulate), fold
// each column's maximum into col_max (the online softmax's running max, taken while the scores are
// still in registers so that the softmax need not read the tile once more), and pay a prefetcher
// for its work.
struct Epilogue {
  bool accumulate;
  float* col_max;            // null: no column max
  LinePrefetcher* prefetch;  // null: none
};

// The micro-kernels credit the prefetcher every kCreditEvery steps along K, so that its lines go
// out a few at a time (a whole tile's worth at once, ~30 lines, filled the core's miss buffers and
// stalled).
constexpr int64_t kCreditEvery = 8;

template <int R, int V>
HWY_INLINE void tile(int64_t K, const float* HWY_RESTRICT A, int64_t a_rs, int64_t a_ks,
                     const float* HWY_RESTRICT B, int64_t b_rs, float* HWY_RESTRICT C, int64_t c_rs,
                     const Epilogue& e) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<DF> acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v)
      acc[r][v] = e.accumulate ? hn::LoadU(d, C + r * c_rs + v * NL) : hn::Zero(d);
  auto step = [&](int64_t k) HWY_ATTR {
    hn::Vec<DF> b[V];
    for (int v = 0; v < V; ++v) b[v] = hn::LoadU(d, B + k * b_rs + v * NL);
    for (int r = 0; r < R; ++r) {
      const auto a = hn::Set(d, A[r * a_rs + k * a_ks]);
      for (int v = 0; v < V; ++v) acc[r][v] = hn::MulAdd(a, b[v], acc[r][v]);
    }
  };
  // Runs of kCreditEvery steps, two steps an iteration, the prefetcher paid once a run: the loop's
  // counter, compare and the prefetcher's test were 5-12 scalar uops a step, which Intel cores
  // issue on the FMAs' ports (one per FMA with AVX2's 6 × 2 tile); full forward on Ice Lake, one
  // thread, +2-4% of peak with AVX3 and AVX2. Four or eight steps an iteration were ~20% slower,
  // with six address registers or two (the loop body's size for the front end, most likely; no
  // counters to tell). Each accumulator still sums along k in order: the same bits.
  int64_t k = 0;
  for (; k + kCreditEvery <= K; k += kCreditEvery) {
#pragma GCC unroll 1
    for (int64_t u = 0; u < kCreditEvery; u += 2) {
      step(k + u);
      step(k + u + 1);
    }
    if (e.prefetch) e.prefetch->credit(R * V * NL * kCreditEvery);
  }
  for (; k < K; ++k) step(k);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) hn::StoreU(acc[r][v], d, C + r * c_rs + v * NL);
  if (e.col_max) {
    for (int v = 0; v < V; ++v) {
      auto mx = hn::LoadU(d, e.col_max + v * NL);
      for (int r = 0; r < R; ++r) mx = hn::Max(mx, acc[r][v]);
      hn::StoreU(mx, d, e.col_max + v * NL);
    }
  }
  if (e.prefetch) e.prefetch->credit(R * V * NL * (K % kCreditEvery));
}

// The last, partial vector of columns: only its n lanes are read and written (core/simd_helpers.h).
template <int R>
HWY_INLINE void tile_tail(int64_t K, int64_t n, const float* HWY_RESTRICT A, int64_t a_rs,
                          int64_t a_ks, const float* HWY_RESTRICT B, int64_t b_rs,
                          float* HWY_RESTRICT C, int64_t c_rs, const Epilogue& e) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  const auto un = static_cast<size_t>(n);
  hn::Vec<DF> acc[R];
  for (int r = 0; r < R; ++r)
    acc[r] = e.accumulate ? load_first_n(d, C + r * c_rs, un) : hn::Zero(d);
  for (int64_t k = 0; k < K; ++k) {
    const auto b = load_first_n(d, B + k * b_rs, un);
    for (int r = 0; r < R; ++r) acc[r] = hn::MulAdd(hn::Set(d, A[r * a_rs + k * a_ks]), b, acc[r]);
    if (e.prefetch && k % kCreditEvery == kCreditEvery - 1)
      e.prefetch->credit(R * NL * kCreditEvery);
  }
  for (int r = 0; r < R; ++r) store_first_n(acc[r], d, C + r * c_rs, un);
  if (e.col_max) {
    // Lanes past n load as zero and are never stored, so the max there does not matter.
    auto mx = load_first_n(d, e.col_max, un);
    for (int r = 0; r < R; ++r) mx = hn::Max(mx, acc[r]);
    store_first_n(mx, d, e.col_max, un);
  }
  if (e.prefetch) e.prefetch->credit(R * NL * (K % kCreditEvery));
}

template <int V>
HWY_INLINE void rows_dispatch(int rows, int64_t K, const float* A, int64_t a_rs, int64_t a_ks,
                              const float* B, int64_t b_rs, float* C, int64_t c_rs,
                              const Epilogue& e) {
  switch (rows) {
    case 6:
      tile<6, V>(K, A, a_rs, a_ks, B, b_rs, C, c_rs, e);
      break;
    case 5:
      tile<5, V>(K, A, a_rs, a_ks, B, b_rs, C, c_rs, e);
      break;
    case 4:
      tile<4, V>(K, A, a_rs, a_ks, B, b_rs, C, c_rs, e);
      break;
    case 3:
      tile<3, V>(K, A, a_rs, a_ks, B, b_rs, C, c_rs, e);
      break;
    case 2:
      tile<2, V>(K, A, a_rs, a_ks, B, b_rs, C, c_rs, e);
      break;
    default:
      tile<1, V>(K, A, a_rs, a_ks, B, b_rs, C, c_rs, e);
      break;
  }
}

HWY_INLINE void tail_dispatch(int rows, int64_t K, int64_t n, const float* A, int64_t a_rs,
                              int64_t a_ks, const float* B, int64_t b_rs, float* C, int64_t c_rs,
                              const Epilogue& e) {
  switch (rows) {
    case 6:
      tile_tail<6>(K, n, A, a_rs, a_ks, B, b_rs, C, c_rs, e);
      break;
    case 5:
      tile_tail<5>(K, n, A, a_rs, a_ks, B, b_rs, C, c_rs, e);
      break;
    case 4:
      tile_tail<4>(K, n, A, a_rs, a_ks, B, b_rs, C, c_rs, e);
      break;
    case 3:
      tile_tail<3>(K, n, A, a_rs, a_ks, B, b_rs, C, c_rs, e);
      break;
    case 2:
      tile_tail<2>(K, n, A, a_rs, a_ks, B, b_rs, C, c_rs, e);
      break;
    default:
      tile_tail<1>(K, n, A, a_rs, a_ks, B, b_rs, C, c_rs, e);
      break;
  }
}

// All rows of one column strip V vectors wide: tiles of R rows (R·V accumulators, sized to the
// register file: narrow strips get more rows so that enough independent FMA chains hide the FMA
// latency), then the remaining rows in tiles of at most kRows.
template <int V, int R>
HWY_INLINE void column_strip(int64_t M, int64_t K, const float* A, int64_t a_rs, int64_t a_ks,
                             const float* B, int64_t b_rs, float* C, int64_t c_rs,
                             const Epilogue& e) {
  int64_t r0 = 0;
  for (; r0 + R <= M; r0 += R)
    tile<R, V>(K, A + r0 * a_rs, a_rs, a_ks, B, b_rs, C + r0 * c_rs, c_rs, e);
  for (; r0 < M; r0 += kRows)
    rows_dispatch<V>(static_cast<int>(std::min<int64_t>(kRows, M - r0)), K, A + r0 * a_rs, a_rs,
                     a_ks, B, b_rs, C + r0 * c_rs, c_rs, e);
}

// Rows per tile for a strip of V vectors: 8 for narrow strips (8 independent FMA chains hide the
// FMA latency on two FMA ports), kRows for the widest. Never more than 8: each row's A address is a
// general-purpose register, and with 12 or 24 rows GCC ran out of them, reloading offsets from the
// stack and spilling an accumulator (tile<12, 2> on AVX-512, a window band's edge chunks).
constexpr int rows_for(int v) { return v >= kVecsWide ? kRows : 8; }
// The full-width tile is the kRows × kVecsWide one that the remainder dispatch also tops out at.
static_assert(rows_for(kVecsWide) == kRows);

void GemmBcastEpilogue(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_ks,
                       const float* B, int64_t b_rs, float* C, int64_t c_rs, const Epilogue& e) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  auto at = [&](int64_t col) {
    return Epilogue{e.accumulate, e.col_max ? e.col_max + col : nullptr, e.prefetch};
  };
  int64_t c0 = 0;
  // One or two rows (the score-rows layout at T = 1, 2): a tile of kRows × kVecsWide would hold only
  // 2-4 independent FMA chains, bound by the FMA latency; a strip 8 (or 4) vectors wide has 8.
  if (M == 1)
    for (; c0 + 8 * NL <= N; c0 += 8 * NL)
      tile<1, 8>(K, A, a_rs, a_ks, B + c0, b_rs, C + c0, c_rs, at(c0));
  if (M == 2)
    for (; c0 + 4 * NL <= N; c0 += 4 * NL)
      tile<2, 4>(K, A, a_rs, a_ks, B + c0, b_rs, C + c0, c_rs, at(c0));
  for (; c0 + kVecsWide * NL <= N; c0 += kVecsWide * NL)
    column_strip<kVecsWide, rows_for(kVecsWide)>(M, K, A, a_rs, a_ks, B + c0, b_rs, C + c0, c_rs,
                                                 at(c0));
  // Fewer whole vectors left (e.g. the edge of a window band): one strip as wide as they are.
  const int64_t vecs_left = (N - c0) / NL;
  if constexpr (kVecsWide == 4) {
    if (vecs_left == 3)
      column_strip<3, rows_for(3)>(M, K, A, a_rs, a_ks, B + c0, b_rs, C + c0, c_rs, at(c0));
    if (vecs_left == 2)
      column_strip<2, rows_for(2)>(M, K, A, a_rs, a_ks, B + c0, b_rs, C + c0, c_rs, at(c0));
  }
  if (vecs_left == 1)
    column_strip<1, rows_for(1)>(M, K, A, a_rs, a_ks, B + c0, b_rs, C + c0, c_rs, at(c0));
  c0 += vecs_left * NL;
  if (c0 < N)
    for (int64_t r0 = 0; r0 < M; r0 += kRows)
      tail_dispatch(static_cast<int>(std::min<int64_t>(kRows, M - r0)), K, N - c0, A + r0 * a_rs,
                    a_rs, a_ks, B + c0, b_rs, C + r0 * c_rs + c0, c_rs, at(c0));
}

void GemmBcast(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_ks,
               const float* B, int64_t b_rs, float* C, int64_t c_rs, bool accumulate,
               LinePrefetcher* prefetch) {
  GemmBcastEpilogue(M, N, K, A, a_rs, a_ks, B, b_rs, C, c_rs,
                    Epilogue{accumulate, nullptr, prefetch});
}

void GemmBcastColMax(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_ks,
                     const float* B, int64_t b_rs, float* C, int64_t c_rs, float* col_max,
                     LinePrefetcher* prefetch) {
  GemmBcastEpilogue(M, N, K, A, a_rs, a_ks, B, b_rs, C, c_rs, Epilogue{false, col_max, prefetch});
}

// 2^x for x < 128, x = n + f with n = round(x), f ∈ [-1/2, 1/2]: 2^f by a degree-5 polynomial
// fitted for relative error on that interval (≤ 2e-7 after float rounding, under 2 ulp), times 2^n
// built in the exponent bits. Inputs at or below -127 (including -inf) give exactly 0 (2^-127 and
// below flush to zero, far under any probability that matters next to the row maximum 2^0).
// Rounding uses the shifter trick: adding 1.5·2^23 + 127 leaves round(x) + 127 in the low mantissa
// bits, so n needs no round or float->int conversion instructions (which share one port with the
// FMAs on AVX-512 cores), and shifting those bits left by 23 gives 2^n directly. About 10 vector
// ops per exp2 against ~20 for hn::Exp; the softmax is the only non-FMA work per score, so this is
// where it shows.
HWY_INLINE hn::Vec<DF> fast_exp2(hn::Vec<DF> x) {
  const DF d;
  const DI di;
  const auto shifter = hn::Set(d, 12582912.0f + 127.0f);  // 1.5·2^23 + exponent bias
  // A NaN input must come out NaN (a NaN score makes its row NaN; docs/masks.md). x86's max returns
  // its second operand when either is NaN, so there the clamp lets NaN through for free; the other
  // targets' Max drops NaN and blend it back.
#if HWY_ARCH_X86 && HWY_TARGET != HWY_EMU128 && HWY_TARGET != HWY_SCALAR
  x = hn::Max(hn::Set(d, -127.0f), x);
#else
  const auto nan = hn::IsNaN(x);
  x = hn::IfThenElse(nan, x, hn::Max(x, hn::Set(d, -127.0f)));
#endif
  const auto t = hn::Add(x, shifter);  // round to nearest: the low 8 bits hold n + 127 ∈ [0, 254]
  const auto f = hn::Sub(x, hn::Sub(t, shifter));
  auto p = hn::Set(d, 1.326697064e-03f);
  p = hn::MulAdd(p, f, hn::Set(d, 9.675459936e-03f));
  p = hn::MulAdd(p, f, hn::Set(d, 5.550742522e-02f));
  p = hn::MulAdd(p, f, hn::Set(d, 2.402212173e-01f));
  p = hn::MulAdd(p, f, hn::Set(d, 6.931469440e-01f));
  p = hn::MulAdd(p, f, hn::Set(d, 1.000000119e+00f));
  const auto two_n = hn::BitCast(d, hn::ShiftLeft<23>(hn::BitCast(di, t)));
#if HWY_ARCH_X86 && HWY_TARGET != HWY_EMU128 && HWY_TARGET != HWY_SCALAR
  return hn::Mul(p, two_n);
#else
  return hn::IfThenElse(nan, x, hn::Mul(p, two_n));
#endif
}

// Lanes of columns [i, i + lanes) that do not see key row r of the tile.
HWY_INLINE hn::Mask<DF> hidden_keys(int64_t r, int64_t i, const TileRows& rows,
                                    const TileColumns& cols) {
  const DF d;
  const DI di;
  const auto j = hn::Set(di, static_cast<int32_t>(rows.j0 + r));
  // Highway 1.0 has no integer <=: a key is hidden iff j < lo or hi < j.
  return hn::RebindMask(
      d, hn::Or(hn::Lt(j, hn::LoadU(di, cols.lo + i)), hn::Lt(hn::LoadU(di, cols.hi + i), j)));
}

// Scores of row r with ALiBi and the interval mask applied (width is a multiple of the lane count).
HWY_INLINE hn::Vec<DF> adjusted_scores(const float* St, int64_t r, int64_t i, const TileRows& rows,
                                       const TileColumns& cols, bool masked, float alibi_slope) {
  const DF d;
  auto s = hn::LoadU(d, St + r * cols.stride + i);
  if (alibi_slope != 0.0f) {
    const auto key_pos =
        hn::Set(d, static_cast<float>(rows.key_pos0 + rows.key_step * static_cast<double>(r)));
    const auto dist = hn::Abs(hn::Sub(hn::LoadU(d, cols.position + i), key_pos));
    s = hn::MulAdd(hn::Set(d, -alibi_slope), dist, s);
  }
  if (masked)
    s = hn::IfThenElse(hidden_keys(r, i, rows, cols),
                       hn::Set(d, -std::numeric_limits<float>::infinity()), s);
  return s;
}

// Rows [first, last] of the tile that every query of columns [i, i + lanes) sees: there the element
// mask is a no-op and is skipped (under a window, all but the rows at the band's two edges).
HWY_INLINE std::pair<int64_t, int64_t> rows_seen_by_all(const TileRows& rows,
                                                        const TileColumns& cols, int64_t i) {
  const DI di;
  const int64_t lo = hn::GetLane(hn::MaxOfLanes(di, hn::LoadU(di, cols.lo + i)));
  const int64_t hi = hn::GetLane(hn::MinOfLanes(di, hn::LoadU(di, cols.hi + i)));
  return {lo - rows.j0, hi - rows.j0};
}

void OnlineSoftmaxTile(float* St, const TileRows& rows, const TileColumns& cols, bool masked,
                       float alibi_slope, const float* tile_max, float* m, float* l, float* alpha) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  const auto neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < cols.width; i += NL) {
    // Pass 1: adjusted scores and the new running max. Max and sum run in 4 independent chains over
    // rows r mod 4 (combined in a fixed order): one chain would be bound by the 4-cycle add/max
    // latency.
    const auto m_old = hn::LoadU(d, m + i);
    hn::Vec<DF> mx[4] = {m_old, neg_inf, neg_inf, neg_inf};
    if (tile_max) {
      mx[0] = hn::Max(m_old, hn::LoadU(d, tile_max + i));
    } else if (masked || alibi_slope != 0.0f) {
      const auto [all_first, all_last] =
          masked ? rows_seen_by_all(rows, cols, i) : std::pair<int64_t, int64_t>{0, -1};
      for (int64_t r = 0; r < rows.rows; ++r) {
        const bool mask_row = masked && (r < all_first || r > all_last);
        const auto s = adjusted_scores(St, r, i, rows, cols, mask_row, alibi_slope);
        hn::StoreU(s, d, St + r * cols.stride + i);
        mx[r & 3] = hn::Max(mx[r & 3], s);
      }
    } else {
      const float* col = St + i;
      const int64_t w = cols.stride;
      int64_t r = 0;
      for (; r + 4 <= rows.rows; r += 4) {
        mx[0] = hn::Max(mx[0], hn::LoadU(d, col + r * w));
        mx[1] = hn::Max(mx[1], hn::LoadU(d, col + (r + 1) * w));
        mx[2] = hn::Max(mx[2], hn::LoadU(d, col + (r + 2) * w));
        mx[3] = hn::Max(mx[3], hn::LoadU(d, col + (r + 3) * w));
      }
      for (; r < rows.rows; ++r) mx[0] = hn::Max(mx[0], hn::LoadU(d, col + r * w));
    }
    const auto m_new = hn::Max(hn::Max(mx[0], mx[1]), hn::Max(mx[2], mx[3]));
    // Rows that have seen no visible key keep m = -inf; exponentiate against 0 there so that
    // exp(-inf - m) is 0 rather than NaN.
    const auto m_use = hn::IfThenZeroElse(hn::Eq(m_new, neg_inf), m_new);
    const auto a = fast_exp2(hn::Sub(m_old, m_use));
    hn::Vec<DF> sums[4] = {hn::Zero(d), hn::Zero(d), hn::Zero(d), hn::Zero(d)};
    auto exp_row = [&](int64_t r) {
      const auto p = fast_exp2(hn::Sub(hn::LoadU(d, St + r * cols.stride + i), m_use));
      hn::StoreU(p, d, St + r * cols.stride + i);
      return p;
    };
    int64_t r = 0;
    for (; r + 4 <= rows.rows; r += 4) {
      sums[0] = hn::Add(sums[0], exp_row(r));
      sums[1] = hn::Add(sums[1], exp_row(r + 1));
      sums[2] = hn::Add(sums[2], exp_row(r + 2));
      sums[3] = hn::Add(sums[3], exp_row(r + 3));
    }
    for (; r < rows.rows; ++r) sums[0] = hn::Add(sums[0], exp_row(r));
    const auto sum = hn::Add(hn::Add(sums[0], sums[1]), hn::Add(sums[2], sums[3]));
    hn::StoreU(hn::MulAdd(hn::LoadU(d, l + i), a, sum), d, l + i);
    hn::StoreU(a, d, alpha + i);
    hn::StoreU(m_new, d, m + i);
  }
}

void OnlineSoftmaxRows(float* S, const ScoreRows& r, bool masked, float alibi_slope, float* m,
                       float* l, float* alpha) {
  const DF d;
  const DI di;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  const auto neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  // Key index j0 + lane of the first vector, stepped by NL.
  const auto lane = hn::Iota(di, 0);
  for (int64_t t = 0; t < r.rows; ++t) {
    float* row = S + t * r.stride;
    const auto lo = hn::Set(di, masked ? r.lo[t] : static_cast<int32_t>(r.j0));
    const auto hi = hn::Set(
        di,
        static_cast<int32_t>(masked ? std::min<int64_t>(r.hi[t], r.j0 + r.n - 1) : r.j0 + r.n - 1));
    const auto qpos = hn::Set(d, r.qpos ? r.qpos[t] : 0.0f);
    auto mx = neg_inf;
    for (int64_t i = 0; i < r.width; i += NL) {
      auto s = hn::LoadU(d, row + i);
      if (alibi_slope != 0.0f) {
        const auto key_pos = hn::MulAdd(
            hn::ConvertTo(d, hn::Add(lane, hn::Set(di, static_cast<int32_t>(i)))),
            hn::Set(d, static_cast<float>(r.key_step)), hn::Set(d, static_cast<float>(r.key_pos0)));
        s = hn::MulAdd(hn::Set(d, -alibi_slope), hn::Abs(hn::Sub(qpos, key_pos)), s);
      }
      const auto j = hn::Add(lane, hn::Set(di, static_cast<int32_t>(r.j0 + i)));
      const auto hidden = hn::RebindMask(d, hn::Or(hn::Lt(j, lo), hn::Lt(hi, j)));
      s = hn::IfThenElse(hidden, neg_inf, s);
      hn::StoreU(s, d, row + i);
      mx = hn::Max(mx, s);
    }
    const float m_old = m[t];
    const float m_new = std::max(m_old, hn::GetLane(hn::MaxOfLanes(d, mx)));
    // No visible key yet: m stays -inf, and exponentiating against 0 keeps exp(-inf) = 0.
    const float m_use = m_new == -std::numeric_limits<float>::infinity() ? 0.0f : m_new;
    const auto mv = hn::Set(d, m_use);
    auto sum = hn::Zero(d);
    for (int64_t i = 0; i < r.width; i += NL) {
      const auto p = fast_exp2(hn::Sub(hn::LoadU(d, row + i), mv));
      hn::StoreU(p, d, row + i);
      sum = hn::Add(sum, p);
    }
    const float a = hn::GetLane(fast_exp2(hn::Set(d, m_old - m_use)));
    alpha[t] = a;
    l[t] = l[t] * a + hn::GetLane(hn::SumOfLanes(d, sum));
    m[t] = m_new;
  }
}

void ProbsTile(float* St, const TileRows& rows, const TileColumns& cols, bool masked,
               float alibi_slope, const float* lse) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  const auto neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  const auto pos_inf = hn::Set(d, std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < cols.width; i += NL) {
    const auto raw = hn::LoadU(d, lse + i);
    const auto lse_use =
        hn::IfThenElse(hn::Eq(raw, neg_inf), pos_inf, raw);  // empty rows: exp(s - inf) = 0
    const auto [all_first, all_last] =
        masked ? rows_seen_by_all(rows, cols, i) : std::pair<int64_t, int64_t>{0, -1};
    for (int64_t r = 0; r < rows.rows; ++r) {
      // Hidden keys get exactly 0 after the exponential, even where a NaN row's lse would turn
      // exp(-inf - lse) into NaN: a NaN row must not reach the gradients of keys it cannot see.
      const bool mask_row = masked && (r < all_first || r > all_last);
      const auto s = adjusted_scores(St, r, i, rows, cols, false, alibi_slope);
      auto p = fast_exp2(hn::Sub(s, lse_use));
      if (mask_row) p = hn::IfThenZeroElse(hidden_keys(r, i, rows, cols), p);
      hn::StoreU(p, d, St + r * cols.stride + i);
    }
  }
}

void SoftmaxGradTile(const float* P, float* dP, int64_t rows, int64_t width, int64_t stride,
                     const float* D) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t i = 0; i < width; i += NL) {
    const auto Dv = hn::LoadU(d, D + i);
    for (int64_t r = 0; r < rows; ++r) {
      // A key of weight exactly 0 (hidden, or a score of -inf) passes no gradient, even where its
      // dP is NaN (a NaN value or dO it never mixed with): 0 · NaN would leak it (docs/masks.md).
      const auto p = hn::LoadU(d, P + r * stride + i);
      const auto ds = hn::Mul(p, hn::Sub(hn::LoadU(d, dP + r * stride + i), Dv));
      hn::StoreU(hn::IfThenZeroElse(hn::Eq(p, hn::Zero(d)), ds), d, dP + r * stride + i);
    }
  }
}

void Exp2Row(const float* x, float* y, int64_t n) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + NL <= n; i += NL) hn::StoreU(fast_exp2(hn::LoadU(d, x + i)), d, y + i);
  if (i < n) {
    const auto rest = static_cast<size_t>(n - i);
    store_first_n(fast_exp2(load_first_n(d, x + i, rest)), d, y + i, rest);
  }
}

void PackTransposed(const float* rows, int64_t row_stride, int64_t n_valid, int64_t width,
                    int64_t cols, float scale, float* packed) {
  int64_t c = 0;
#if HWY_TARGET != HWY_SCALAR
  // 4 × 4 blocks through 128-bit registers (every SIMD target has them): 4 row loads, 8
  // interleaves, 4 column stores per 16 floats. 16-lane gathers measured no faster here, and are
  // not on every target.
  const hn::FixedTag<float, 4> d4;
  const auto sv = hn::Set(d4, scale);
  auto row = [&](int64_t i, int64_t col) {
    return i < n_valid ? hn::Mul(sv, hn::LoadU(d4, rows + i * row_stride + col)) : hn::Zero(d4);
  };
  // Rows outer, so that each row is read front to back once (the rows are usually fresh from memory
  // and the prefetcher follows sequential reads).
  const int64_t cols4 = cols / 4 * 4;
  for (int64_t i = 0; i < width; i += 4) {
    for (int64_t cc = 0; cc < cols4; cc += 4) {
      simd::HWY_NAMESPACE::store_transposed_4x4(row(i, cc), row(i + 1, cc), row(i + 2, cc),
                                                row(i + 3, cc), packed + cc * width + i, width);
    }
  }
  c = cols4;
#endif
  for (; c < cols; ++c)
    for (int64_t i = 0; i < width; ++i)
      packed[c * width + i] = i < n_valid ? scale * rows[i * row_stride + c] : 0.0f;
}

void WidenBf16Rows(const uint16_t* src, int64_t rows, int64_t len, int64_t src_rs, float* dst,
                   int64_t dst_rs) {
  const DF d;
  const hn::RebindToUnsigned<DF> du32;
  const hn::Rebind<uint16_t, DF> du16;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  auto widen = [&](auto bits16) {
    return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(du32, bits16)));
  };
  for (int64_t i = 0; i < rows; ++i) {
    const uint16_t* s = src + i * src_rs;
    float* o = dst + i * dst_rs;
    int64_t c = 0;
    for (; c + NL <= len; c += NL) hn::StoreU(widen(hn::LoadU(du16, s + c)), d, o + c);
    if (c < len) {
      const auto rest = static_cast<size_t>(len - c);
      store_first_n(widen(load_first_n(du16, s + c, rest)), d, o + c, rest);
    }
  }
}

void PackPairsTransposed(const uint16_t* rows, int64_t row_stride, int64_t n_valid, int64_t width,
                         int64_t pairs, uint32_t* packed) {
  // Row i's pair p is the word at rows + i·row_stride + 2p; a row may start on any 2-byte boundary,
  // so words are read with unaligned loads (or memcpy) and moved as floats' bits: the 4 × 4
  // transposes only shuffle.
  auto word = [&](int64_t i, int64_t p) {
    uint32_t w = 0;
    if (i < n_valid) std::memcpy(&w, rows + i * row_stride + 2 * p, sizeof w);
    return w;
  };
  int64_t p = 0;
#if HWY_TARGET != HWY_SCALAR
  const hn::FixedTag<float, 4> d4;
  auto row = [&](int64_t i, int64_t pp) {
    return i < n_valid
               ? hn::LoadU(d4, reinterpret_cast<const float*>(rows + i * row_stride + 2 * pp))
               : hn::Zero(d4);
  };
  const int64_t pairs4 = pairs / 4 * 4;
  float* out = reinterpret_cast<float*>(packed);
  for (int64_t i = 0; i < width; i += 4)
    for (int64_t pp = 0; pp < pairs4; pp += 4)
      simd::HWY_NAMESPACE::store_transposed_4x4(row(i, pp), row(i + 1, pp), row(i + 2, pp),
                                                row(i + 3, pp), out + pp * width + i, width);
  p = pairs4;
#endif
  for (; p < pairs; ++p)
    for (int64_t i = 0; i < width; ++i) packed[p * width + i] = word(i, p);
}

void ScaleRow(float* x, int64_t n, float a) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  const auto av = hn::Set(d, a);
  int64_t i = 0;
  for (; i + NL <= n; i += NL) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), av), d, x + i);
  for (; i < n; ++i) x[i] *= a;
}

bool RowsFinite(const float* p, int64_t rows, int64_t len, int64_t stride) {
  return simd::HWY_NAMESPACE::rows_finite(DF(), p, rows, len, stride);
}

void StoreScaledRows(const float* x, int64_t rows, int64_t cols, const float* scale, float* out,
                     int64_t out_rs, bool streaming) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  const uintptr_t vector_bytes = static_cast<uintptr_t>(NL) * sizeof(float);
  bool streamed = false;
  for (int64_t i = 0; i < rows; ++i) {
    const float* src = x + i * cols;
    float* dst = out + i * out_rs;
    const auto s = hn::Set(d, scale[i]);
    int64_t c = 0;
    if (streaming && cols % NL == 0 && reinterpret_cast<uintptr_t>(dst) % vector_bytes == 0) {
      for (; c < cols; c += NL) hn::Stream(hn::Mul(hn::LoadU(d, src + c), s), d, dst + c);
      streamed = true;
    }
    for (; c + NL <= cols; c += NL) hn::StoreU(hn::Mul(hn::LoadU(d, src + c), s), d, dst + c);
    for (; c < cols; ++c) dst[c] = src[c] * scale[i];
  }
  // Non-temporal stores are weakly ordered: fence them before the task ends (the parallel loop's
  // barrier then publishes them to other threads).
  if (streamed) hwy::FlushStream();
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace attn::internal::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attn::internal::kernels {

HWY_EXPORT(GemmBcast);
HWY_EXPORT(GemmBcastColMax);
HWY_EXPORT(OnlineSoftmaxTile);
HWY_EXPORT(OnlineSoftmaxRows);
HWY_EXPORT(ProbsTile);
HWY_EXPORT(SoftmaxGradTile);
HWY_EXPORT(Exp2Row);
HWY_EXPORT(PackTransposed);
HWY_EXPORT(ScaleRow);
HWY_EXPORT(WidenBf16Rows);
HWY_EXPORT(PackPairsTransposed);
HWY_EXPORT(StoreScaledRows);
HWY_EXPORT(RowsFinite);
HWY_EXPORT(TargetName);

void gemm_bcast(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_ks,
                const float* B, int64_t b_rs, float* C, int64_t c_rs, bool accumulate,
                LinePrefetcher* prefetch) {
  HWY_DYNAMIC_DISPATCH(GemmBcast)(M, N, K, A, a_rs, a_ks, B, b_rs, C, c_rs, accumulate, prefetch);
}
void gemm_bcast_col_max(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_ks,
                        const float* B, int64_t b_rs, float* C, int64_t c_rs, float* col_max,
                        LinePrefetcher* prefetch) {
  HWY_DYNAMIC_DISPATCH(GemmBcastColMax)
  (M, N, K, A, a_rs, a_ks, B, b_rs, C, c_rs, col_max, prefetch);
}
void online_softmax_tile(float* St, const TileRows& rows, const TileColumns& cols, bool masked,
                         float alibi_slope, const float* tile_max, float* m, float* l,
                         float* alpha) {
  HWY_DYNAMIC_DISPATCH(OnlineSoftmaxTile)
  (St, rows, cols, masked, alibi_slope, tile_max, m, l, alpha);
}
void online_softmax_rows(float* S, const ScoreRows& r, bool masked, float alibi_slope, float* m,
                         float* l, float* alpha) {
  HWY_DYNAMIC_DISPATCH(OnlineSoftmaxRows)(S, r, masked, alibi_slope, m, l, alpha);
}
void probs_tile(float* St, const TileRows& rows, const TileColumns& cols, bool masked,
                float alibi_slope, const float* lse) {
  HWY_DYNAMIC_DISPATCH(ProbsTile)(St, rows, cols, masked, alibi_slope, lse);
}
void softmax_grad_tile(const float* P, float* dP, int64_t rows, int64_t width, int64_t stride,
                       const float* D) {
  HWY_DYNAMIC_DISPATCH(SoftmaxGradTile)(P, dP, rows, width, stride, D);
}
void exp2_row(const float* x, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(Exp2Row)(x, y, n); }
void scale_row(float* x, int64_t n, float a) { HWY_DYNAMIC_DISPATCH(ScaleRow)(x, n, a); }
bool rows_finite(const float* p, int64_t rows, int64_t len, int64_t stride) {
  return HWY_DYNAMIC_DISPATCH(RowsFinite)(p, rows, len, stride);
}
void widen_bf16_rows(const uint16_t* src, int64_t rows, int64_t len, int64_t src_rs, float* dst,
                     int64_t dst_rs) {
  HWY_DYNAMIC_DISPATCH(WidenBf16Rows)(src, rows, len, src_rs, dst, dst_rs);
}
void pack_pairs_transposed(const uint16_t* rows, int64_t row_stride, int64_t n_valid, int64_t width,
                           int64_t pairs, uint32_t* packed) {
  HWY_DYNAMIC_DISPATCH(PackPairsTransposed)(rows, row_stride, n_valid, width, pairs, packed);
}
void store_scaled_rows(const float* x, int64_t rows, int64_t cols, const float* scale, float* out,
                       int64_t out_rs, bool streaming) {
  HWY_DYNAMIC_DISPATCH(StoreScaledRows)(x, rows, cols, scale, out, out_rs, streaming);
}
void pack_transposed(const float* rows, int64_t row_stride, int64_t n_valid, int64_t width,
                     int64_t cols, float scale, float* packed) {
  HWY_DYNAMIC_DISPATCH(PackTransposed)(rows, row_stride, n_valid, width, cols, scale, packed);
}
const char* simd_target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

std::vector<std::pair<std::string, int64_t>> runnable_targets() {
  hwy::DisableTargets(0);  // what the CPU supports, not what an earlier limit left
  const int64_t runnable = hwy::SupportedTargets() & HWY_TARGETS;
  std::vector<std::pair<std::string, int64_t>> targets;
  for (int bit = 0; bit < 63; ++bit) {  // lower bits are better targets
    const int64_t t = int64_t{1} << bit;
    if (runnable & t) targets.emplace_back(hwy::TargetName(t), t);
  }
  return targets;
}

void limit_targets(int64_t target) {
  hwy::DisableTargets(target == 0 ? 0 : target - 1);  // every better (lower) bit
}

}  // namespace attn::internal::kernels
#endif
