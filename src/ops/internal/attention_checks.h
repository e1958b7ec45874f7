// SPDX-License-Identifier: MIT
// Validation of attention arguments, shared by the reference and the fast kernels, so that both reject
// exactly the same inputs with the same messages.
#pragma once

#include "attn/ops/attention.h"
#include "ops/internal/checks.h"

namespace attn::internal {

struct AttentionDims {
  int64_t B, NH, NH_kv, T, S, HS, HSV;
  int64_t group() const { return NH / NH_kv; }  // query heads per kv head
};

template <typename T>
AttentionDims check_attention_inputs(const char* fn, const BasicView<const T>& q, const BasicView<const T>& k,
                                     const BasicView<const T>& v, const ops::BasicAttentionMask<T>& mask,
                                     double scale) {
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
    fail<ShapeError>(fn, "v must have the same heads and length as k: (", d.B, ", ", d.NH_kv, ", ", d.S,
                     ", HSV) (", shapes, ")");
  if (d.NH_kv < 1 || d.NH % d.NH_kv != 0)
    fail<ShapeError>(fn, "q has ", d.NH, " heads, which is not a multiple of k's ", d.NH_kv, " heads (", shapes,
                     ")");
  check_finite(fn, "scale", scale);
  ops::check_attention_mask(fn, mask, d.B, d.NH, d.T, d.S);
  return d;
}

template <typename T>
AttentionDims check_attention_forward_args(const char* fn, const BasicView<const T>& q,
                                           const BasicView<const T>& k, const BasicView<const T>& v,
                                           const ops::BasicAttentionMask<T>& mask, double scale,
                                           const BasicView<T>& out, const BasicView<T>& lse,
                                           const BasicView<T>& probs) {
  const AttentionDims d = check_attention_inputs(fn, q, k, v, mask, scale);
  check_shape(fn, "out", out, Shape{d.B, d.NH, d.T, d.HSV}, "(B, NH, T, HSV)");
  check_shape(fn, "lse", lse, Shape{d.B, d.NH, d.T}, "(B, NH, T)");
  if (probs.defined()) check_shape(fn, "probs", probs, Shape{d.B, d.NH, d.T, d.S}, "(B, NH, T, S)");
  check_output(fn, "out", out, q, k, v, mask.bias, lse, probs);
  check_output(fn, "lse", lse, q, k, v, mask.bias, probs);
  check_output(fn, "probs", probs, q, k, v, mask.bias);
  return d;
}

template <typename T>
AttentionDims check_attention_backward_args(const char* fn, const BasicView<const T>& q,
                                            const BasicView<const T>& k, const BasicView<const T>& v,
                                            const BasicView<const T>& out, const BasicView<const T>& lse,
                                            const BasicView<const T>& dout, const ops::BasicAttentionMask<T>& mask,
                                            double scale, const BasicView<T>& dq, const BasicView<T>& dk,
                                            const BasicView<T>& dv, const BasicView<T>& dbias) {
  const AttentionDims d = check_attention_inputs(fn, q, k, v, mask, scale);
  check_shape(fn, "out", out, Shape{d.B, d.NH, d.T, d.HSV}, "(B, NH, T, HSV)");
  check_shape(fn, "lse", lse, Shape{d.B, d.NH, d.T}, "(B, NH, T)");
  check_shape(fn, "dout", dout, Shape{d.B, d.NH, d.T, d.HSV}, "(B, NH, T, HSV)");
  check_shape(fn, "dq", dq, q.shape(), "same as q");
  check_shape(fn, "dk", dk, k.shape(), "same as k");
  check_shape(fn, "dv", dv, v.shape(), "same as v");
  if (dbias.defined()) {
    if (!mask.bias.defined()) fail<ValueError>(fn, "dbias was given but the mask has no bias");
    check_shape(fn, "dbias", dbias, mask.bias.shape(), "same as mask.bias");
  }
  check_output(fn, "dq", dq, q, k, v, out, lse, dout, mask.bias, dk, dv, dbias);
  check_output(fn, "dk", dk, q, k, v, out, lse, dout, mask.bias, dv, dbias);
  check_output(fn, "dv", dv, q, k, v, out, lse, dout, mask.bias, dbias);
  check_output(fn, "dbias", dbias, q, k, v, out, lse, dout, mask.bias);
  return d;
}

}  // namespace attn::internal
