// SPDX-License-Identifier: MIT
// Native bf16 products for the fused attention's forward: AVX512_BF16 (vdpbf16ps) through compiler
// intrinsics, each function compiled for that instruction set by a target attribute (the rest of
// the library stays portable) and reached only after bf16_dot_supported(). The register tiling
// mirrors gemm_bcast in attention_kernels.cc: 6 rows × 4 vectors of float accumulators (24 of the
// 32 zmm registers), narrower strips with more rows, a masked last vector.
#include "ops/internal/attention_bf16.h"

#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ATTN_BF16_KERNELS 1
#include <immintrin.h>
#define ATTN_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))
#endif

namespace attn::internal::kernels {

#if ATTN_BF16_KERNELS

bool bf16_dot_supported() {
  static const bool supported = __builtin_cpu_supports("avx512f") &&
                                __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512bf16");
  return supported;
}

namespace {

constexpr int kLanes = 16;  // floats (or bf16 pairs) per zmm
constexpr int kRows = 6;
constexpr int kVecsWide = 4;
constexpr int64_t kCreditEvery = 8;  // as in attention_kernels.cc: lines go out a few at a time
constexpr int rows_for(int v) { return 24 / v; }

struct Epilogue {
  float scale;
  bool accumulate;
  float* col_max;
  LinePrefetcher* prefetch;
  const float* row_scale;  // accumulate: C[r] = row_scale[r]·C[r] + scale·product (or none)
  Epilogue from_row(int64_t r0) const {
    return {scale, accumulate, col_max, prefetch, row_scale ? row_scale + r0 : nullptr};
  }
};

// max(a, b); GCC 12's _mm512_max_ps starts from _mm512_undefined_ps, which -Wmaybe-uninitialized
// flags, so the zero-masked form (same instruction) is used.
ATTN_BF16_TARGET inline __m512 max_ps(__m512 a, __m512 b) {
  return _mm512_maskz_max_ps(__mmask16(0xffff), a, b);
}

inline uint32_t pair_at(const uint16_t* p) {
  uint32_t w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

// R rows × V vectors of C from `pairs` steps; the last vector holds only the lanes in `last`
// (kMasked), every other one all 16.
template <int R, int V, bool kMasked>
ATTN_BF16_TARGET inline void tile(int64_t pairs, const uint16_t* A, int64_t a_rs, int64_t a_ps,
                                  const uint32_t* B, int64_t b_rs, float* C, int64_t c_rs,
                                  __mmask16 last, const Epilogue& e) {
  auto mask_of = [&](int v) { return kMasked && v == V - 1 ? last : __mmask16(0xffff); };
  __m512 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int64_t p = 0; p < pairs; ++p) {
    __m512i b[V];
    for (int v = 0; v < V; ++v)
      b[v] = kMasked && v == V - 1 ? _mm512_maskz_loadu_epi32(last, B + p * b_rs + v * kLanes)
                                   : _mm512_loadu_si512(B + p * b_rs + v * kLanes);
    for (int r = 0; r < R; ++r) {
      const __m512i a = _mm512_set1_epi32(static_cast<int>(pair_at(A + r * a_rs + p * a_ps)));
      for (int v = 0; v < V; ++v)
        acc[r][v] = _mm512_dpbf16_ps(acc[r][v], reinterpret_cast<__m512bh>(a),
                                     reinterpret_cast<__m512bh>(b[v]));
    }
    if (e.prefetch && p % kCreditEvery == kCreditEvery - 1)
      e.prefetch->credit(R * V * 2 * kLanes * kCreditEvery);
  }
  const __m512 scale = _mm512_set1_ps(e.scale);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) {
      float* c = C + r * c_rs + v * kLanes;
      if (!e.accumulate)
        acc[r][v] = _mm512_mul_ps(acc[r][v], scale);
      else if (e.row_scale)
        acc[r][v] =
            _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask_of(v), c), _mm512_set1_ps(e.row_scale[r]),
                            _mm512_mul_ps(acc[r][v], scale));
      else
        acc[r][v] = _mm512_fmadd_ps(acc[r][v], scale, _mm512_maskz_loadu_ps(mask_of(v), c));
      _mm512_mask_storeu_ps(c, mask_of(v), acc[r][v]);
    }
  if (e.col_max) {
    for (int v = 0; v < V; ++v) {
      float* cm = e.col_max + v * kLanes;
      __m512 mx = _mm512_maskz_loadu_ps(mask_of(v), cm);
      for (int r = 0; r < R; ++r) mx = max_ps(mx, acc[r][v]);
      _mm512_mask_storeu_ps(cm, mask_of(v), mx);
    }
  }
  if (e.prefetch) e.prefetch->credit(R * V * 2 * kLanes * (pairs % kCreditEvery));
}

template <int V, bool kMasked>
ATTN_BF16_TARGET inline void rows_dispatch(int rows, int64_t pairs, const uint16_t* A, int64_t a_rs,
                                           int64_t a_ps, const uint32_t* B, int64_t b_rs, float* C,
                                           int64_t c_rs, __mmask16 last, const Epilogue& e) {
  switch (rows) {
    case 6:
      return tile<6, V, kMasked>(pairs, A, a_rs, a_ps, B, b_rs, C, c_rs, last, e);
    case 5:
      return tile<5, V, kMasked>(pairs, A, a_rs, a_ps, B, b_rs, C, c_rs, last, e);
    case 4:
      return tile<4, V, kMasked>(pairs, A, a_rs, a_ps, B, b_rs, C, c_rs, last, e);
    case 3:
      return tile<3, V, kMasked>(pairs, A, a_rs, a_ps, B, b_rs, C, c_rs, last, e);
    case 2:
      return tile<2, V, kMasked>(pairs, A, a_rs, a_ps, B, b_rs, C, c_rs, last, e);
    default:
      return tile<1, V, kMasked>(pairs, A, a_rs, a_ps, B, b_rs, C, c_rs, last, e);
  }
}

// Every row of one strip of V vectors: tiles of R rows, then the rest in tiles of at most kRows.
template <int V, int R, bool kMasked = false>
ATTN_BF16_TARGET inline void column_strip(int64_t M, int64_t pairs, const uint16_t* A, int64_t a_rs,
                                          int64_t a_ps, const uint32_t* B, int64_t b_rs, float* C,
                                          int64_t c_rs, __mmask16 last, const Epilogue& e) {
  int64_t r0 = 0;
  for (; r0 + R <= M; r0 += R)
    tile<R, V, kMasked>(pairs, A + r0 * a_rs, a_rs, a_ps, B, b_rs, C + r0 * c_rs, c_rs, last,
                        e.from_row(r0));
  for (; r0 < M; r0 += kRows)
    rows_dispatch<V, kMasked>(static_cast<int>(M - r0 < kRows ? M - r0 : kRows), pairs,
                              A + r0 * a_rs, a_rs, a_ps, B, b_rs, C + r0 * c_rs, c_rs, last,
                              e.from_row(r0));
}

}  // namespace

ATTN_BF16_TARGET void gemm_bf16_pairs(int64_t M, int64_t N, int64_t pairs, const uint16_t* A,
                                      int64_t a_rs, int64_t a_ps, const uint32_t* B, int64_t b_rs,
                                      float* C, int64_t c_rs, float scale, bool accumulate,
                                      float* col_max, LinePrefetcher* prefetch,
                                      const float* c_row_scale) {
  auto at = [&](int64_t col) {
    return Epilogue{scale, accumulate, col_max ? col_max + col : nullptr, prefetch, c_row_scale};
  };
  int64_t c0 = 0;
  for (; c0 + kVecsWide * kLanes <= N; c0 += kVecsWide * kLanes)
    column_strip<kVecsWide, rows_for(kVecsWide)>(M, pairs, A, a_rs, a_ps, B + c0, b_rs, C + c0,
                                                 c_rs, 0, at(c0));
  const int64_t vecs_left = (N - c0) / kLanes;
  if (vecs_left == 3)
    column_strip<3, rows_for(3)>(M, pairs, A, a_rs, a_ps, B + c0, b_rs, C + c0, c_rs, 0, at(c0));
  if (vecs_left == 2)
    column_strip<2, rows_for(2)>(M, pairs, A, a_rs, a_ps, B + c0, b_rs, C + c0, c_rs, 0, at(c0));
  if (vecs_left == 1)
    column_strip<1, rows_for(1)>(M, pairs, A, a_rs, a_ps, B + c0, b_rs, C + c0, c_rs, 0, at(c0));
  c0 += vecs_left * kLanes;
  if (c0 < N) {
    const auto last = static_cast<__mmask16>((1u << (N - c0)) - 1u);
    column_strip<1, kRows, true>(M, pairs, A, a_rs, a_ps, B + c0, b_rs, C + c0, c_rs, last, at(c0));
  }
}

ATTN_BF16_TARGET bool interleave_row_pairs(const uint16_t* rows, int64_t n, int64_t len, int64_t rs,
                                           uint32_t* out) {
  // Word j of the result takes element j of row 2p (its low half) and element j of row 2p + 1:
  // vpermt2w with indices j and 32 + j, for the first and the second 16 words of 32 elements.
  alignas(64) uint16_t lo_idx[32], hi_idx[32];
  for (int j = 0; j < 32; ++j) {
    lo_idx[j] = static_cast<uint16_t>((j & 1 ? 32 : 0) + j / 2);
    hi_idx[j] = static_cast<uint16_t>((j & 1 ? 32 : 0) + 16 + j / 2);
  }
  const __m512i lo = _mm512_load_si512(lo_idx), hi = _mm512_load_si512(hi_idx);
  const __m512i exponent = _mm512_set1_epi16(0x7f80);
  __mmask32 bad = 0;
  for (int64_t p = 0; 2 * p < n; ++p) {
    const uint16_t* r0 = rows + 2 * p * rs;
    const uint16_t* r1 = 2 * p + 1 < n ? r0 + rs : nullptr;
    uint32_t* o = out + p * len;
    for (int64_t c = 0; c < len; c += 32) {
      const int64_t left = len - c;
      const __mmask32 m = left >= 32 ? ~__mmask32(0) : static_cast<__mmask32>((1u << left) - 1u);
      const __m512i a = _mm512_maskz_loadu_epi16(m, r0 + c);
      const __m512i b = r1 ? _mm512_maskz_loadu_epi16(m, r1 + c) : _mm512_setzero_si512();
      bad |= _mm512_cmpeq_epi16_mask(_mm512_and_si512(a, exponent), exponent) |
             _mm512_cmpeq_epi16_mask(_mm512_and_si512(b, exponent), exponent);
      const __mmask16 m_lo =
          left >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << left) - 1u);
      const __mmask16 m_hi =
          left >= 32
              ? __mmask16(0xffff)
              : (left > 16 ? static_cast<__mmask16>((1u << (left - 16)) - 1u) : __mmask16(0));
      _mm512_mask_storeu_epi32(o + c, m_lo, _mm512_permutex2var_epi16(a, lo, b));
      if (m_hi) _mm512_mask_storeu_epi32(o + c + 16, m_hi, _mm512_permutex2var_epi16(a, hi, b));
    }
  }
  return bad == 0;
}

ATTN_BF16_TARGET void pack_prob_pairs(const float* P, int64_t p_rs, int64_t first_row,
                                      int64_t row_lo, int64_t row_hi, int64_t p0, int64_t pairs,
                                      int64_t width, uint32_t* out) {
  // cvtne2ps gives the 16 bf16 of the first row in the low half and the second's in the high half;
  // vpermw interleaves them into 16 words (P[r][i], P[r + 1][i]).
  alignas(64) uint16_t idx[32];
  for (int j = 0; j < 32; ++j) idx[j] = static_cast<uint16_t>((j & 1 ? 16 : 0) + j / 2);
  const __m512i interleave = _mm512_load_si512(idx);
  for (int64_t p = 0; p < pairs; ++p) {
    const int64_t r = 2 * (p0 + p);
    const bool has0 = r >= row_lo && r <= row_hi, has1 = r + 1 >= row_lo && r + 1 <= row_hi;
    const float* x0 = has0 ? P + (r - first_row) * p_rs : nullptr;
    const float* x1 = has1 ? P + (r + 1 - first_row) * p_rs : nullptr;
    for (int64_t i = 0; i < width; i += kLanes) {
      const __m512 a = has0 ? _mm512_loadu_ps(x0 + i) : _mm512_setzero_ps();
      const __m512 b = has1 ? _mm512_loadu_ps(x1 + i) : _mm512_setzero_ps();
      const __m512i both = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a));
      _mm512_storeu_si512(out + p * width + i, _mm512_permutexvar_epi16(interleave, both));
    }
  }
}

#else  // no x86-64: never called, since bf16_dot_supported() is false

bool bf16_dot_supported() { return false; }
void gemm_bf16_pairs(int64_t, int64_t, int64_t, const uint16_t*, int64_t, int64_t, const uint32_t*,
                     int64_t, float*, int64_t, float, bool, float*, LinePrefetcher*, const float*) {
}
bool interleave_row_pairs(const uint16_t*, int64_t, int64_t, int64_t, uint32_t*) { return false; }
void pack_prob_pairs(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                     uint32_t*) {}

#endif

}  // namespace attn::internal::kernels
