// SPDX-License-Identifier: MIT
// The row and element ops registered with the op harness (testing/op_case.h): linear, layer_norm,
// softmax, relu and gelu, each with its tolerances derived from a float32 error model. Attention
// registers in test_attention.cc (its spec depends on the mask).
#pragma once

#include <cmath>

#include "testing/op_case.h"

namespace attn::testing {

// Output gradients in the harness are N(0, 1) rounded to float: |G| <= 5 for every size used here.
inline constexpr double kMaxGrad = 5.0;

inline double max_abs_of(const TensorD& t) { return t.defined() ? max_abs(t.view()) : 0.0; }

// Linear: in = {x (N, IN), w (OUT, IN), bias (OUT) or undefined}; out = {y (N, OUT)}.
// A K-term float dot product errs by at most K·eps·Σ|terms| (summation bound), so each tolerance is
// K·eps times the largest term, with K the reduced length.
inline OpSpec linear_spec() {
  OpSpec s;
  s.name = "linear";
  s.forward = [](const OpSpec::Views& in, const Context& ctx) {
    std::vector<Tensor> out;
    out.emplace_back(Shape{in[0].dim(0), in[1].dim(0)});
    ops::linear_forward(in[0], in[1], in[2], out[0], ctx);
    return out;
  };
  s.reference = [](const OpSpec::ViewsD& in, const Context& ctx) {
    std::vector<TensorD> out;
    out.emplace_back(Shape{in[0].dim(0), in[1].dim(0)});
    ops::reference::linear_forward(in[0], in[1], in[2], out[0], ctx);
    return out;
  };
  s.backward = [](const OpSpec::Views& in, const OpSpec::Views&, const OpSpec::Views& g,
                  const Context& ctx) {
    auto d = zeros_like<float>({in[0], in[1], in[2]});
    ops::linear_backward(in[0], in[1], g[0], d[0], d[1], d[2], ctx);
    return d;
  };
  s.reference_backward = [](const OpSpec::ViewsD& in, const OpSpec::ViewsD&,
                            const OpSpec::ViewsD& g, const Context& ctx) {
    auto d = zeros_like<double>({in[0], in[1], in[2]});
    ops::reference::linear_backward(in[0], in[1], g[0], d[0], d[1], d[2], ctx);
    return d;
  };
  s.differentiable_outputs = {true};
  s.forward_tolerance = [](const OpCase& c, size_t, const TensorD&) {
    const double K = static_cast<double>(c.inputs[0].dim(1)) + 1.0;
    return 2 * K * kEpsF32 *
               (max_abs_of(c.inputs[0]) * max_abs_of(c.inputs[1]) + max_abs_of(c.inputs[2])) +
           1e-30;
  };
  s.backward_tolerance = [](const OpCase& c, size_t i, const TensorD&) {
    const double N = static_cast<double>(c.inputs[0].dim(0)),
                 OUT = static_cast<double>(c.inputs[1].dim(0));
    const double xm = max_abs_of(c.inputs[0]), wm = max_abs_of(c.inputs[1]);
    const double K = i == 0 ? OUT : N;  // dx reduces over OUT, dw and dbias over N
    const double term = i == 0 ? wm : i == 1 ? xm : 1.0;
    return 2 * (K + 1) * kEpsF32 * kMaxGrad * term + 1e-30;
  };
  return s;
}

// LayerNorm (eps 1e-5): in = {x (..., C), weight (C) or undefined, bias (C) or undefined};
// out = {y, mean, rstd}. The fast path sums each row in double, so mean and rstd are float
// roundings of exact values (a few eps relative); y = (x − μ)·σ⁻¹·w + b then adds a few float
// roundings of terms up to |xhat|·|w| + |b| with |xhat| <= sqrt(C). Backward: dx is σ⁻¹ times a
// C-term combination of such terms; dweight and dbias sum R rows of products in double, each
// product rounded once.
inline constexpr double kLayerNormEps = 1e-5;
inline OpSpec layer_norm_spec() {
  OpSpec s;
  s.name = "layer_norm";
  auto stats_shape = [](const auto& x) {
    return Shape(std::span<const int64_t>(x.shape().begin(), static_cast<size_t>(x.rank() - 1)));
  };
  s.forward = [=](const OpSpec::Views& in, const Context& ctx) {
    std::vector<Tensor> out;
    out.emplace_back(in[0].shape());
    out.emplace_back(stats_shape(in[0]));
    out.emplace_back(stats_shape(in[0]));
    ops::layer_norm_forward(in[0], in[1], in[2], kLayerNormEps, out[0], out[1], out[2], ctx);
    return out;
  };
  s.reference = [=](const OpSpec::ViewsD& in, const Context& ctx) {
    std::vector<TensorD> out;
    out.emplace_back(in[0].shape());
    out.emplace_back(stats_shape(in[0]));
    out.emplace_back(stats_shape(in[0]));
    ops::reference::layer_norm_forward(in[0], in[1], in[2], kLayerNormEps, out[0], out[1], out[2],
                                       ctx);
    return out;
  };
  s.backward = [](const OpSpec::Views& in, const OpSpec::Views& out, const OpSpec::Views& g,
                  const Context& ctx) {
    auto d = zeros_like<float>({in[0], in[1], in[2]});
    ops::layer_norm_backward(in[0], in[1], out[1], out[2], g[0], d[0], d[1], d[2], ctx);
    return d;
  };
  s.reference_backward = [](const OpSpec::ViewsD& in, const OpSpec::ViewsD& out,
                            const OpSpec::ViewsD& g, const Context& ctx) {
    auto d = zeros_like<double>({in[0], in[1], in[2]});
    ops::reference::layer_norm_backward(in[0], in[1], out[1], out[2], g[0], d[0], d[1], d[2], ctx);
    return d;
  };
  s.differentiable_outputs = {true, false, false};
  // The largest rstd of the case (small variance rows amplify every error by it).
  auto max_rstd = [=](const OpCase& c) {
    Context ctx;
    return max_abs_of(
        s.reference({c.inputs[0].view(), c.inputs[1].view(), c.inputs[2].view()}, ctx)[2]);
  };
  s.forward_tolerance = [=](const OpCase& c, size_t i, const TensorD&) {
    const double C = static_cast<double>(c.inputs[0].dim(-1)), x = max_abs_of(c.inputs[0]);
    const double w = c.inputs[1].defined() ? max_abs_of(c.inputs[1]) : 1.0,
                 b = max_abs_of(c.inputs[2]);
    if (i == 1) return 2 * kEpsF32 * x;            // mean
    if (i == 2) return 4 * kEpsF32 * max_rstd(c);  // rstd
    return 8 * kEpsF32 * (std::sqrt(C) * w + b) + 4 * kEpsF32 * x * max_rstd(c) * w;
  };
  s.backward_tolerance = [=](const OpCase& c, size_t i, const TensorD&) {
    const double C = static_cast<double>(c.inputs[0].dim(-1));
    const double R = static_cast<double>(c.inputs[0].numel()) / std::max(C, 1.0);
    const double w = c.inputs[1].defined() ? max_abs_of(c.inputs[1]) : 1.0;
    const double xhat = std::sqrt(C);
    if (i == 0) return 8 * (C + 2) * kEpsF32 * max_rstd(c) * kMaxGrad * w * (1 + xhat);
    return 4 * kEpsF32 * R * kMaxGrad * (1 + xhat) *
           (1 + 8 * kEpsF32 * max_rstd(c) * max_abs_of(c.inputs[0]));
  };
  return s;
}

// Softmax over the last dimension: in = {x}; out = {y}. exp of a float argument x − max errs
// relatively by eps·|x − max|, and the D-term float sum by D·eps: |δy| <= 4·eps·(2·max|x| + D)
// since y <= 1. Backward dx = y ⊙ (g − ⟨g, y⟩): the same relative error on y, times |g − ⟨g, y⟩| <=
// 2·kMaxGrad.
inline OpSpec softmax_spec() {
  OpSpec s;
  s.name = "softmax";
  s.forward = [](const OpSpec::Views& in, const Context& ctx) {
    std::vector<Tensor> out;
    out.emplace_back(in[0].shape());
    ops::softmax_forward(in[0], out[0], ctx);
    return out;
  };
  s.reference = [](const OpSpec::ViewsD& in, const Context& ctx) {
    std::vector<TensorD> out;
    out.emplace_back(in[0].shape());
    ops::reference::softmax_forward(in[0], out[0], ctx);
    return out;
  };
  s.backward = [](const OpSpec::Views& in, const OpSpec::Views& out, const OpSpec::Views& g,
                  const Context& ctx) {
    std::vector<Tensor> d;
    d.emplace_back(in[0].shape());
    ops::softmax_backward(out[0], g[0], d[0], ctx);
    return d;
  };
  s.reference_backward = [](const OpSpec::ViewsD& in, const OpSpec::ViewsD& out,
                            const OpSpec::ViewsD& g, const Context& ctx) {
    std::vector<TensorD> d;
    d.emplace_back(in[0].shape());
    ops::reference::softmax_backward(out[0], g[0], d[0], ctx);
    return d;
  };
  s.differentiable_outputs = {true};
  auto bound = [](const OpCase& c) {
    double x = 0.0;  // largest finite |x|
    for (double v : c.inputs[0].values())
      if (std::isfinite(v)) x = std::max(x, std::abs(v));
    return 4 * kEpsF32 * (2 * x + static_cast<double>(c.inputs[0].dim(-1)));
  };
  s.forward_tolerance = [=](const OpCase& c, size_t, const TensorD&) { return bound(c); };
  s.backward_tolerance = [=](const OpCase& c, size_t, const TensorD&) {
    return 2 * kMaxGrad * 2 * bound(c);
  };
  return s;
}

// ReLU / GELU: in = {x}; out = {y}. ReLU is exact. GELU evaluates erf and exp in float: a few eps
// relative to |x| (the erf argument is rounded once, and Φ'·x is bounded by 0.25·|x|).
inline OpSpec activation_spec(bool gelu) {
  OpSpec s;
  s.name = gelu ? "gelu" : "relu";
  s.forward = [gelu](const OpSpec::Views& in, const Context& ctx) {
    std::vector<Tensor> out;
    out.emplace_back(in[0].shape());
    gelu ? ops::gelu_forward(in[0], out[0], ctx) : ops::relu_forward(in[0], out[0], ctx);
    return out;
  };
  s.reference = [gelu](const OpSpec::ViewsD& in, const Context& ctx) {
    std::vector<TensorD> out;
    out.emplace_back(in[0].shape());
    gelu ? ops::reference::gelu_forward(in[0], out[0], ctx)
         : ops::reference::relu_forward(in[0], out[0], ctx);
    return out;
  };
  s.backward = [gelu](const OpSpec::Views& in, const OpSpec::Views&, const OpSpec::Views& g,
                      const Context& ctx) {
    std::vector<Tensor> d;
    d.emplace_back(in[0].shape());
    gelu ? ops::gelu_backward(in[0], g[0], d[0], ctx) : ops::relu_backward(in[0], g[0], d[0], ctx);
    return d;
  };
  s.reference_backward = [gelu](const OpSpec::ViewsD& in, const OpSpec::ViewsD&,
                                const OpSpec::ViewsD& g, const Context& ctx) {
    std::vector<TensorD> d;
    d.emplace_back(in[0].shape());
    gelu ? ops::reference::gelu_backward(in[0], g[0], d[0], ctx)
         : ops::reference::relu_backward(in[0], g[0], d[0], ctx);
    return d;
  };
  s.differentiable_outputs = {true};
  s.forward_tolerance = [gelu](const OpCase& c, size_t, const TensorD&) {
    return gelu ? 4 * kEpsF32 * (1 + max_abs_of(c.inputs[0])) : 0.0;
  };
  s.backward_tolerance = [gelu](const OpCase& c, size_t, const TensorD&) {
    return gelu ? 8 * kEpsF32 * kMaxGrad * (1 + max_abs_of(c.inputs[0])) : 0.0;
  };
  return s;
}

}  // namespace attn::testing
