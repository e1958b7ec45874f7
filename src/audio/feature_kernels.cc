// SPDX-License-Identifier: MIT
// Highway feature kernels, compiled per target and dispatched at run time
// (audio/internal/feature_kernels.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "audio/feature_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target re-includes this file once per target; everything below is per target.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "audio/internal/feature_kernels.h"
#include "core/simd_helpers.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace attn::audio::internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using attn::internal::simd::HWY_NAMESPACE::sum_in_double;

// The frame pass in T = TFromD<D> (double, or float for the float32 transform: twice the lanes;
// its rounding, four roundings behind each value instead of one, is of the size of the float32
// FFT's own, which fbank's redo test covers, and the redone pairs are prepared again in double).
// kRawEnergy: whether to sum y².
template <bool kRawEnergy, class D>
void prepare_pair_rows_in(D d, const float* const* raw, int64_t ws, const double* mean, double c,
                          const hn::TFromD<D>* window, hn::TFromD<D>* z, double* sum_squares,
                          double* windowed_squares) {
  using T = hn::TFromD<D>;
  const hn::Rebind<float, D> df;
  const auto NL = static_cast<int64_t>(hn::Lanes(d));
  auto load = [&](const float* p) {
    if constexpr (std::is_same_v<T, float>)
      return hn::LoadU(d, p);
    else
      return hn::PromoteTo(d, hn::LoadU(df, p));
  };
  const T tmean[2] = {static_cast<T>(mean[0]), static_cast<T>(mean[1])};
  const auto tc = static_cast<T>(c);
  // The first vector's worth of samples one by one (the first has no predecessor: y[-1] = y[0]),
  // so that the vectors store at multiples of 2·NL values: z is 64-byte aligned, and a store
  // split over two cache lines cost as much as the rest of the frame's preparation.
  T scalar_energy[2] = {0, 0}, scalar_windowed[2] = {0, 0};
  auto scalar_step = [&](int64_t i) {  // the vector loop's steps, one value at a time
    for (int f = 0; f < 2; ++f) {
      const T y = static_cast<T>(raw[f][i]) - tmean[f],
              prev = i == 0 ? y : static_cast<T>(raw[f][i - 1]) - tmean[f];
      if constexpr (kRawEnergy) scalar_energy[f] = std::fma(y, y, scalar_energy[f]);
      const T v = window[i] * std::fma(-tc, prev, y);
      scalar_windowed[f] = std::fma(v, v, scalar_windowed[f]);
      z[2 * i + f] = v;
    }
  };
  int64_t j = 0;
  for (; j < std::min(NL, ws); ++j) scalar_step(j);
  const auto vc = hn::Set(d, tc);
  const hn::Vec<D> vmean[2] = {hn::Set(d, tmean[0]), hn::Set(d, tmean[1])};
  hn::Vec<D> energy[2] = {hn::Zero(d), hn::Zero(d)};
  hn::Vec<D> windowed[2] = {hn::Zero(d), hn::Zero(d)};
  auto frame = [&](int f, int64_t i, hn::Vec<D> w) {
    const auto y = hn::Sub(load(raw[f] + i), vmean[f]),
               prev = hn::Sub(load(raw[f] + i - 1), vmean[f]);
    if constexpr (kRawEnergy) energy[f] = hn::MulAdd(y, y, energy[f]);
    return hn::Mul(w, hn::NegMulAdd(vc, prev, y));
  };
  for (; j + NL <= ws; j += NL) {
    const auto w = hn::LoadU(d, window + j);
    const auto a = frame(0, j, w), b = frame(1, j, w);
    windowed[0] = hn::MulAdd(a, a, windowed[0]);
    windowed[1] = hn::MulAdd(b, b, windowed[1]);
    hn::StoreInterleaved2(a, b, d, z + 2 * j);
  }
  for (; j < ws; ++j) scalar_step(j);
  for (int f = 0; f < 2; ++f) {
    if constexpr (kRawEnergy)
      sum_squares[f] =
          static_cast<double>(hn::GetLane(hn::SumOfLanes(d, energy[f])) + scalar_energy[f]);
    windowed_squares[f] =
        static_cast<double>(hn::GetLane(hn::SumOfLanes(d, windowed[f])) + scalar_windowed[f]);
  }
}

template <class D>
void prepare_pair_rows_with(D d, const float* const* raw, int64_t ws, const double* mean, double c,
                            const hn::TFromD<D>* window, hn::TFromD<D>* z, double* sum_squares,
                            double* windowed_squares) {
  if (sum_squares != nullptr)
    prepare_pair_rows_in<true>(d, raw, ws, mean, c, window, z, sum_squares, windowed_squares);
  else
    prepare_pair_rows_in<false>(d, raw, ws, mean, c, window, z, sum_squares, windowed_squares);
}

void PreparePairRows(const float* const* raw, int64_t ws, const double* mean, double c,
                     const double* window, double* z, double* sum_squares,
                     double* windowed_squares) {
  prepare_pair_rows_with(hn::ScalableTag<double>(), raw, ws, mean, c, window, z, sum_squares,
                         windowed_squares);
}

void PreparePairRowsF(const float* const* raw, int64_t ws, const double* mean, double c,
                      const float* window, float* z, double* sum_squares,
                      double* windowed_squares) {
  prepare_pair_rows_with(hn::ScalableTag<float>(), raw, ws, mean, c, window, z, sum_squares,
                         windowed_squares);
}

double FrameMean(const float* raw, int64_t ws) {
  return sum_in_double(hn::ScalableTag<double>(), raw, ws) / static_cast<double>(ws);
}

bool BlockSums(const float* x, int64_t n, int64_t g, double* sums) {
  const hn::ScalableTag<double> dd;
  bool finite = true;
  for (int64_t b = 0; b < n / g; ++b) {
    sums[b] = sum_in_double(dd, x + b * g, g);
    finite &= std::isfinite(sums[b]);
  }
  for (int64_t i = n / g * g; i < n; ++i) finite &= std::isfinite(x[i]);
  return finite;
}

// Bin k of power_pair_lanes, on its own (the ends of the vector loops below).
template <typename T>
HWY_INLINE void power_pair_bin(const T* Z, int64_t n, int64_t k, bool power, float* spectra,
                               int64_t lanes) {
  const int64_t m = (n - k) % n;
  const T zr = Z[2 * k], zi = Z[2 * k + 1], mr = Z[2 * m], mi = Z[2 * m + 1];
  const T ar = T{0.5} * (zr + mr), ai = T{0.5} * (zi - mi), br = T{0.5} * (zi + mi),
          bi = T{0.5} * (mr - zr);
  const T p = ar * ar + ai * ai, q = br * br + bi * bi;
  spectra[k * lanes] = static_cast<float>(power ? p : std::sqrt(p));
  spectra[k * lanes + 1] = static_cast<float>(power ? q : std::sqrt(q));
}

// |A_k|² and |B_k|² (or their roots) of the two real frames in z = a + i·b, from Z = DFT(z):
// A_k = (Z_k + conj Z_m) / 2, B_k = (Z_k - conj Z_m) / 2i with m = (n - k) mod n, so
// A = ((Zk.re + Zm.re) + i (Zk.im - Zm.im)) / 2 and B = ((Zk.im + Zm.im) + i (Zm.re - Zk.re)) / 2.
// Stored straight into the block's bin-major spectra, (A_k, B_k) as one 8-byte store into row k:
// frame-major rows and a transpose after them cost more (their 16 KB pushed the block's working
// set past a 32 KB L1, and the row stores waited on it).
void PowerPairLanes(const double* Z, int64_t n, bool power, float* spectra, int64_t lanes) {
  const int64_t half = n / 2;
  auto scalar = [&](int64_t k) { power_pair_bin(Z, n, k, power, spectra, lanes); };
  scalar(0);
  int64_t k = 1;
#if HWY_TARGET != HWY_SCALAR
  // On the interleaved values, with no de-interleaving: a vector holds bins k .. k + NB - 1 as
  // (re, im) pairs, S = Z_k + Z_m and D = Z_k - Z_m pair by pair, and then
  // |A|² = (S.re / 2)² + (D.im / 2)² and |B|² = (S.im / 2)² + (D.re / 2)² come out as the pairs
  // (|A_k|², |B_k|²) that the lanes want: one swap within pairs, no shuffle across them. The
  // arithmetic is step for step the scalar one's (a fused multiply-add on the rounded square).
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const hn::Repartition<double, decltype(df)> dpair;  // one lane = one (|A_k|², |B_k|²) pair
  const auto NB = static_cast<int64_t>(hn::Lanes(dd)) / 2;  // bins per vector
  const auto vhalf = hn::Set(dd, 0.5);
  // Bins k .. k + NB - 1 < half pair with m = n - k .. n - k - NB + 1 > half: one load, its
  // 128-bit blocks (one bin each) reversed.
  for (; k + NB <= half; k += NB) {
    const auto z = hn::LoadU(dd, Z + 2 * k);
    const auto m = hn::ReverseBlocks(dd, hn::LoadU(dd, Z + 2 * (n - k - NB + 1)));
    const auto s = hn::Mul(vhalf, hn::Add(z, m)), d = hn::Mul(vhalf, hn::Sub(z, m));
    auto pq = hn::MulAdd(s, s, hn::Reverse2(dd, hn::Mul(d, d)));
    if (!power) pq = hn::Sqrt(pq);
    const auto pairs = hn::BitCast(dpair, hn::DemoteTo(df, pq));
    for (int64_t i = 0; i < NB; ++i) {
      const double bits = hn::ExtractLane(pairs, static_cast<size_t>(i));
      std::memcpy(spectra + (k + i) * lanes, &bits, sizeof bits);
    }
  }
#endif
  for (; k <= half; ++k) scalar(k);
}

#if HWY_TARGET != HWY_SCALAR
// The (|A|², |B|²) pairs of bins k .. k + NB - 1 of a float32 transform Z (NB = Lanes(dpair)), one
// 64-bit lane each: (re, im) as one 64-bit lane, so the reversal of Z_m is one lane permutation.
template <class DF, class DP>
HWY_INLINE hn::Vec<DP> float_pair_powers(DF df, DP dpair, const float* Z, int64_t n, int64_t k) {
  const auto NB = static_cast<int64_t>(hn::Lanes(dpair));
  const auto vhalf = hn::Set(df, 0.5f);
  const auto z = hn::LoadU(df, Z + 2 * k);
  const auto m = hn::BitCast(
      df, hn::Reverse(dpair, hn::BitCast(dpair, hn::LoadU(df, Z + 2 * (n - k - NB + 1)))));
  const auto s = hn::Mul(vhalf, hn::Add(z, m)), d = hn::Mul(vhalf, hn::Sub(z, m));
  return hn::BitCast(dpair, hn::MulAdd(s, s, hn::Reverse2(df, hn::Mul(d, d))));
}
#endif

// PowerPairLanes (power only) for a float32 transform, in float.
void PowerPairLanesF(const float* Z, int64_t n, float* spectra, int64_t lanes) {
  const int64_t half = n / 2;
  auto scalar = [&](int64_t k) { power_pair_bin(Z, n, k, true, spectra, lanes); };
  scalar(0);
  int64_t k = 1;
#if HWY_TARGET != HWY_SCALAR
  const hn::ScalableTag<float> df;
  const hn::Repartition<double, decltype(df)> dpair;  // one lane = one complex value
  const auto NB = static_cast<int64_t>(hn::Lanes(dpair));
  for (; k + NB <= half; k += NB) {
    const auto pairs = float_pair_powers(df, dpair, Z, n, k);
    for (int64_t i = 0; i < NB; ++i) {
      const double bits = hn::ExtractLane(pairs, static_cast<size_t>(i));
      std::memcpy(spectra + (k + i) * lanes, &bits, sizeof bits);
    }
  }
#endif
  for (; k <= half; ++k) scalar(k);
}

#if HWY_TARGET != HWY_SCALAR
// The 128-bit blocks of v to rows[0], rows[1], ... (16 bytes each): halves until one block is left.
template <class D>
HWY_INLINE void store_blocks(D d, hn::Vec<D> v, float* const* rows) {
  constexpr size_t kBytes = hn::MaxLanes(D()) * sizeof(hn::TFromD<D>);
  if constexpr (kBytes <= 16) {
    hn::StoreU(v, d, rows[0]);
  } else {
    const hn::Half<D> dh;
    store_blocks(dh, hn::LowerHalf(dh, v), rows);
    store_blocks(dh, hn::UpperHalf(dh, v), rows + kBytes / 32);
  }
}
#endif

// PowerPairLanesF for two transforms at once (frames j, j + 1 from Z0 and j + 2, j + 3 from Z1):
// the four values of a bin go to its row as one 16-byte store instead of two 8-byte ones.
void PowerQuadLanesF(const float* Z0, const float* Z1, int64_t n, float* spectra, int64_t lanes) {
  const int64_t half = n / 2;
  auto scalar = [&](int64_t k) {
    power_pair_bin(Z0, n, k, true, spectra, lanes);
    power_pair_bin(Z1, n, k, true, spectra + 2, lanes);
  };
  scalar(0);
  int64_t k = 1;
#if HWY_TARGET != HWY_SCALAR
  const hn::ScalableTag<float> df;
  const hn::Repartition<double, decltype(df)> dpair;
  const auto NB = static_cast<int64_t>(hn::Lanes(dpair));
  constexpr size_t kMaxBlocks = hn::MaxLanes(decltype(df)()) * sizeof(float) / 16;
  for (; k + NB <= half; k += NB) {
    const auto a = float_pair_powers(df, dpair, Z0, n, k),
               b = float_pair_powers(df, dpair, Z1, n, k);
    // Within each 128-bit block: (a_i, b_i) for the block's first bin i and (a_i+1, b_i+1) for its
    // second, so block t of `even` is bin k + 2t and of `odd` bin k + 2t + 1.
    const auto even = hn::BitCast(df, hn::InterleaveLower(dpair, a, b));
    const auto odd = hn::BitCast(df, hn::InterleaveUpper(dpair, a, b));
    float* even_rows[kMaxBlocks];
    float* odd_rows[kMaxBlocks];
    for (size_t t = 0; t < kMaxBlocks; ++t) {
      even_rows[t] = spectra + (k + 2 * static_cast<int64_t>(t)) * lanes;
      odd_rows[t] = spectra + (k + 2 * static_cast<int64_t>(t) + 1) * lanes;
    }
    store_blocks(df, even, even_rows);
    store_blocks(df, odd, odd_rows);
  }
#endif
  for (; k <= half; ++k) scalar(k);
}

bool AllFinite(const float* x, int64_t n) {
  return attn::internal::simd::HWY_NAMESPACE::rows_finite(hn::ScalableTag<float>(), x, 1, n, n);
}

// ln(x) for normal floats x > 0 (the mel energies, floored at a normal log floor): x = 2^e · m
// with m in [sqrt(1/2), sqrt(2)), ln x = e · ln 2 + ln(1 + f), f = m - 1, and ln(1 + f) = f - f²/2
// + f³ · Q(f) with Q of degree 6 fitted (scripts/fit_log_polynomial.py) to 3.3e-8 relative error
// over that range. No division (Highway's Log divides once a value): on a Zen 3 VM (AVX2), 80k
// logs in a loop take 25-35 µs against Highway's 105, and fbank of 10 s 2% less time. Within 2
// ulp of the float result of a double log (test: Fbank.LogOfNormalFloatsIsWithinTwoUlp).
constexpr float kLogQ[7] = {0.33333963f, -0.25001135f, 0.1996112f,  -0.16582914f,
                            0.14939569f, -0.14233713f, 0.085879944f};

template <class D>
HWY_INLINE hn::Vec<D> log_of_normal(D d, hn::Vec<D> x) {
  const hn::RebindToSigned<D> di;
  // x's bits plus bits(1) - bits(sqrt(1/2)): the exponent field is then e + 127 for x = 2^e · m
  // with m in [sqrt(1/2), sqrt(2)), and the low 23 bits plus bits(sqrt(1/2)) are m's.
  const auto bits = hn::Add(hn::BitCast(di, x), hn::Set(di, 0x3F800000 - 0x3F3504F3));
  const auto e = hn::ConvertTo(d, hn::Sub(hn::ShiftRight<23>(bits), hn::Set(di, 127)));
  const auto m =
      hn::BitCast(d, hn::Add(hn::And(bits, hn::Set(di, 0x007FFFFF)), hn::Set(di, 0x3F3504F3)));
  const auto f = hn::Sub(m, hn::Set(d, 1.0f));
  auto q = hn::Set(d, kLogQ[6]);
  for (int i = 5; i >= 0; --i) q = hn::MulAdd(q, f, hn::Set(d, kLogQ[i]));
  const auto f2 = hn::Mul(f, f);
  const auto r = hn::MulAdd(hn::Mul(f2, f), q, hn::MulAdd(f2, hn::Set(d, -0.5f), f));
  // e · ln 2 in two parts (ln2_hi has 9 trailing zero bits: e · ln2_hi is exact for |e| < 512).
  return hn::MulAdd(e, hn::Set(d, 0.693145751953125f),
                    hn::MulAdd(e, hn::Set(d, 1.4286068e-06f), r));
}

// Filters go four at a time: one filter's multiply-adds form a single dependent chain (its
// sum), bound by the FMA latency; four chains side by side fill the pipeline. Each filter's sum
// takes the same steps in the same order as on its own, so the bits do not depend on the grouping.
constexpr int kFilterGroup = 4;

// The four sums of a group, sums[g][j] for frame j, to out[j · out_stride + m0 + g], j < n: 4 × 4
// register transposes, where one scalar store per value was most of the filters' time.
HWY_INLINE void store_group_rows(const float (*sums)[64], int n, float* out, int64_t out_stride,
                                 int m0) {
  int j = 0;
#if HWY_TARGET != HWY_SCALAR
  const hn::FixedTag<float, 4> d4;
  for (; j + 4 <= n; j += 4)
    attn::internal::simd::HWY_NAMESPACE::store_transposed_4x4(
        hn::Load(d4, sums[0] + j), hn::Load(d4, sums[1] + j), hn::Load(d4, sums[2] + j),
        hn::Load(d4, sums[3] + j), out + j * out_stride + m0, out_stride);
#endif
  for (; j < n; ++j)
    for (int g = 0; g < kFilterGroup; ++g) out[j * out_stride + m0 + g] = sums[g][j];
}

// Sixteen lanes (frames) at a time: kCols vectors of them for each of the G filters, so that the
// inner loop carries G · kCols independent sums (eight on AVX2: enough to keep both FMA pipes busy
// through their latency; the four of a loop over one vector at a time left half of them idle).
template <int G>
HWY_INLINE void mel_group(const float* weights, const int64_t* first, const int64_t* offset, int m0,
                          const float* spectra, int lanes, int n, float log_floor, float* out,
                          int64_t out_stride, float* lane_min) {
  const hn::ScalableTag<float> d;
  constexpr int kChunk = 16;
  constexpr int kCols = kChunk / static_cast<int>(hn::MaxLanes(d)) > 0
                            ? kChunk / static_cast<int>(hn::MaxLanes(d))
                            : 1;
  const auto NL = static_cast<int>(hn::Lanes(d));
  const float* w[G];
  const float* s[G];
  int64_t length[G];
  int64_t common = std::numeric_limits<int64_t>::max();
  for (int g = 0; g < G; ++g) {
    w[g] = weights + offset[m0 + g];
    length[g] = offset[m0 + g + 1] - offset[m0 + g];
    s[g] = spectra + first[m0 + g] * lanes;
    common = std::min(common, length[g]);
  }
  HWY_ALIGN float sums[G][64];
  for (int c0 = 0; c0 < lanes && c0 < 64; c0 += kChunk) {
    hn::Vec<decltype(d)> acc[G][kCols];
    for (int g = 0; g < G; ++g)
      for (int i = 0; i < kCols; ++i) acc[g][i] = hn::Zero(d);
    auto step = [&](int g, int64_t k) {
      const auto weight = hn::Set(d, w[g][k]);
      const float* row = s[g] + k * lanes + c0;
      for (int i = 0; i < kCols; ++i)
        acc[g][i] = hn::MulAdd(weight, hn::LoadU(d, row + i * NL), acc[g][i]);
    };
    for (int64_t k = 0; k < common; ++k)
      for (int g = 0; g < G; ++g) step(g, k);
    for (int g = 0; g < G; ++g)
      for (int64_t k = common; k < length[g]; ++k) step(g, k);
    for (int g = 0; g < G; ++g)
      for (int i = 0; i < kCols; ++i) {
        const int c = c0 + i * NL;
        if (lane_min != nullptr)
          hn::Store(hn::Min(hn::Load(d, lane_min + c), acc[g][i]), d, lane_min + c);
        // Lanes of frames past n are zeros and become log(floor): finite, and never stored.
        if (log_floor > 0.0f)
          acc[g][i] = log_of_normal(d, hn::Max(acc[g][i], hn::Set(d, log_floor)));
        hn::Store(acc[g][i], d, sums[g] + c);
      }
  }
  if constexpr (G == kFilterGroup) {
    store_group_rows(sums, n, out, out_stride, m0);
  } else {
    for (int j = 0; j < n; ++j)
      for (int g = 0; g < G; ++g) out[j * out_stride + m0 + g] = sums[g][j];
  }
}

void LogOfNormal(const float* x, int64_t n, float* out) {
  const hn::ScalableTag<float> d;
  const auto NL = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + NL <= n; i += NL) hn::StoreU(log_of_normal(d, hn::LoadU(d, x + i)), d, out + i);
  if (i < n) {
    HWY_ALIGN float tail[hn::MaxLanes(d)] = {};
    std::fill_n(tail, NL, 1.0f);
    std::copy(x + i, x + n, tail);
    hn::Store(log_of_normal(d, hn::Load(d, tail)), d, tail);
    std::copy_n(tail, n - i, out + i);
  }
}

void MelBlock(const float* weights, const int64_t* first, const int64_t* offset, int num_filters,
              const float* spectra, int lanes, int n, float log_floor, float* out,
              int64_t out_stride, float* lane_min) {
  if (lane_min != nullptr) std::fill_n(lane_min, lanes, std::numeric_limits<float>::infinity());
  int m = 0;
  for (; m + kFilterGroup <= num_filters; m += kFilterGroup)
    mel_group<kFilterGroup>(weights, first, offset, m, spectra, lanes, n, log_floor, out,
                            out_stride, lane_min);
  for (; m < num_filters; ++m)
    mel_group<1>(weights, first, offset, m, spectra, lanes, n, log_floor, out, out_stride,
                 lane_min);
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace attn::audio::internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#if HWY_ARCH_X86 && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

#include <atomic>
#include <string>

#include "attn/audio/features.h"
#include "attn/error.h"

namespace attn::audio {
namespace {

// Intel's AVX-512 cores before Sapphire Rapids (Skylake-SP to Ice Lake) lower their clock while
// 512-bit vectors run, and the whole call then runs slower, FFTW's 256-bit transforms included:
// fbank with AVX3 kernels took 0.596 ms against 0.486 with AVX2 on an Ice Lake Xeon (docs/speech.md
// run 15). Sapphire Rapids, the first with AVX512_FP16, runs AVX-512 at full clock; AMD's cores do.
bool clock_drops_for_512bit_vectors() {
#if HWY_ARCH_X86 && (defined(__GNUC__) || defined(__clang__))
  unsigned max_leaf = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &max_leaf, &ebx, &ecx, &edx) == 0 || max_leaf < 7) return false;
  const bool intel = ebx == 0x756e6547u && edx == 0x49656e69u && ecx == 0x6c65746eu;
  unsigned eax = 0;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool avx512f = (ebx & (1u << 16)) != 0;
  const bool avx512fp16 = (edx & (1u << 23)) != 0;
  return intel && avx512f && !avx512fp16;
#else
  return false;
#endif
}

std::atomic<WideVectors> g_wide_vectors{WideVectors::kAutomatic};

bool avoid_wide_vectors() {
  static const bool drops = clock_drops_for_512bit_vectors();
  const WideVectors w = g_wide_vectors.load(std::memory_order_relaxed);
  return w == WideVectors::kAvoid || (w == WideVectors::kAutomatic && drops);
}

}  // namespace

void set_feature_wide_vectors(WideVectors policy) { g_wide_vectors.store(policy); }

WideVectors parse_wide_vectors(const std::string& name, const char* fn) {
  if (name == "auto") return WideVectors::kAutomatic;
  if (name == "allow") return WideVectors::kAllow;
  if (name == "avoid") return WideVectors::kAvoid;
  fail<ValueError>(fn, "policy must be 'auto', 'allow' or 'avoid', got '", name, "'");
}

}  // namespace attn::audio

namespace attn::audio::internal {

// The index into the HWY_EXPORT tables: Highway's choice (every target set_simd_target leaves), but
// never better than AVX2 where wide vectors are avoided. Lower indices are better targets.
size_t dispatch_index() {
  hwy::ChosenTarget& chosen = hwy::GetChosenTarget();
  if (!chosen.IsInitialized()) chosen.Update(hwy::SupportedTargets());
  const size_t index = chosen.GetIndex();
#if HWY_ARCH_X86 && (HWY_TARGETS & HWY_AVX2)
  static const size_t kAvx2 =
      hwy::Num0BitsBelowLS1Bit_Nonzero64(static_cast<uint64_t>(HWY_CHOSEN_TARGET_SHIFT(HWY_AVX2)));
  if (index < kAvx2 && avoid_wide_vectors()) return kAvx2;
#endif
  return index;
}

#define ATTN_FEATURE_DISPATCH(FUNC) (*(HWY_DISPATCH_TABLE(FUNC)[dispatch_index()]))

HWY_EXPORT(TargetName);
HWY_EXPORT(MelBlock);
HWY_EXPORT(LogOfNormal);
HWY_EXPORT(AllFinite);
HWY_EXPORT(PreparePairRows);
HWY_EXPORT(PowerPairLanes);
HWY_EXPORT(PowerPairLanesF);
HWY_EXPORT(PowerQuadLanesF);
HWY_EXPORT(PreparePairRowsF);
HWY_EXPORT(FrameMean);
HWY_EXPORT(BlockSums);

void prepare_pair_rows(const float* const* raw, int64_t ws, const double* mean, double c,
                       const double* window, double* z, double* sum_squares,
                       double* windowed_squares) {
  ATTN_FEATURE_DISPATCH(PreparePairRows)
  (raw, ws, mean, c, window, z, sum_squares, windowed_squares);
}
void prepare_pair_rows(const float* const* raw, int64_t ws, const double* mean, double c,
                       const float* window, float* z, double* sum_squares,
                       double* windowed_squares) {
  ATTN_FEATURE_DISPATCH(PreparePairRowsF)
  (raw, ws, mean, c, window, z, sum_squares, windowed_squares);
}
double frame_mean(const float* raw, int64_t ws) {
  return ATTN_FEATURE_DISPATCH(FrameMean)(raw, ws);
}
bool block_sums(const float* x, int64_t n, int64_t g, double* sums) {
  return ATTN_FEATURE_DISPATCH(BlockSums)(x, n, g, sums);
}
void power_pair_lanes(const double* z, int64_t n, bool power, float* spectra, int64_t lanes) {
  ATTN_FEATURE_DISPATCH(PowerPairLanes)(z, n, power, spectra, lanes);
}

void power_pair_lanes_float(const float* z, int64_t n, float* spectra, int64_t lanes) {
  ATTN_FEATURE_DISPATCH(PowerPairLanesF)(z, n, spectra, lanes);
}
void power_quad_lanes_float(const float* z0, const float* z1, int64_t n, float* spectra,
                            int64_t lanes) {
  ATTN_FEATURE_DISPATCH(PowerQuadLanesF)(z0, z1, n, spectra, lanes);
}
bool all_finite(const float* x, int64_t n) { return ATTN_FEATURE_DISPATCH(AllFinite)(x, n); }
void log_of_normal_floats(const float* x, int64_t n, float* out) {
  ATTN_FEATURE_DISPATCH(LogOfNormal)(x, n, out);
}

void mel_block(const float* weights, const int64_t* first, const int64_t* offset, int num_filters,
               const float* spectra, int lanes, int n, float log_floor, float* out,
               int64_t out_stride, float* lane_min) {
  ATTN_FEATURE_DISPATCH(MelBlock)
  (weights, first, offset, num_filters, spectra, lanes, n, log_floor, out, out_stride, lane_min);
}

const char* feature_target_name() { return ATTN_FEATURE_DISPATCH(TargetName)(); }

}  // namespace attn::audio::internal

namespace attn::audio {
const char* feature_simd_target() { return internal::feature_target_name(); }
}  // namespace attn::audio
#endif
