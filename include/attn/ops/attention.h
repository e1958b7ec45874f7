// SPDX-License-Identifier: MIT
// Scaled dot-product attention: out = softmax(scale * q kᵀ + alibi + bias, masked) v.
// The mask is a set of parameters, never a dense boolean tensor, so fast kernels can skip masked work.
// This header holds the mask, its semantics and the reference implementation (the specification).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::ops {

// Which keys a query may see. Every field is optional and they combine with AND; the defaults see all.
// Positions: query t sits at position p = t + query_offset on the key axis (query_offset = 0 is
// PyTorch's top-left alignment; query_offset = S - T is FlashAttention's bottom-right alignment, the
// one a decoder with a KV cache wants). Key s of batch b is visible to query t iff all of:
//   causal:           s <= p
//   window_left  >= 0: s >= p - window_left            (truncated attention: t sees t-left … t+right)
//   window_right >= 0: s <= p + window_right           (-1 means unbounded on that side)
//   dilation     >  1: (p - s) mod dilation == 0       (interval sampling; 1 means every key)
//   chunk_size   >  0: chunk(s) <= chunk(p) and, if num_left_chunks >= 0,
//                      chunk(s) >= chunk(p) - num_left_chunks, with chunk(x) = floor(x / chunk_size)
//                      (WeNet's subsequent_chunk_mask: full attention inside a chunk, L chunks back)
//   key_lengths:       s < key_lengths[b]              (padding; one length per batch entry)
// Visible scores get  - alibi_slopes[h] * |p - s|  (ALiBi, symmetric as in ggml) and + bias[b, h, t, s]
// (broadcast over size-1 batch and head dimensions). A bias entry of -inf masks that key too.
// A query that sees no key has output 0 and lse = -inf (never NaN); its gradients are 0.
template <typename T>
struct BasicAttentionMask {
  bool causal = false;
  int64_t query_offset = 0;
  int64_t window_left = -1;
  int64_t window_right = -1;
  int64_t dilation = 1;
  int64_t chunk_size = 0;
  int64_t num_left_chunks = -1;
  std::vector<int64_t> key_lengths;   // empty, or B entries in [0, S]
  std::vector<float> alibi_slopes;    // empty, or NH finite entries
  BasicView<const T> bias;            // undefined, or (B or 1, NH or 1, T, S)

  bool has_structure() const {
    return causal || window_left >= 0 || window_right >= 0 || dilation > 1 || chunk_size > 0 ||
           !key_lengths.empty();
  }
};
using AttentionMask = BasicAttentionMask<float>;
using AttentionMaskD = BasicAttentionMask<double>;

// floor(a / b) for b > 0 (C++ division truncates toward zero, which is wrong for negative positions).
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The structural part of the mask (everything but the bias) for one (batch, query, key) triple.
// This is the single definition of mask semantics that every kernel and test refers to.
template <typename T>
bool attention_key_visible(const BasicAttentionMask<T>& m, int64_t b, int64_t t, int64_t s) {
  const int64_t p = t + m.query_offset;
  if (m.causal && s > p) return false;
  if (m.window_left >= 0 && s < p - m.window_left) return false;
  if (m.window_right >= 0 && s > p + m.window_right) return false;
  if (m.dilation > 1 && (p - s) % m.dilation != 0) return false;
  if (m.chunk_size > 0) {
    const int64_t cs = floor_div(s, m.chunk_size), cp = floor_div(p, m.chunk_size);
    if (cs > cp) return false;
    if (m.num_left_chunks >= 0 && cs < cp - m.num_left_chunks) return false;
  }
  if (!m.key_lengths.empty() && s >= m.key_lengths[static_cast<size_t>(b)]) return false;
  return true;
}

// The keys the structural mask leaves query t of batch b, ignoring dilation: the interval [lo, hi]
// (empty when lo > hi). Causal, window, chunk and key-length rules each bound it on one or both sides;
// dilation then keeps the keys of that interval with (p - s) mod dilation == 0. Kernels use it to skip
// key blocks; benchmarks use it to count unmasked work.
struct KeyInterval {
  int64_t lo, hi;
};
template <typename T>
KeyInterval attention_key_interval(const BasicAttentionMask<T>& m, int64_t b, int64_t t, int64_t S) {
  const int64_t p = t + m.query_offset;
  int64_t lo = 0, hi = S - 1;
  if (m.causal) hi = std::min(hi, p);
  if (m.window_left >= 0) lo = std::max(lo, p - m.window_left);
  if (m.window_right >= 0) hi = std::min(hi, p + m.window_right);
  if (m.chunk_size > 0) {
    const int64_t c = floor_div(p, m.chunk_size);
    hi = std::min(hi, (c + 1) * m.chunk_size - 1);
    if (m.num_left_chunks >= 0) lo = std::max(lo, (c - m.num_left_chunks) * m.chunk_size);
  }
  if (!m.key_lengths.empty()) hi = std::min(hi, m.key_lengths[static_cast<size_t>(b)] - 1);
  return {lo, hi};
}

// ALiBi slopes for NH heads (Press et al., 2022): 2^(-8/n · (h+1)) for n = NH a power of two; otherwise
// the slopes of the nearest lower power of two followed by every other slope of twice that count, as in
// the paper's reference code.
std::vector<float> alibi_slopes(int64_t num_heads);

// The usual softmax temperature: 1 / sqrt(HS).
double default_attention_scale(int64_t head_size);

// Checks the mask against the shapes (B, NH, T, S) and throws ValueError/ShapeError naming `fn`.
template <typename T>
void check_attention_mask(const char* fn, const BasicAttentionMask<T>& mask, int64_t B, int64_t NH, int64_t T_,
                          int64_t S);

// The fused kernel (src/ops/attention.cc): same arguments, shapes and semantics as the reference below,
// float32 only. Tiled FlashAttention-2 with an online softmax: the T×S score matrix is never stored,
// extra memory is O(block · HS) per thread, masked key blocks are skipped (a window of ±w costs
// O(T·w·HS)), GQA reads shared kv heads in place. probs, when given, is recomputed block by block from
// lse after the forward. Results are bitwise identical for any ctx.num_threads(). Inputs whose last
// dimension is not unit-stride are copied first.
void attention_forward(ConstTensorView q, ConstTensorView k, ConstTensorView v, const AttentionMask& mask,
                       double scale, TensorView out, TensorView lse, TensorView probs, const Context& ctx);
// dq, dk, dv (and dbias) are ACCUMULATED, as in the reference.
void attention_backward(ConstTensorView q, ConstTensorView k, ConstTensorView v, ConstTensorView out,
                        ConstTensorView lse, ConstTensorView dout, const AttentionMask& mask, double scale,
                        TensorView dq, TensorView dk, TensorView dv, TensorView dbias, const Context& ctx);

namespace reference {

// The specification: plain loops, double accumulation, everything materialised (dense mask, full T×S
// score and probability matrices). Single-threaded on purpose. Overloads for float and double data.
//
// q:     (B, NH, T, HS)       queries
// k:     (B, NH_kv, S, HS)    keys; NH must be a multiple of NH_kv (GQA/MQA: head h reads kv head
//                             h / (NH / NH_kv))
// v:     (B, NH_kv, S, HSV)   values (HSV may differ from HS)
// mask:  see BasicAttentionMask
// scale: multiplies q·k (default_attention_scale(HS) for the usual 1/sqrt(HS)); must be finite
// out:   (B, NH, T, HSV)      overwritten
// lse:   (B, NH, T)           overwritten: log Σ_s exp(score[t, s]) over visible keys; -inf if none
// probs: (B, NH, T, S)        overwritten if defined (pass {} to skip): the softmax, 0 where masked
// Every view may be strided; outputs must not overlap inputs or each other.
void attention_forward(ConstTensorView q, ConstTensorView k, ConstTensorView v, const AttentionMask& mask,
                       double scale, TensorView out, TensorView lse, TensorView probs, const Context& ctx);
void attention_forward(ConstTensorViewD q, ConstTensorViewD k, ConstTensorViewD v, const AttentionMaskD& mask,
                       double scale, TensorViewD out, TensorViewD lse, TensorViewD probs, const Context& ctx);

// Gradients of attention_forward. out and lse are the forward's outputs (shape-checked; the reference
// recomputes everything from q, k, v so that it does not trust them).
// dout:  (B, NH, T, HSV)
// dq:    (B, NH, T, HS)       ACCUMULATED (+=)
// dk:    (B, NH_kv, S, HS)    ACCUMULATED; summed over the NH / NH_kv query heads sharing a kv head
// dv:    (B, NH_kv, S, HSV)   ACCUMULATED; likewise
// dbias: shape of mask.bias   ACCUMULATED if defined; summed over broadcast dimensions
void attention_backward(ConstTensorView q, ConstTensorView k, ConstTensorView v, ConstTensorView out,
                        ConstTensorView lse, ConstTensorView dout, const AttentionMask& mask, double scale,
                        TensorView dq, TensorView dk, TensorView dv, TensorView dbias, const Context& ctx);
void attention_backward(ConstTensorViewD q, ConstTensorViewD k, ConstTensorViewD v, ConstTensorViewD out,
                        ConstTensorViewD lse, ConstTensorViewD dout, const AttentionMaskD& mask, double scale,
                        TensorViewD dq, TensorViewD dk, TensorViewD dv, TensorViewD dbias, const Context& ctx);

// The mask as a dense additive tensor (B, NH, T, S): 0 or -inf for the structure, plus ALiBi and bias.
// What xFormers calls materialize(): for tests and debugging, O(B·NH·T·S) memory.
TensorD materialize_attention_mask(const AttentionMask& mask, int64_t B, int64_t NH, int64_t T_, int64_t S);
TensorD materialize_attention_mask(const AttentionMaskD& mask, int64_t B, int64_t NH, int64_t T_, int64_t S);

}  // namespace reference
}  // namespace attn::ops
