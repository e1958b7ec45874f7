// SPDX-License-Identifier: MIT
// The reference attention: the specification every fast kernel is tested against.
// Plain loops, double accumulation, the dense mask and the full T×S score matrix materialised.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attn/ops/attention.h"
#include "ops/internal/attention_checks.h"

namespace attn::ops::reference {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

template <typename T>
TensorD materialize(const AttentionMask& m, const BasicView<const T>& bias, int64_t B, int64_t NH,
                    int64_t T_, int64_t S) {
  TensorD dense(Shape{B, NH, T_, S});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h)
      for (int64_t t = 0; t < T_; ++t)
        for (int64_t s = 0; s < S; ++s) {
          double value = kNegInf;
          if (m.key_visible(b, t, s)) {
            value = 0.0;
            if (!m.alibi_slopes.empty())
              value -= static_cast<double>(m.alibi_slopes[static_cast<size_t>(h)]) *
                       static_cast<double>(std::abs(t + m.query_offset - m.key_offset - s));
            if (bias.defined())
              value += static_cast<double>(
                  bias(bias.dim(0) == 1 ? 0 : b, bias.dim(1) == 1 ? 0 : h, t, s));
          }
          dense(b, h, t, s) = value;
        }
  return dense;
}

// Probabilities of one (b, h) pair: P[t][s] = softmax_s(scale · q_t·k_s + mask[t][s]) over the
// keys t sees (visible[t][s]), exactly 0 for the others, whatever their q, k or bias hold. Rows
// with no visible key, or whose visible scores are all -inf, stay all zero and get lse = -inf. A
// NaN or +inf visible score makes the row NaN (as IEEE arithmetic and PyTorch do; docs/masks.md).
template <typename T>
void probabilities(const BasicView<const T>& q, const BasicView<const T>& k, const TensorD& dense,
                   const AttentionMask& mask, int64_t b, int64_t h, int64_t hk, double scale,
                   std::vector<double>& P, std::vector<double>& lse, std::vector<char>& visible) {
  const int64_t T_ = q.dim(2), S = k.dim(2), HS = q.dim(3);
  std::vector<double> score(static_cast<size_t>(S));
  for (int64_t t = 0; t < T_; ++t) {
    char* vis = &visible[static_cast<size_t>(t * S)];
    double row_max = kNegInf;
    bool has_nan = false;
    for (int64_t s = 0; s < S; ++s) {
      vis[s] = mask.key_visible(b, t, s) ? 1 : 0;
      double x = kNegInf;
      if (vis[s]) {
        double dot = 0.0;
        for (int64_t i = 0; i < HS; ++i)
          dot += static_cast<double>(q(b, h, t, i)) * static_cast<double>(k(b, hk, s, i));
        x = scale * dot + dense(b, h, t, s);
        has_nan = has_nan || std::isnan(x);
        row_max = std::max(row_max, x);
      }
      score[static_cast<size_t>(s)] = x;
    }
    if (has_nan) row_max = std::numeric_limits<double>::quiet_NaN();
    double* p_row = &P[static_cast<size_t>(t * S)];
    if (row_max == kNegInf) {  // fully masked: defined as zeros, never NaN
      std::fill(p_row, p_row + S, 0.0);
      lse[static_cast<size_t>(t)] = kNegInf;
      continue;
    }
    double sum = 0.0;
    for (int64_t s = 0; s < S; ++s)
      if (vis[s]) sum += std::exp(score[static_cast<size_t>(s)] - row_max);
    const double row_lse = row_max + std::log(sum);
    for (int64_t s = 0; s < S; ++s)
      p_row[s] = vis[s] ? std::exp(score[static_cast<size_t>(s)] - row_lse) : 0.0;
    lse[static_cast<size_t>(t)] = row_lse;
  }
}

template <typename T>
void forward_impl(BasicView<const T> q, BasicView<const T> k, BasicView<const T> v,
                  const AttentionMask& mask, BasicView<const T> bias, double scale,
                  BasicView<T> out, BasicView<T> lse, BasicView<T> probs) {
  const auto d = internal::check_attention_forward_args("attention_forward", q, k, v, mask, bias,
                                                        scale, out, lse, probs);
  const TensorD dense = materialize(mask, bias, d.B, d.NH, d.T, d.S);
  std::vector<double> P(static_cast<size_t>(d.T * d.S)), row_lse(static_cast<size_t>(d.T));
  std::vector<char> visible(static_cast<size_t>(d.T * d.S));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.NH; ++h) {
      const int64_t hk = h / d.group();
      probabilities(q, k, dense, mask, b, h, hk, scale, P, row_lse, visible);
      for (int64_t t = 0; t < d.T; ++t) {
        lse(b, h, t) = static_cast<T>(row_lse[static_cast<size_t>(t)]);
        for (int64_t j = 0; j < d.HSV; ++j) {
          double acc = 0.0;
          for (int64_t s = 0; s < d.S; ++s)
            if (visible[static_cast<size_t>(t * d.S + s)])
              acc += P[static_cast<size_t>(t * d.S + s)] * static_cast<double>(v(b, hk, s, j));
          out(b, h, t, j) = static_cast<T>(acc);
        }
        if (probs.defined())
          for (int64_t s = 0; s < d.S; ++s)
            probs(b, h, t, s) = static_cast<T>(P[static_cast<size_t>(t * d.S + s)]);
      }
    }
}

// Backward. The forward was
//   X = scale · Q Kᵀ + M,   P = softmax_rows(X),   O = P V.
// So, with dO given:
//   dV = Pᵀ dO                         (summed over the query heads that share the kv head)
//   dP = dO Vᵀ
//   dX = P ⊙ (dP − D),  D_t = Σ_s P_ts dP_ts = dO_t · O_t   (softmax Jacobian, row by row)
//   dQ = scale · dX K,  dK = scale · dXᵀ Q,  dBias = dX (summed over broadcast dimensions).
// Masked entries have P = 0, hence dX = 0: no gradient flows through them; fully masked rows give
// 0. Sums run over visible (t, s) pairs only, and an entry of weight exactly 0 gets dX = 0, so that
// a NaN never crosses from a query to a key it cannot see, or back (docs/masks.md).
template <typename T>
void backward_impl(BasicView<const T> q, BasicView<const T> k, BasicView<const T> v,
                   BasicView<const T> out, BasicView<const T> lse, BasicView<const T> dout,
                   const AttentionMask& mask, BasicView<const T> bias, double scale,
                   BasicView<T> dq, BasicView<T> dk, BasicView<T> dv, BasicView<T> dbias) {
  const auto d = internal::check_attention_backward_args(
      "attention_backward", q, k, v, out, lse, dout, mask, bias, scale, dq, dk, dv, dbias);
  const TensorD dense = materialize(mask, bias, d.B, d.NH, d.T, d.S);
  std::vector<double> P(static_cast<size_t>(d.T * d.S)), row_lse(static_cast<size_t>(d.T));
  std::vector<double> dX(static_cast<size_t>(d.T * d.S));
  std::vector<char> visible(static_cast<size_t>(d.T * d.S));
  auto sees = [&](int64_t t, int64_t s) { return visible[static_cast<size_t>(t * d.S + s)] != 0; };
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.NH; ++h) {
      const int64_t hk = h / d.group();
      probabilities(q, k, dense, mask, b, h, hk, scale, P, row_lse, visible);
      for (int64_t t = 0; t < d.T; ++t) {
        double D = 0.0;
        for (int64_t s = 0; s < d.S; ++s) {
          double dp = 0.0;
          if (sees(t, s))
            for (int64_t j = 0; j < d.HSV; ++j)
              dp += static_cast<double>(dout(b, h, t, j)) * static_cast<double>(v(b, hk, s, j));
          dX[static_cast<size_t>(t * d.S + s)] = dp;
          if (sees(t, s)) D += P[static_cast<size_t>(t * d.S + s)] * dp;
        }
        for (int64_t s = 0; s < d.S; ++s) {
          const size_t ts = static_cast<size_t>(t * d.S + s);
          dX[ts] = P[ts] == 0.0 ? 0.0 : P[ts] * (dX[ts] - D);
        }
      }
      for (int64_t t = 0; t < d.T; ++t)
        for (int64_t i = 0; i < d.HS; ++i) {
          double acc = 0.0;
          for (int64_t s = 0; s < d.S; ++s)
            if (sees(t, s))
              acc += dX[static_cast<size_t>(t * d.S + s)] * static_cast<double>(k(b, hk, s, i));
          dq(b, h, t, i) += static_cast<T>(scale * acc);
        }
      for (int64_t s = 0; s < d.S; ++s) {
        for (int64_t i = 0; i < d.HS; ++i) {
          double acc = 0.0;
          for (int64_t t = 0; t < d.T; ++t)
            if (sees(t, s))
              acc += dX[static_cast<size_t>(t * d.S + s)] * static_cast<double>(q(b, h, t, i));
          dk(b, hk, s, i) += static_cast<T>(scale * acc);
        }
        for (int64_t j = 0; j < d.HSV; ++j) {
          double acc = 0.0;
          for (int64_t t = 0; t < d.T; ++t)
            if (sees(t, s))
              acc += P[static_cast<size_t>(t * d.S + s)] * static_cast<double>(dout(b, h, t, j));
          dv(b, hk, s, j) += static_cast<T>(acc);
        }
      }
      if (dbias.defined()) {
        const int64_t bb = dbias.dim(0) == 1 ? 0 : b, hh = dbias.dim(1) == 1 ? 0 : h;
        for (int64_t t = 0; t < d.T; ++t)
          for (int64_t s = 0; s < d.S; ++s)
            dbias(bb, hh, t, s) += static_cast<T>(dX[static_cast<size_t>(t * d.S + s)]);
      }
    }
}

}  // namespace

void attention_forward(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                       const AttentionMask& mask, ConstTensorView bias, double scale,
                       TensorView out, TensorView lse, TensorView probs, const Context&) {
  forward_impl<float>(q, k, v, mask, bias, scale, out, lse, probs);
}
void attention_forward(ConstTensorViewD q, ConstTensorViewD k, ConstTensorViewD v,
                       const AttentionMask& mask, ConstTensorViewD bias, double scale,
                       TensorViewD out, TensorViewD lse, TensorViewD probs, const Context&) {
  forward_impl<double>(q, k, v, mask, bias, scale, out, lse, probs);
}

void attention_backward(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                        ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                        const AttentionMask& mask, ConstTensorView bias, double scale,
                        TensorView dq, TensorView dk, TensorView dv, TensorView dbias,
                        const Context&) {
  backward_impl<float>(q, k, v, out, lse, dout, mask, bias, scale, dq, dk, dv, dbias);
}
void attention_backward(ConstTensorViewD q, ConstTensorViewD k, ConstTensorViewD v,
                        ConstTensorViewD out, ConstTensorViewD lse, ConstTensorViewD dout,
                        const AttentionMask& mask, ConstTensorViewD bias, double scale,
                        TensorViewD dq, TensorViewD dk, TensorViewD dv, TensorViewD dbias,
                        const Context&) {
  backward_impl<double>(q, k, v, out, lse, dout, mask, bias, scale, dq, dk, dv, dbias);
}

BasicAttentionResult<float> attention(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                      const AttentionOptions& options, ConstTensorView bias,
                                      const Context& ctx) {
  return internal::attention_with_results<float>(
      "attention", q, k, v, options, bias, ctx,
      [](auto&&... a) { reference::attention_forward(a...); });
}
BasicAttentionResult<double> attention(ConstTensorViewD q, ConstTensorViewD k, ConstTensorViewD v,
                                       const AttentionOptions& options, ConstTensorViewD bias,
                                       const Context& ctx) {
  return internal::attention_with_results<double>(
      "attention", q, k, v, options, bias, ctx,
      [](auto&&... a) { reference::attention_forward(a...); });
}
BasicAttentionGrads<float> attention_grad(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                          ConstTensorView out, ConstTensorView lse,
                                          ConstTensorView dout, const AttentionOptions& options,
                                          ConstTensorView bias, const Context& ctx) {
  return internal::attention_grad_results<float>(
      "attention_grad", q, k, v, out, lse, dout, options, bias, ctx,
      [](auto&&... a) { reference::attention_backward(a...); });
}
BasicAttentionGrads<double> attention_grad(ConstTensorViewD q, ConstTensorViewD k,
                                           ConstTensorViewD v, ConstTensorViewD out,
                                           ConstTensorViewD lse, ConstTensorViewD dout,
                                           const AttentionOptions& options, ConstTensorViewD bias,
                                           const Context& ctx) {
  return internal::attention_grad_results<double>(
      "attention_grad", q, k, v, out, lse, dout, options, bias, ctx,
      [](auto&&... a) { reference::attention_backward(a...); });
}

namespace {
// The bf16 forms: checked with their own types (so the messages name them), then the double
// reference on the widened inputs, results rounded to float.
template <typename TQ, typename TKV>
BasicAttentionResult<float> attention_widened(BasicView<const TQ> q, BasicView<const TKV> k,
                                              BasicView<const TKV> v,
                                              const AttentionOptions& options, ConstTensorView bias,
                                              const Context& ctx) {
  internal::check_attention_inputs("attention", q, k, v, options.mask, bias,
                                   options.scale ? *options.scale : 0.0);
  const TensorD qd = TensorD::copy_of(q), kd = TensorD::copy_of(k), vd = TensorD::copy_of(v);
  const TensorD bd = bias.defined() ? TensorD::copy_of(bias) : TensorD();
  const auto r = attention(qd.view(), kd.view(), vd.view(), options, bd.view(), ctx);
  BasicAttentionResult<float> f;
  f.out = Tensor::copy_of(r.out.view());
  f.lse = Tensor::copy_of(r.lse.view());
  if (r.probs.defined()) f.probs = Tensor::copy_of(r.probs.view());
  return f;
}

template <typename TQ, typename TKV>
BasicAttentionGrads<float> attention_grad_widened(BasicView<const TQ> q, BasicView<const TKV> k,
                                                  BasicView<const TKV> v, ConstTensorView out,
                                                  ConstTensorView lse, ConstTensorView dout,
                                                  const AttentionOptions& options,
                                                  ConstTensorView bias, const Context& ctx) {
  internal::check_attention_inputs("attention_grad", q, k, v, options.mask, bias,
                                   options.scale ? *options.scale : 0.0);
  const TensorD qd = TensorD::copy_of(q), kd = TensorD::copy_of(k), vd = TensorD::copy_of(v);
  const TensorD od = TensorD::copy_of(out), ld = TensorD::copy_of(lse), gd = TensorD::copy_of(dout);
  const TensorD bd = bias.defined() ? TensorD::copy_of(bias) : TensorD();
  const auto r = attention_grad(qd.view(), kd.view(), vd.view(), od.view(), ld.view(), gd.view(),
                                options, bd.view(), ctx);
  BasicAttentionGrads<float> f;
  f.dq = Tensor::copy_of(r.dq.view());
  f.dk = Tensor::copy_of(r.dk.view());
  f.dv = Tensor::copy_of(r.dv.view());
  if (r.dbias.defined()) f.dbias = Tensor::copy_of(r.dbias.view());
  return f;
}
}  // namespace

BasicAttentionResult<float> attention(ConstTensorViewBF16 q, ConstTensorViewBF16 k,
                                      ConstTensorViewBF16 v, const AttentionOptions& options,
                                      ConstTensorView bias, const Context& ctx) {
  return attention_widened(q, k, v, options, bias, ctx);
}
BasicAttentionResult<float> attention(ConstTensorView q, ConstTensorViewBF16 k,
                                      ConstTensorViewBF16 v, const AttentionOptions& options,
                                      ConstTensorView bias, const Context& ctx) {
  return attention_widened(q, k, v, options, bias, ctx);
}
BasicAttentionGrads<float> attention_grad(ConstTensorViewBF16 q, ConstTensorViewBF16 k,
                                          ConstTensorViewBF16 v, ConstTensorView out,
                                          ConstTensorView lse, ConstTensorView dout,
                                          const AttentionOptions& options, ConstTensorView bias,
                                          const Context& ctx) {
  return attention_grad_widened(q, k, v, out, lse, dout, options, bias, ctx);
}
BasicAttentionGrads<float> attention_grad(ConstTensorView q, ConstTensorViewBF16 k,
                                          ConstTensorViewBF16 v, ConstTensorView out,
                                          ConstTensorView lse, ConstTensorView dout,
                                          const AttentionOptions& options, ConstTensorView bias,
                                          const Context& ctx) {
  return attention_grad_widened(q, k, v, out, lse, dout, options, bias, ctx);
}

namespace {
template <typename T>
TensorD materialize_checked(const AttentionMask& mask, const BasicView<const T>& bias, int64_t B,
                            int64_t NH, int64_t T_, int64_t S) {
  if (B < 0 || NH < 1 || T_ < 0 || S < 0)
    fail<ShapeError>("materialize_attention_mask", "invalid sizes (B, NH, T, S) = (", B, ", ", NH,
                     ", ", T_, ", ", S, ")");
  internal::check_attention_mask("materialize_attention_mask", mask, B, NH, S);
  if (bias.defined())
    internal::check_attention_bias("materialize_attention_mask", bias.shape(), B, NH, T_, S);
  return materialize(mask, bias, B, NH, T_, S);
}
}  // namespace

TensorD materialize_attention_mask(const AttentionMask& mask, int64_t B, int64_t NH, int64_t T_,
                                   int64_t S) {
  return materialize_checked(mask, ConstTensorViewD(), B, NH, T_, S);
}
TensorD materialize_attention_mask(const AttentionMask& mask, ConstTensorView bias, int64_t B,
                                   int64_t NH, int64_t T_, int64_t S) {
  return materialize_checked(mask, bias, B, NH, T_, S);
}
TensorD materialize_attention_mask(const AttentionMask& mask, ConstTensorViewD bias, int64_t B,
                                   int64_t NH, int64_t T_, int64_t S) {
  return materialize_checked(mask, bias, B, NH, T_, S);
}

}  // namespace attn::ops::reference
