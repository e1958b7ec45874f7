// SPDX-License-Identifier: MIT
// Would a skewed layout make the window forward's score product faster (docs/kernels.md, "What
// limits it")? The fused kernel computes a window band as 16-key chunks against 16-query column
// groups: each group's 16 queries together see 80 keys where each needs 65 (±32), so a fifth of
// its multiply-adds are thrown away. A skewed layout computes S[d][i] = q_i · k_{i+d}, queries on
// the lanes and one row per offset d, with no waste: row d of query group g needs the keys
// k_{i0 + 16g + d .. + 15}, a vector of Kᵀ at a position that is not a multiple of 16, which
// every group whose window holds that position shares. This probe times that inner loop on data in
// L1 (HS = 64, four 16-query groups) in the two ways to build the shifted key vectors, beside the
// same loop with aligned keys (the arithmetic without the shift) and a plain FMA peak:
//   unaligned  5 positions x 4 groups = 20 FMAs a step, the 5 key vectors loaded unaligned
//   valignd    4 positions x 4 groups = 16 FMAs a step, the 4 key vectors shifted out of two
//              aligned loads with valignd
// AVX-512 only; not part of the build:
//   g++ -O3 -march=native bench/probes/window_skewed_scores.cc -o /tmp/window_skewed_scores
// (GCC 12 with -Wall warns inside its own AVX-512 headers: "__Y is used uninitialized".)
//   taskset -c 1 /tmp/window_skewed_scores
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

constexpr int kHS = 64, kKeys = 176, kQueries = 64, kReps = 100000;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// 20 accumulators: positions p0..p0+4 against the four query groups.
template <bool kAligned>
void five_positions(const float* kt, const float* qt, int p0, float* s) {
  __m512 acc[4][5];
  for (auto& row : acc)
    for (auto& a : row) a = _mm512_setzero_ps();
  for (int h = 0; h < kHS; ++h) {
    __m512 k[5];
    for (int j = 0; j < 5; ++j)
      k[j] = kAligned ? _mm512_load_ps(kt + h * kKeys + ((p0 + j) & ~15))
                      : _mm512_loadu_ps(kt + h * kKeys + p0 + j);
    for (int g = 0; g < 4; ++g) {
      const __m512 q = _mm512_load_ps(qt + h * kQueries + 16 * g);
      for (int j = 0; j < 5; ++j) acc[g][j] = _mm512_fmadd_ps(q, k[j], acc[g][j]);
    }
  }
  for (int g = 0; g < 4; ++g)
    for (int j = 0; j < 5; ++j) _mm512_store_ps(s + 16 * (g * kKeys + p0 + j), acc[g][j]);
}

// 16 accumulators: positions base+S0..base+S0+3 against the four groups, shifted by valignd.
template <int S0>
void four_positions_shifted(const float* kt, const float* qt, int base, float* s) {
  __m512 acc[4][4];
  for (auto& row : acc)
    for (auto& a : row) a = _mm512_setzero_ps();
  for (int h = 0; h < kHS; ++h) {
    const __m512i lo = _mm512_castps_si512(_mm512_load_ps(kt + h * kKeys + base));
    const __m512i hi = _mm512_castps_si512(_mm512_load_ps(kt + h * kKeys + base + 16));
    const __m512 k[4] = {_mm512_castsi512_ps(_mm512_alignr_epi32(hi, lo, S0)),
                         _mm512_castsi512_ps(_mm512_alignr_epi32(hi, lo, S0 + 1)),
                         _mm512_castsi512_ps(_mm512_alignr_epi32(hi, lo, S0 + 2)),
                         _mm512_castsi512_ps(_mm512_alignr_epi32(hi, lo, S0 + 3))};
    for (int g = 0; g < 4; ++g) {
      const __m512 q = _mm512_load_ps(qt + h * kQueries + 16 * g);
      for (int j = 0; j < 4; ++j) acc[g][j] = _mm512_fmadd_ps(q, k[j], acc[g][j]);
    }
  }
  for (int g = 0; g < 4; ++g)
    for (int j = 0; j < 4; ++j) _mm512_store_ps(s + 16 * (g * kKeys + base + S0 + j), acc[g][j]);
}

double fma_peak() {  // FMA instructions per ns: 12 independent chains
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(0.0001f);
  const long n = 100000000;
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i)
    for (auto& v : a) v = _mm512_fmadd_ps(v, x, y);
  const double s = seconds_since(t0);
  float sum = 0;
  for (auto& v : a) sum += _mm512_reduce_add_ps(v);
  if (sum == 12345.0f) std::puts("");  // keeps the chains
  return 12.0 * static_cast<double>(n) / s * 1e-9;
}

}  // namespace

int main() {
  auto* kt = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * kHS * kKeys));
  auto* qt = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * kHS * kQueries));
  auto* s = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * 16 * 4 * kKeys));
  for (int i = 0; i < kHS * kKeys; ++i) kt[i] = 0.01f * static_cast<float>(i % 13);
  for (int i = 0; i < kHS * kQueries; ++i) qt[i] = 0.01f * static_cast<float>(i % 7);
  const double peak = fma_peak();
  std::printf("FMA peak: %.2f G FMA instructions/s\n", peak);
  for (int round = 0; round < 3; ++round) {
    double fmas = static_cast<double>(kReps) * 26 * kHS * 20;
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < kReps; ++r)
      for (int p0 = 0; p0 < 130; p0 += 5) five_positions<false>(kt, qt, p0, s);
    const double unaligned = fmas / seconds_since(t0) * 1e-9;
    t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < kReps; ++r)
      for (int p0 = 0; p0 < 130; p0 += 5) five_positions<true>(kt, qt, p0, s);
    const double aligned = fmas / seconds_since(t0) * 1e-9;
    fmas = static_cast<double>(kReps) * 32 * kHS * 16;
    t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < kReps; ++r)
      for (int base = 0; base < 128; base += 16) {
        four_positions_shifted<0>(kt, qt, base, s);
        four_positions_shifted<4>(kt, qt, base, s);
        four_positions_shifted<8>(kt, qt, base, s);
        four_positions_shifted<12>(kt, qt, base, s);
      }
    const double shifted = fmas / seconds_since(t0) * 1e-9;
    std::printf("of peak: unaligned %.0f%%, valignd %.0f%%, aligned (no shift) %.0f%%\n",
                100 * unaligned / peak, 100 * shifted / peak, 100 * aligned / peak);
  }
  std::printf("%g\n", static_cast<double>(s[100]));
  std::free(kt);
  std::free(qt);
  std::free(s);
}
