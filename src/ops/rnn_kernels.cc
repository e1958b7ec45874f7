// SPDX-License-Identifier: MIT
// Highway SIMD gate rows of the LSTM and GRU steps (ops/internal/rnn_kernels.h), compiled per
// target and dispatched at run time.
#include <algorithm>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/rnn_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target re-includes this file once per target; everything below is per target.
#include "core/simd_helpers.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "ops/internal/rnn_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace attn::internal::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

HWY_INLINE VF Sigmoid(DF d, VF a) {
  const auto half = hn::Set(d, 0.5f);
  return hn::MulAdd(half, hn::Tanh(d, hn::Mul(half, a)), half);
}

// Runs body(span) over [0, n) in vectors. A tail of fewer than a vector's lanes touches only its
// lanes, on every target (core/simd_helpers.h).
struct Span {
  int64_t i, n;  // first element; valid lanes (a whole vector or fewer)
};
HWY_INLINE VF Load(DF d, const Span& s, const float* p) {
  if (s.n == static_cast<int64_t>(hn::Lanes(d))) return hn::LoadU(d, p + s.i);
  return simd::HWY_NAMESPACE::load_first_n(d, p + s.i, static_cast<size_t>(s.n));
}
HWY_INLINE void Store(DF d, const Span& s, VF v, float* p) {
  if (s.n == static_cast<int64_t>(hn::Lanes(d))) return hn::StoreU(v, d, p + s.i);
  simd::HWY_NAMESPACE::store_first_n(v, d, p + s.i, static_cast<size_t>(s.n));
}
template <typename Body>
HWY_INLINE void ForEachVector(int64_t n, Body&& body) {
  const int64_t NL = static_cast<int64_t>(hn::Lanes(DF()));
  int64_t i = 0;
  for (; i + NL <= n; i += NL) body(Span{i, NL});
  if (i < n) body(Span{i, n - i});
}

void LstmForwardRow(float* gates, int64_t gs, const float* hp, int64_t hs, float* c, float* h,
                    int64_t n) {
  const DF d;
  ForEachVector(n, [&](const Span& s) {
    const VF i = Sigmoid(d, hn::Add(Load(d, s, gates), Load(d, s, hp)));
    const VF f = Sigmoid(d, hn::Add(Load(d, s, gates + gs), Load(d, s, hp + hs)));
    const VF g = hn::Tanh(d, hn::Add(Load(d, s, gates + 2 * gs), Load(d, s, hp + 2 * hs)));
    const VF o = Sigmoid(d, hn::Add(Load(d, s, gates + 3 * gs), Load(d, s, hp + 3 * hs)));
    const VF cn = hn::MulAdd(f, Load(d, s, c), hn::Mul(i, g));
    Store(d, s, cn, c);
    Store(d, s, hn::Mul(o, hn::Tanh(d, cn)), h);
    Store(d, s, i, gates);
    Store(d, s, f, gates + gs);
    Store(d, s, g, gates + 2 * gs);
    Store(d, s, o, gates + 3 * gs);
  });
}

void GruForwardRow(float* gates, int64_t gs, const float* hp, int64_t hs, const float* b_hn,
                   const float* h_prev, float* h, int64_t n) {
  const DF d;
  ForEachVector(n, [&](const Span& s) {
    const VF r = Sigmoid(d, hn::Add(Load(d, s, gates), Load(d, s, hp)));
    const VF z = Sigmoid(d, hn::Add(Load(d, s, gates + gs), Load(d, s, hp + hs)));
    VF hh = Load(d, s, hp + 2 * hs);
    if (b_hn) hh = hn::Add(hh, Load(d, s, b_hn));
    const VF nn = hn::Tanh(d, hn::MulAdd(r, hh, Load(d, s, gates + 2 * gs)));
    const VF hpv = Load(d, s, h_prev);
    // (1 − z)·n + z·h = n + z·(h − n)
    Store(d, s, hn::MulAdd(z, hn::Sub(hpv, nn), nn), h);
    Store(d, s, r, gates);
    Store(d, s, z, gates + gs);
    Store(d, s, nn, gates + 2 * gs);
    Store(d, s, hh, gates + 3 * gs);
  });
}

// x·(1 − x), the derivative of σ at the value x = σ(a).
HWY_INLINE VF SigmoidSlope(DF d, VF x) { return hn::Mul(x, hn::Sub(hn::Set(d, 1.0f), x)); }

void LstmBackwardRow(const float* gates, int64_t gs, const float* c_now, const float* c_prev,
                     const float* dh, float* dc, float* da, int64_t das, int64_t n) {
  const DF d;
  const VF one = hn::Set(d, 1.0f);
  ForEachVector(n, [&](const Span& s) {
    const VF i = Load(d, s, gates), f = Load(d, s, gates + gs), g = Load(d, s, gates + 2 * gs),
             o = Load(d, s, gates + 3 * gs);
    const VF tc = hn::Tanh(d, Load(d, s, c_now));
    const VF dhv = Load(d, s, dh);
    // dc_t = dc + dh·o·(1 − tanh²c)
    const VF dct = hn::MulAdd(hn::Mul(dhv, o), hn::NegMulAdd(tc, tc, one), Load(d, s, dc));
    Store(d, s, hn::Mul(hn::Mul(dct, g), SigmoidSlope(d, i)), da);
    Store(d, s, hn::Mul(hn::Mul(dct, Load(d, s, c_prev)), SigmoidSlope(d, f)), da + das);
    Store(d, s, hn::Mul(hn::Mul(dct, i), hn::NegMulAdd(g, g, one)), da + 2 * das);
    Store(d, s, hn::Mul(hn::Mul(dhv, tc), SigmoidSlope(d, o)), da + 3 * das);
    Store(d, s, hn::Mul(dct, f), dc);
  });
}

void GruBackwardRow(const float* gates, int64_t gs, const float* h_prev, const float* dh,
                    float* dax, float* dah, int64_t das, float* direct, int64_t n) {
  const DF d;
  const VF one = hn::Set(d, 1.0f);
  ForEachVector(n, [&](const Span& s) {
    const VF r = Load(d, s, gates), z = Load(d, s, gates + gs), nn = Load(d, s, gates + 2 * gs),
             hh = Load(d, s, gates + 3 * gs);
    const VF dhv = Load(d, s, dh);
    const VF dan = hn::Mul(hn::Mul(dhv, hn::Sub(one, z)), hn::NegMulAdd(nn, nn, one));
    const VF dar = hn::Mul(hn::Mul(dan, hh), SigmoidSlope(d, r));
    const VF daz = hn::Mul(hn::Mul(dhv, hn::Sub(Load(d, s, h_prev), nn)), SigmoidSlope(d, z));
    Store(d, s, dar, dax);
    Store(d, s, dar, dah);
    Store(d, s, daz, dax + das);
    Store(d, s, daz, dah + das);
    Store(d, s, dan, dax + 2 * das);
    Store(d, s, hn::Mul(dan, r), dah + 2 * das);
    Store(d, s, hn::Mul(dhv, z), direct);
  });
}

// c[m][n0 + l] (+)= Σ_k a[m][k]·panel[k][l] for MR rows and one panel of kPanelWidth columns
// (stored only up to n_valid): MR·NV accumulators, MR broadcasts of a and NV loads per k, the panel
// read front to back.
template <int MR>
HWY_INLINE void PanelTile(const float* a, int64_t lda, const float* panel, int64_t K,
                          int64_t n_valid, float* c, int64_t ldc, bool accumulate) {
  const DF d;
  constexpr int64_t W = kPanelWidth;
  // Lanes are a compile-time constant on every fixed-width target, so the accumulators stay in
  // registers: NV = 1 (AVX-512), 2 (AVX2), 4 (SSE4), 16 (scalar).
  constexpr int64_t NL = static_cast<int64_t>(hn::MaxLanes(DF()));
  static_assert(W % NL == 0, "a panel is a whole number of vectors");
  constexpr int NV = static_cast<int>(W / NL);
  VF acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = hn::Zero(d);
  for (int64_t k = 0; k < K; ++k) {
    const float* row = panel + k * W;
    for (int r = 0; r < MR; ++r) {
      const VF x = hn::Set(d, a[r * lda + k]);
      for (int v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(x, hn::LoadU(d, row + v * NL), acc[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) {
      float* out = c + r * ldc + v * NL;
      const Span lanes{0, std::clamp<int64_t>(n_valid - v * NL, 0, NL)};
      if (lanes.n > 0)
        Store(d, lanes, accumulate ? hn::Add(acc[r][v], Load(d, lanes, out)) : acc[r][v], out);
    }
}

void PanelGemm(const float* a, int64_t lda, int64_t M, const float* panels, int64_t K, int64_t N,
               float* c, int64_t ldc, bool accumulate) {
  for (int64_t q = 0; q * kPanelWidth < N; ++q) {
    const float* panel = panels + q * K * kPanelWidth;
    const int64_t n0 = q * kPanelWidth, n_valid = std::min(kPanelWidth, N - n0);
    int64_t m = 0;
    for (; m + 4 <= M; m += 4)
      PanelTile<4>(a + m * lda, lda, panel, K, n_valid, c + m * ldc + n0, ldc, accumulate);
    const float* am = a + m * lda;
    float* cm = c + m * ldc + n0;
    switch (M - m) {
      case 3:
        PanelTile<3>(am, lda, panel, K, n_valid, cm, ldc, accumulate);
        break;
      case 2:
        PanelTile<2>(am, lda, panel, K, n_valid, cm, ldc, accumulate);
        break;
      case 1:
        PanelTile<1>(am, lda, panel, K, n_valid, cm, ldc, accumulate);
        break;
      default:
        break;
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace attn::internal::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace attn::internal::kernels {

HWY_EXPORT(LstmForwardRow);
HWY_EXPORT(GruForwardRow);
HWY_EXPORT(LstmBackwardRow);
HWY_EXPORT(GruBackwardRow);
HWY_EXPORT(PanelGemm);

void panel_gemm(const float* a, int64_t lda, int64_t M, const float* panels, int64_t K, int64_t N,
                float* c, int64_t ldc, bool accumulate) {
  HWY_DYNAMIC_DISPATCH(PanelGemm)(a, lda, M, panels, K, N, c, ldc, accumulate);
}

void lstm_forward_row(float* gates, int64_t gs, const float* hp, int64_t hs, float* c, float* h,
                      int64_t n) {
  HWY_DYNAMIC_DISPATCH(LstmForwardRow)(gates, gs, hp, hs, c, h, n);
}
void gru_forward_row(float* gates, int64_t gs, const float* hp, int64_t hs, const float* b_hn,
                     const float* h_prev, float* h, int64_t n) {
  HWY_DYNAMIC_DISPATCH(GruForwardRow)(gates, gs, hp, hs, b_hn, h_prev, h, n);
}
void lstm_backward_row(const float* gates, int64_t gs, const float* c_now, const float* c_prev,
                       const float* dh, float* dc, float* da, int64_t das, int64_t n) {
  HWY_DYNAMIC_DISPATCH(LstmBackwardRow)(gates, gs, c_now, c_prev, dh, dc, da, das, n);
}
void gru_backward_row(const float* gates, int64_t gs, const float* h_prev, const float* dh,
                      float* dax, float* dah, int64_t das, float* direct, int64_t n) {
  HWY_DYNAMIC_DISPATCH(GruBackwardRow)(gates, gs, h_prev, dh, dax, dah, das, direct, n);
}

}  // namespace attn::internal::kernels
#endif
