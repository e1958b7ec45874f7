// SPDX-License-Identifier: MIT
// Highway SIMD kernels for the fused attention, compiled for every x86/Arm target Highway knows and
// dispatched at run time (AVX-512, AVX2, SSE4, NEON, ...). The only file with vector intrinsics.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target re-includes this file once per target; everything below is per target.
#include <chrono>
#include <cmath>
#include <limits>

#include "hwy/highway.h"
#include "ops/internal/attention_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attn::internal::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;

// Accumulator tile: R rows × V vectors. 6 × 4 on 32-register targets (AVX-512), 6 × 2 otherwise, so
// that accumulators + B vectors + one broadcast fit in the register file.
constexpr int kRows = 6;
constexpr int kVecsWide = HWY_LANES(float) >= 16 ? 4 : 2;

template <int R, int V>
HWY_INLINE void tile(int64_t K, const float* HWY_RESTRICT A, int64_t a_rs, int64_t a_ks, const float* HWY_RESTRICT B,
                     int64_t b_rs, float* HWY_RESTRICT C, int64_t c_rs, bool accumulate) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<DF> acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = accumulate ? hn::LoadU(d, C + r * c_rs + v * NL) : hn::Zero(d);
  for (int64_t k = 0; k < K; ++k) {
    hn::Vec<DF> b[V];
    for (int v = 0; v < V; ++v) b[v] = hn::LoadU(d, B + k * b_rs + v * NL);
    for (int r = 0; r < R; ++r) {
      const auto a = hn::Set(d, A[r * a_rs + k * a_ks]);
      for (int v = 0; v < V; ++v) acc[r][v] = hn::MulAdd(a, b[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) hn::StoreU(acc[r][v], d, C + r * c_rs + v * NL);
}

// The last, partial vector of columns: masked loads and stores.
template <int R>
HWY_INLINE void tile_tail(int64_t K, int64_t n, const float* HWY_RESTRICT A, int64_t a_rs, int64_t a_ks,
                          const float* HWY_RESTRICT B, int64_t b_rs, float* HWY_RESTRICT C, int64_t c_rs,
                          bool accumulate) {
  const DF d;
  const auto m = hn::FirstN(d, static_cast<size_t>(n));
  hn::Vec<DF> acc[R];
  for (int r = 0; r < R; ++r) acc[r] = accumulate ? hn::MaskedLoad(m, d, C + r * c_rs) : hn::Zero(d);
  for (int64_t k = 0; k < K; ++k) {
    const auto b = hn::MaskedLoad(m, d, B + k * b_rs);
    for (int r = 0; r < R; ++r) acc[r] = hn::MulAdd(hn::Set(d, A[r * a_rs + k * a_ks]), b, acc[r]);
  }
  for (int r = 0; r < R; ++r) hn::BlendedStore(acc[r], m, d, C + r * c_rs);
}

template <int V>
HWY_INLINE void rows_dispatch(int rows, int64_t K, const float* A, int64_t a_rs, int64_t a_ks, const float* B,
                              int64_t b_rs, float* C, int64_t c_rs, bool accumulate) {
  switch (rows) {
    case 6: tile<6, V>(K, A, a_rs, a_ks, B, b_rs, C, c_rs, accumulate); break;
    case 5: tile<5, V>(K, A, a_rs, a_ks, B, b_rs, C, c_rs, accumulate); break;
    case 4: tile<4, V>(K, A, a_rs, a_ks, B, b_rs, C, c_rs, accumulate); break;
    case 3: tile<3, V>(K, A, a_rs, a_ks, B, b_rs, C, c_rs, accumulate); break;
    case 2: tile<2, V>(K, A, a_rs, a_ks, B, b_rs, C, c_rs, accumulate); break;
    default: tile<1, V>(K, A, a_rs, a_ks, B, b_rs, C, c_rs, accumulate); break;
  }
}

HWY_INLINE void tail_dispatch(int rows, int64_t K, int64_t n, const float* A, int64_t a_rs, int64_t a_ks,
                              const float* B, int64_t b_rs, float* C, int64_t c_rs, bool accumulate) {
  switch (rows) {
    case 6: tile_tail<6>(K, n, A, a_rs, a_ks, B, b_rs, C, c_rs, accumulate); break;
    case 5: tile_tail<5>(K, n, A, a_rs, a_ks, B, b_rs, C, c_rs, accumulate); break;
    case 4: tile_tail<4>(K, n, A, a_rs, a_ks, B, b_rs, C, c_rs, accumulate); break;
    case 3: tile_tail<3>(K, n, A, a_rs, a_ks, B, b_rs, C, c_rs, accumulate); break;
    case 2: tile_tail<2>(K, n, A, a_rs, a_ks, B, b_rs, C, c_rs, accumulate); break;
    default: tile_tail<1>(K, n, A, a_rs, a_ks, B, b_rs, C, c_rs, accumulate); break;
  }
}

void GemmBcast(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_ks, const float* B,
               int64_t b_rs, float* C, int64_t c_rs, bool accumulate) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t r0 = 0; r0 < M; r0 += kRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kRows, M - r0));
    const float* Ar = A + r0 * a_rs;
    float* Cr = C + r0 * c_rs;
    int64_t c0 = 0;
    for (; c0 + kVecsWide * NL <= N; c0 += kVecsWide * NL)
      rows_dispatch<kVecsWide>(rows, K, Ar, a_rs, a_ks, B + c0, b_rs, Cr + c0, c_rs, accumulate);
    for (; c0 + NL <= N; c0 += NL) rows_dispatch<1>(rows, K, Ar, a_rs, a_ks, B + c0, b_rs, Cr + c0, c_rs, accumulate);
    if (c0 < N) tail_dispatch(rows, K, N - c0, Ar, a_rs, a_ks, B + c0, b_rs, Cr + c0, c_rs, accumulate);
  }
}

// 2^x for x < 127.5, x = n + f with n = round(x), f ∈ [-1/2, 1/2]: 2^f by a degree-5 polynomial fitted for
// relative error on that interval (≤ 2e-7 after float rounding, under 2 ulp), times 2^n built in the
// exponent bits. Inputs below -127 (including -inf) give exactly 0 (2^-127 and below flush to zero, far
// under any probability that matters next to the row maximum 2^0). About 10 vector ops against ~20 for
// hn::Exp: the softmax is the only non-FMA work per score, so this is where the forward's time goes.
HWY_INLINE hn::Vec<DF> fast_exp2(hn::Vec<DF> x) {
  const DF d;
  const DI di;
  x = hn::Max(x, hn::Set(d, -127.0f));
  const auto n = hn::Round(x);
  const auto f = hn::Sub(x, n);
  auto p = hn::Set(d, 1.326697064e-03f);
  p = hn::MulAdd(p, f, hn::Set(d, 9.675459936e-03f));
  p = hn::MulAdd(p, f, hn::Set(d, 5.550742522e-02f));
  p = hn::MulAdd(p, f, hn::Set(d, 2.402212173e-01f));
  p = hn::MulAdd(p, f, hn::Set(d, 6.931469440e-01f));
  p = hn::MulAdd(p, f, hn::Set(d, 1.000000119e+00f));
  const auto two_n = hn::BitCast(d, hn::ShiftLeft<23>(hn::Add(hn::ConvertTo(di, n), hn::Set(di, 127))));
  return hn::Mul(p, two_n);
}

// Scores of row r with ALiBi and the interval mask applied (width is a multiple of the lane count).
HWY_INLINE hn::Vec<DF> adjusted_scores(const float* St, int64_t r, int64_t i, const TileRows& rows,
                                       const TileColumns& cols, bool masked, float alibi_slope) {
  const DF d;
  const DI di;
  auto s = hn::LoadU(d, St + r * cols.width + i);
  if (alibi_slope != 0.0f) {
    const auto key_pos = hn::Set(d, static_cast<float>(rows.key_pos0 + rows.key_step * static_cast<double>(r)));
    const auto dist = hn::Abs(hn::Sub(hn::LoadU(d, cols.position + i), key_pos));
    s = hn::MulAdd(hn::Set(d, -alibi_slope), dist, s);
  }
  if (masked) {
    const auto j = hn::Set(di, static_cast<int32_t>(rows.j0 + r));
    // Highway 1.0 has no integer <=: a key is hidden iff j < lo or hi < j.
    const auto hidden = hn::Or(hn::Lt(j, hn::LoadU(di, cols.lo + i)), hn::Lt(hn::LoadU(di, cols.hi + i), j));
    s = hn::IfThenElse(hn::RebindMask(d, hidden), hn::Set(d, -std::numeric_limits<float>::infinity()), s);
  }
  return s;
}

void OnlineSoftmaxTile(float* St, const TileRows& rows, const TileColumns& cols, bool masked, float alibi_slope,
                       float* m, float* l, float* alpha) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  const auto neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < cols.width; i += NL) {
    // Pass 1: adjusted scores and the new running max.
    auto m_new = hn::LoadU(d, m + i);
    const auto m_old = m_new;
    if (masked || alibi_slope != 0.0f) {
      for (int64_t r = 0; r < rows.rows; ++r) {
        const auto s = adjusted_scores(St, r, i, rows, cols, masked, alibi_slope);
        hn::StoreU(s, d, St + r * cols.width + i);
        m_new = hn::Max(m_new, s);
      }
    } else {
      for (int64_t r = 0; r < rows.rows; ++r) m_new = hn::Max(m_new, hn::LoadU(d, St + r * cols.width + i));
    }
    // Rows that have seen no visible key keep m = -inf; exponentiate against 0 there so that
    // exp(-inf - m) is 0 rather than NaN.
    const auto m_use = hn::IfThenZeroElse(hn::Eq(m_new, neg_inf), m_new);
    const auto a = fast_exp2(hn::Sub(m_old, m_use));
    auto sum = hn::Zero(d);
    for (int64_t r = 0; r < rows.rows; ++r) {
      const auto p = fast_exp2(hn::Sub(hn::LoadU(d, St + r * cols.width + i), m_use));
      hn::StoreU(p, d, St + r * cols.width + i);
      sum = hn::Add(sum, p);
    }
    hn::StoreU(hn::MulAdd(hn::LoadU(d, l + i), a, sum), d, l + i);
    hn::StoreU(a, d, alpha + i);
    hn::StoreU(m_new, d, m + i);
  }
}

void ProbsTile(float* St, const TileRows& rows, const TileColumns& cols, bool masked, float alibi_slope,
               const float* lse) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  const auto neg_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  const auto pos_inf = hn::Set(d, std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < cols.width; i += NL) {
    const auto raw = hn::LoadU(d, lse + i);
    const auto lse_use = hn::IfThenElse(hn::Eq(raw, neg_inf), pos_inf, raw);  // empty rows: exp(s - inf) = 0
    for (int64_t r = 0; r < rows.rows; ++r) {
      const auto s = adjusted_scores(St, r, i, rows, cols, masked, alibi_slope);
      hn::StoreU(fast_exp2(hn::Sub(s, lse_use)), d, St + r * cols.width + i);
    }
  }
}

void SoftmaxGradTile(const float* P, float* dP, int64_t rows, int64_t width, const float* D) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  for (int64_t i = 0; i < width; i += NL) {
    const auto Dv = hn::LoadU(d, D + i);
    for (int64_t r = 0; r < rows; ++r) {
      const auto p = hn::LoadU(d, P + r * width + i);
      hn::StoreU(hn::Mul(p, hn::Sub(hn::LoadU(d, dP + r * width + i), Dv)), d, dP + r * width + i);
    }
  }
}

void Exp2Row(const float* x, float* y, int64_t n) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + NL <= n; i += NL) hn::StoreU(fast_exp2(hn::LoadU(d, x + i)), d, y + i);
  if (i < n) {
    const auto m = hn::FirstN(d, static_cast<size_t>(n - i));
    hn::BlendedStore(fast_exp2(hn::MaskedLoad(m, d, x + i)), m, d, y + i);
  }
}

void ScaleRow(float* x, int64_t n, float a) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  const auto av = hn::Set(d, a);
  int64_t i = 0;
  for (; i + NL <= n; i += NL) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), av), d, x + i);
  for (; i < n; ++i) x[i] *= a;
}

double MeasureFmaGflops(double seconds) {
  const DF d;
  const int64_t NL = static_cast<int64_t>(hn::Lanes(d));
  // 12 independent chains hide the FMA latency (4-5 cycles) on two FMA ports.
  constexpr int kChains = 12;
  hn::Vec<DF> acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = hn::Set(d, 1.0f + 1e-3f * static_cast<float>(c));
  const auto a = hn::Set(d, 0.999999f), b = hn::Set(d, 1e-7f);
  int64_t iterations = 0;
  const auto start = std::chrono::steady_clock::now();
  double elapsed = 0.0;
  while (elapsed < seconds) {
    for (int rep = 0; rep < 4096; ++rep)
      for (int c = 0; c < kChains; ++c) acc[c] = hn::MulAdd(acc[c], a, b);
    iterations += 4096;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  auto sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = hn::Add(sum, acc[c]);
  volatile float sink = hn::GetLane(sum);
  (void)sink;
  return static_cast<double>(iterations) * kChains * static_cast<double>(NL) * 2.0 / elapsed / 1e9;
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace attn::internal::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attn::internal::kernels {

HWY_EXPORT(GemmBcast);
HWY_EXPORT(OnlineSoftmaxTile);
HWY_EXPORT(ProbsTile);
HWY_EXPORT(SoftmaxGradTile);
HWY_EXPORT(Exp2Row);
HWY_EXPORT(ScaleRow);
HWY_EXPORT(MeasureFmaGflops);
HWY_EXPORT(TargetName);

void gemm_bcast(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_ks, const float* B,
                int64_t b_rs, float* C, int64_t c_rs, bool accumulate) {
  HWY_DYNAMIC_DISPATCH(GemmBcast)(M, N, K, A, a_rs, a_ks, B, b_rs, C, c_rs, accumulate);
}
void online_softmax_tile(float* St, const TileRows& rows, const TileColumns& cols, bool masked, float alibi_slope,
                         float* m, float* l, float* alpha) {
  HWY_DYNAMIC_DISPATCH(OnlineSoftmaxTile)(St, rows, cols, masked, alibi_slope, m, l, alpha);
}
void probs_tile(float* St, const TileRows& rows, const TileColumns& cols, bool masked, float alibi_slope,
                const float* lse) {
  HWY_DYNAMIC_DISPATCH(ProbsTile)(St, rows, cols, masked, alibi_slope, lse);
}
void softmax_grad_tile(const float* P, float* dP, int64_t rows, int64_t width, const float* D) {
  HWY_DYNAMIC_DISPATCH(SoftmaxGradTile)(P, dP, rows, width, D);
}
void exp2_row(const float* x, float* y, int64_t n) { HWY_DYNAMIC_DISPATCH(Exp2Row)(x, y, n); }
void scale_row(float* x, int64_t n, float a) { HWY_DYNAMIC_DISPATCH(ScaleRow)(x, n, a); }
double measure_fma_gflops(double seconds) { return HWY_DYNAMIC_DISPATCH(MeasureFmaGflops)(seconds); }
const char* simd_target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace attn::internal::kernels
#endif
