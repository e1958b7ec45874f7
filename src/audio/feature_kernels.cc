// SPDX-License-Identifier: MIT
// Highway feature kernels, compiled per target and dispatched at run time
// (audio/internal/feature_kernels.h).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "audio/feature_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target re-includes this file once per target; everything below is per target.
#include <algorithm>
#include <cmath>

#include "audio/internal/feature_kernels.h"
#include "core/simd_tail.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace attn::audio::internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// A row's last, partial vector: only its lanes are touched, on every target (core/simd_tail.h; an
// fbank row after its energy column starts off a 16-byte boundary).
using attn::internal::simd::HWY_NAMESPACE::load_first_n;
using attn::internal::simd::HWY_NAMESPACE::store_first_n;

void LogFloorRow(float* x, int64_t n, float floor) {
  const hn::ScalableTag<float> d;
  const auto lo = hn::Set(d, floor);
  const auto NL = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + NL <= n; i += NL) hn::StoreU(hn::Log(d, hn::Max(hn::LoadU(d, x + i), lo)), d, x + i);
  if (i < n) {  // lanes past n load as 0 and become log(floor): finite, and never stored
    const auto rest = static_cast<size_t>(n - i);
    store_first_n(hn::Log(d, hn::Max(load_first_n(d, x + i, rest), lo)), d, x + i, rest);
  }
}

double PrepareFrameRow(const float* raw, int64_t ws, bool remove_dc, double c, const float* window,
                       double* out) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;  // as many floats as dd has doubles
  const auto NL = static_cast<int64_t>(hn::Lanes(dd));
  auto load = [&](const float* p) { return hn::PromoteTo(dd, hn::LoadU(df, p)); };
  // Two accumulators per sum: one chain of dependent adds would cost more than the arithmetic.
  double mean = 0.0;
  if (remove_dc) {
    auto s0 = hn::Zero(dd), s1 = hn::Zero(dd);
    int64_t j = 0;
    for (; j + 2 * NL <= ws; j += 2 * NL) {
      s0 = hn::Add(s0, load(raw + j));
      s1 = hn::Add(s1, load(raw + j + NL));
    }
    for (; j + NL <= ws; j += NL) s0 = hn::Add(s0, load(raw + j));
    mean = hn::GetLane(hn::SumOfLanes(dd, hn::Add(s0, s1)));
    for (; j < ws; ++j) mean += static_cast<double>(raw[j]);
    mean /= static_cast<double>(ws);
  }
  const auto vmean = hn::Set(dd, mean), vc = hn::Set(dd, c);
  auto e0 = hn::Zero(dd), e1 = hn::Zero(dd);
  const double y0 = static_cast<double>(raw[0]) - mean;
  out[0] = static_cast<double>(window[0]) * (y0 - c * y0);
  double tail_energy = y0 * y0;
  auto step = [&](int64_t j, hn::Vec<decltype(dd)>& e) {
    const auto y = hn::Sub(load(raw + j), vmean), prev = hn::Sub(load(raw + j - 1), vmean);
    e = hn::MulAdd(y, y, e);
    hn::StoreU(hn::Mul(load(window + j), hn::NegMulAdd(vc, prev, y)), dd, out + j);
  };
  int64_t j = 1;
  for (; j + 2 * NL <= ws; j += 2 * NL) {
    step(j, e0);
    step(j + NL, e1);
  }
  for (; j + NL <= ws; j += NL) step(j, e0);
  for (; j < ws; ++j) {
    const double y = static_cast<double>(raw[j]) - mean,
                 prev = static_cast<double>(raw[j - 1]) - mean;
    tail_energy += y * y;
    out[j] = static_cast<double>(window[j]) * (y - c * prev);
  }
  return hn::GetLane(hn::SumOfLanes(dd, hn::Add(e0, e1))) + tail_energy;
}

void PowerRow(const double* z, int64_t bins, bool power, float* out) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const auto NL = static_cast<int64_t>(hn::Lanes(dd));
  int64_t k = 0;
  for (; k + NL <= bins; k += NL) {
    hn::Vec<decltype(dd)> re, im;
    hn::LoadInterleaved2(dd, z + 2 * k, re, im);
    auto p = hn::MulAdd(re, re, hn::Mul(im, im));
    if (!power) p = hn::Sqrt(p);
    hn::StoreU(hn::DemoteTo(df, p), df, out + k);
  }
  for (; k < bins; ++k) {
    const double p = z[2 * k] * z[2 * k] + z[2 * k + 1] * z[2 * k + 1];
    out[k] = static_cast<float>(power ? p : std::sqrt(p));
  }
}

bool AllFinite(const float* x, int64_t n) {
  const hn::ScalableTag<float> d;
  const hn::RebindToUnsigned<decltype(d)> du;
  const auto NL = static_cast<int64_t>(hn::Lanes(d));
  // |x| as bits is >= the bits of +inf exactly for Inf and NaN; keep the largest.
  const auto magnitude = hn::Set(du, 0x7FFFFFFFu);
  auto worst = hn::Zero(du);
  int64_t i = 0;
  for (; i + NL <= n; i += NL)
    worst = hn::Max(worst, hn::And(hn::BitCast(du, hn::LoadU(d, x + i)), magnitude));
  if (i < n) {  // lanes past n load as 0, which is finite
    const auto last = load_first_n(d, x + i, static_cast<size_t>(n - i));
    worst = hn::Max(worst, hn::And(hn::BitCast(du, last), magnitude));
  }
  return hn::GetLane(hn::MaxOfLanes(du, worst)) < 0x7F800000u;
}

void MelBlock(const float* weights, const int64_t* first, const int64_t* offset, int num_filters,
              const float* spectra, int lanes, int n, float* out, int64_t out_stride) {
  const hn::ScalableTag<float> d;
  const auto NL = static_cast<int>(hn::Lanes(d));
  HWY_ALIGN float sums[64];
  for (int m = 0; m < num_filters; ++m) {
    const float* w = weights + offset[m];
    const int64_t length = offset[m + 1] - offset[m];
    for (int c = 0; c < lanes && c < 64; c += NL) {
      const float* s = spectra + first[m] * lanes + c;
      auto acc = hn::Zero(d);
      for (int64_t k = 0; k < length; ++k)
        acc = hn::MulAdd(hn::Set(d, w[k]), hn::LoadU(d, s + k * lanes), acc);
      hn::Store(acc, d, sums + c);
    }
    for (int j = 0; j < n; ++j) out[j * out_stride + m] = sums[j];
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace attn::audio::internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attn::audio::internal {

HWY_EXPORT(LogFloorRow);
HWY_EXPORT(MelBlock);
HWY_EXPORT(AllFinite);
HWY_EXPORT(PrepareFrameRow);
HWY_EXPORT(PowerRow);

double prepare_frame_row(const float* raw, int64_t ws, bool remove_dc, double c,
                         const float* window, double* out) {
  return HWY_DYNAMIC_DISPATCH(PrepareFrameRow)(raw, ws, remove_dc, c, window, out);
}
void power_row(const double* z, int64_t bins, bool power, float* out) {
  HWY_DYNAMIC_DISPATCH(PowerRow)(z, bins, power, out);
}

bool all_finite(const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(AllFinite)(x, n); }

void mel_block(const float* weights, const int64_t* first, const int64_t* offset, int num_filters,
               const float* spectra, int lanes, int n, float* out, int64_t out_stride) {
  HWY_DYNAMIC_DISPATCH(MelBlock)
  (weights, first, offset, num_filters, spectra, lanes, n, out, out_stride);
}

void log_floor_row(float* x, int64_t n, float floor) {
  HWY_DYNAMIC_DISPATCH(LogFloorRow)(x, n, floor);
}

}  // namespace attn::audio::internal
#endif
