// SPDX-License-Identifier: MIT
// Validation of attention arguments, shared by the reference and the fast kernels, so that both
// reject exactly the same inputs with the same messages.
#pragma once

#include "attn/ops/attention.h"
#include "ops/internal/checks.h"

namespace attn::internal {

// floor(a / b) for b > 0 (C++ division truncates toward zero, which is wrong for negative
// positions).
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Checks the mask against the batch size, heads and keys and throws ValueError/ShapeError naming
// `fn`.
void check_attention_mask(const char* fn, const ops::AttentionMask& mask, int64_t B, int64_t NH,
                          int64_t S);
// A bias must be (B or 1, NH or 1, T, S).
void check_attention_bias(const char* fn, const Shape& bias_shape, int64_t B, int64_t NH,
                          int64_t T_, int64_t S);

struct AttentionDims {
  int64_t B, NH, NH_kv, T, S, HS, HSV;
  int64_t group() const { return NH / NH_kv; }  // query heads per kv head
};

// q of element type TQ, k and v of TKV (float, double, or bf16 storage), bias of TB.
template <typename TQ, typename TKV, typename TB>
AttentionDims check_attention_inputs(const char* fn, const BasicView<const TQ>& q,
                                     const BasicView<const TKV>& k, const BasicView<const TKV>& v,
                                     const ops::AttentionMask& mask,
                                     const BasicView<const TB>& bias, double scale) {
  check_rank(fn, "q", q, 4);
  check_rank(fn, "k", k, 4);
  check_rank(fn, "v", v, 4);
  AttentionDims d{q.dim(0), q.dim(1), k.dim(1), q.dim(2), k.dim(2), q.dim(3), v.dim(3)};
  const std::string shapes =
      "q " + q.shape().str() + ", k " + k.shape().str() + ", v " + v.shape().str();
  if (k.dim(0) != d.B || v.dim(0) != d.B)
    fail<ShapeError>(fn, "q, k and v must have the same batch size (", shapes, ")");
  if (k.dim(3) != d.HS)
    fail<ShapeError>(fn, "k has head size ", k.dim(3), " but q has ", d.HS, " (", shapes, ")");
  if (v.dim(1) != d.NH_kv || v.dim(2) != d.S)
    fail<ShapeError>(fn, "v must have the same heads and length as k: (", d.B, ", ", d.NH_kv, ", ",
                     d.S, ", HSV) (", shapes, ")");
  if (d.NH_kv < 1 || d.NH % d.NH_kv != 0)
    fail<ShapeError>(fn, "q has ", d.NH, " heads, which is not a multiple of k's ", d.NH_kv,
                     " heads (", shapes, ")");
  check_finite(fn, "scale", scale);
  check_attention_mask(fn, mask, d.B, d.NH, d.S);
  if (bias.defined()) check_attention_bias(fn, bias.shape(), d.B, d.NH, d.T, d.S);
  return d;
}

template <typename TQ, typename TKV, typename T>
AttentionDims check_attention_forward_args(
    const char* fn, const BasicView<const TQ>& q, const BasicView<const TKV>& k,
    const BasicView<const TKV>& v, const ops::AttentionMask& mask, const BasicView<const T>& bias,
    double scale, const BasicView<T>& out, const BasicView<T>& lse, const BasicView<T>& probs) {
  const AttentionDims d = check_attention_inputs(fn, q, k, v, mask, bias, scale);
  check_shape(fn, "out", out, Shape{d.B, d.NH, d.T, d.HSV}, "(B, NH, T, HSV)");
  check_shape(fn, "lse", lse, Shape{d.B, d.NH, d.T}, "(B, NH, T)");
  if (probs.defined()) check_shape(fn, "probs", probs, Shape{d.B, d.NH, d.T, d.S}, "(B, NH, T, S)");
  check_output(fn, "out", out, q, k, v, bias, lse, probs);
  check_output(fn, "lse", lse, q, k, v, bias, probs);
  check_output(fn, "probs", probs, q, k, v, bias);
  return d;
}

template <typename TQ, typename TKV, typename T>
AttentionDims check_attention_backward_args(
    const char* fn, const BasicView<const TQ>& q, const BasicView<const TKV>& k,
    const BasicView<const TKV>& v, const BasicView<const T>& out, const BasicView<const T>& lse,
    const BasicView<const T>& dout, const ops::AttentionMask& mask, const BasicView<const T>& bias,
    double scale, const BasicView<T>& dq, const BasicView<T>& dk, const BasicView<T>& dv,
    const BasicView<T>& dbias) {
  const AttentionDims d = check_attention_inputs(fn, q, k, v, mask, bias, scale);
  check_shape(fn, "out", out, Shape{d.B, d.NH, d.T, d.HSV}, "(B, NH, T, HSV)");
  check_shape(fn, "lse", lse, Shape{d.B, d.NH, d.T}, "(B, NH, T)");
  check_shape(fn, "dout", dout, Shape{d.B, d.NH, d.T, d.HSV}, "(B, NH, T, HSV)");
  check_shape(fn, "dq", dq, q.shape(), "same as q");
  check_shape(fn, "dk", dk, k.shape(), "same as k");
  check_shape(fn, "dv", dv, v.shape(), "same as v");
  if (dbias.defined()) {
    if (!bias.defined()) fail<ValueError>(fn, "dbias was given but there is no bias");
    check_shape(fn, "dbias", dbias, bias.shape(), "same as bias");
  }
  check_output(fn, "dq", dq, q, k, v, out, lse, dout, bias, dk, dv, dbias);
  check_output(fn, "dk", dk, q, k, v, out, lse, dout, bias, dv, dbias);
  check_output(fn, "dv", dv, q, k, v, out, lse, dout, bias, dbias);
  check_output(fn, "dbias", dbias, q, k, v, out, lse, dout, bias);
  return d;
}

// The returning forms (ops::attention, reference::attention) over an out-parameter forward `run`:
// validate, resolve the scale, allocate the outputs, run.
template <typename T, typename TQ, typename TKV, typename Run>
ops::BasicAttentionResult<T> attention_with_results(const char* fn, const BasicView<const TQ>& q,
                                                    const BasicView<const TKV>& k,
                                                    const BasicView<const TKV>& v,
                                                    const ops::AttentionOptions& options,
                                                    const BasicView<const T>& bias,
                                                    const Context& ctx, Run run) {
  const double scale = options.scale ? *options.scale : 0.0;
  const AttentionDims d = check_attention_inputs(fn, q, k, v, options.mask, bias, scale);
  ops::BasicAttentionResult<T> r;
  r.out = BasicTensor<T>(Shape{d.B, d.NH, d.T, d.HSV});
  r.lse = BasicTensor<T>(Shape{d.B, d.NH, d.T});
  if (options.return_probs) r.probs = BasicTensor<T>(Shape{d.B, d.NH, d.T, d.S});
  run(q, k, v, options.mask, bias, options.scale ? scale : ops::default_attention_scale(d.HS),
      r.out.view(), r.lse.view(), r.probs.view(), ctx);
  return r;
}

template <typename T, typename TQ, typename TKV, typename Run>
ops::BasicAttentionGrads<T> attention_grad_results(
    const char* fn, const BasicView<const TQ>& q, const BasicView<const TKV>& k,
    const BasicView<const TKV>& v, const BasicView<const T>& out, const BasicView<const T>& lse,
    const BasicView<const T>& dout, const ops::AttentionOptions& options,
    const BasicView<const T>& bias, const Context& ctx, Run run) {
  const double scale = options.scale ? *options.scale : 0.0;
  const AttentionDims d = check_attention_inputs(fn, q, k, v, options.mask, bias, scale);
  ops::BasicAttentionGrads<T> g;
  g.dq = BasicTensor<T>(q.shape());  // gradients in T, whatever the inputs' storage
  g.dk = BasicTensor<T>(k.shape());
  g.dv = BasicTensor<T>(v.shape());
  if (bias.defined()) g.dbias = BasicTensor<T>(bias.shape());
  run(q, k, v, out, lse, dout, options.mask, bias,
      options.scale ? scale : ops::default_attention_scale(d.HS), g.dq.view(), g.dk.view(),
      g.dv.view(), g.dbias.view(), ctx);
  return g;
}

}  // namespace attn::internal
