// SPDX-License-Identifier: MIT
// Scaled dot-product attention: out = softmax(scale * q kᵀ + alibi + bias, masked) v.
// The mask is a set of parameters, never a dense boolean tensor, so fast kernels can skip masked
// work. This header holds the mask, its semantics, the fused kernel and the reference (the
// specification).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::ops {

// Which keys a query may see: a plain value (no tensors inside, copy it freely). Every field is
// optional and they combine with AND; the defaults see all. Positions: query t sits at position p =
// t + query_offset on the key axis (query_offset = 0 is PyTorch's top-left alignment; query_offset
// = S - T is FlashAttention's bottom-right alignment, the one a decoder with a KV cache wants), and
// key s at position k = s + key_offset (0 unless the keys are one block of a longer sequence, as in
// sequence-parallel attention: then the rules below see global positions). Key s of batch b is
// visible to query t iff all of:
//   causal:            k <= p
//   window_left  >= 0: k >= p - window_left   (truncated attention: t sees t-left … t+right;
//   window_right >= 0: k <= p + window_right   -1 means unbounded on that side)
//   dilation     >  1: (p - k) mod dilation == 0       (interval sampling; 1 means every key)
//   chunk_size   >  0: chunk(k) <= chunk(p) and, if num_left_chunks >= 0,
//                      chunk(k) >= chunk(p) - num_left_chunks, with chunk(x) = floor(x /
//                      chunk_size) (WeNet's subsequent_chunk_mask: full attention inside a chunk, L
//                      chunks back)
//   key_lengths:       s < key_lengths[b]   (padding, on the local index s; one length per batch)
// Visible scores get  - alibi_slopes[h] * |p - k|  (ALiBi, symmetric as in ggml). A dense additive
// bias (PyTorch's float attn_mask) is a separate argument of the attention calls, never part of the
// mask. A query that sees no key has output 0 and lse = -inf (never NaN); its gradients are 0.
struct AttentionMask {
  bool causal = false;
  int64_t query_offset = 0;
  int64_t key_offset = 0;
  int64_t window_left = -1;
  int64_t window_right = -1;
  int64_t dilation = 1;
  int64_t chunk_size = 0;
  int64_t num_left_chunks = -1;
  std::vector<int64_t> key_lengths;  // empty, or B entries in [0, S]
  std::vector<float> alibi_slopes;   // empty, or NH finite entries

  // True if some key may be hidden by the structure (causal, window, dilation, chunk, key lengths).
  bool has_structure() const {
    return causal || window_left >= 0 || window_right >= 0 || dilation > 1 || chunk_size > 0 ||
           !key_lengths.empty();
  }
  // The rule above for one (batch, query, key) triple: the single definition of mask semantics that
  // every kernel and test refers to. b must index key_lengths when it is set.
  bool key_visible(int64_t b, int64_t t, int64_t s) const;
  // The keys the rule leaves query t of batch b, ignoring dilation: the interval [lo, hi] of local
  // indices in [0, S) (empty when lo > hi). Dilation then keeps the keys of it with (p - s) mod dilation == 0.
  // Kernels use it to skip key blocks; benchmarks to count unmasked work.
  struct Interval {
    int64_t lo, hi;
  };
  Interval key_interval(int64_t b, int64_t t, int64_t S) const;
};

// ALiBi slopes for NH heads (Press et al., 2022): 2^(-8/n · (h+1)) for n = NH a power of two;
// otherwise the slopes of the nearest lower power of two followed by every other slope of twice
// that count, as in the paper's reference code.
std::vector<float> alibi_slopes(int64_t num_heads);

// The usual softmax temperature: 1 / sqrt(HS).
double default_attention_scale(int64_t head_size);

// The SIMD target the fused kernel dispatches to on this machine ("AVX3", "AVX2", "SSE4", "NEON",
// ...).
const char* simd_target();
// The SIMD targets the kernels were compiled for that this CPU runs, best first (e.g. {"AVX3",
// "AVX2", "SSE4", "SSSE3", "EMU128"}).
std::vector<std::string> available_simd_targets();
// Makes the kernels dispatch to `name` (one of available_simd_targets()) from now on, so that lower
// targets can be measured on one machine; "" restores the best. Process-wide: call it while no
// kernel runs. Throws ValueError naming the available targets otherwise.
void set_simd_target(const std::string& name);

// ---------------------------------------------------------------------------------------------------
// The call most code wants: attention(q, k, v, options[, bias]) returns its results.

struct AttentionOptions {
  AttentionMask mask;
  std::optional<double> scale;  // multiplies q·k; default 1/sqrt(HS); must be finite
  bool return_probs = false;    // also return the (B, NH, T, S) probabilities (O(T·S) memory)
};

template <typename T>
struct BasicAttentionResult {
  BasicTensor<T> out;    // (B, NH, T, HSV)
  BasicTensor<T> lse;    // (B, NH, T): log Σ_s exp(score[t, s]) over visible keys, -inf if none
  BasicTensor<T> probs;  // (B, NH, T, S) when options.return_probs, else undefined
};
using AttentionResult = BasicAttentionResult<float>;

template <typename T>
struct BasicAttentionGrads {
  BasicTensor<T> dq;     // (B, NH, T, HS)
  BasicTensor<T> dk;     // (B, NH_kv, S, HS)
  BasicTensor<T> dv;     // (B, NH_kv, S, HSV)
  BasicTensor<T> dbias;  // shape of bias, when a bias was given
};
using AttentionGrads = BasicAttentionGrads<float>;

// q (B, NH, T, HS), k (B, NH_kv, S, HS), v (B, NH_kv, S, HSV); bias: undefined or (B|1, NH|1, T,
// S), added to the scores (-inf masks, as PyTorch's float attn_mask). Runs the fused kernel.
AttentionResult attention(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                          const AttentionOptions& options = {}, ConstTensorView bias = {},
                          const Context& ctx = thread_context());
// Gradients for dout (B, NH, T, HSV), given the forward's out and lse; returned, not accumulated.
AttentionGrads attention_grad(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                              ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                              const AttentionOptions& options = {}, ConstTensorView bias = {},
                              const Context& ctx = thread_context());

// ---------------------------------------------------------------------------------------------------
// Merging partial attentions. Attention over the keys K_a ∪ K_b (disjoint sets, e.g. two blocks of
// a sequence split over ranks, or the key splits of flash-decoding) follows exactly from attention
// over each part, given each part's out and lse:
//   lse = log(exp(lse_a) + exp(lse_b)),   out = w_a·out_a + w_b·out_b,   w_x = exp(lse_x − lse).
// A part that saw no key (lse = −inf) has weight 0; if neither did, out = 0 and lse = −inf.

template <typename T>
struct BasicAttentionMerge {
  BasicTensor<T> out;  // (..., HSV)
  BasicTensor<T> lse;  // (...)
};
using AttentionMerge = BasicAttentionMerge<float>;

// out_a, out_b (..., HSV) and lse_a, lse_b (...), e.g. (B, NH, T, HSV) and (B, NH, T).
AttentionMerge attention_merge(ConstTensorView out_a, ConstTensorView lse_a, ConstTensorView out_b,
                               ConstTensorView lse_b, const Context& ctx = thread_context());

// out:  (..., HSV)  overwritten; may be out_a itself (accumulating in place), else must not overlap
// lse:  (...)       overwritten; may be lse_a itself, likewise
void attention_merge_forward(ConstTensorView out_a, ConstTensorView lse_a, ConstTensorView out_b,
                             ConstTensorView lse_b, TensorView out, TensorView lse,
                             const Context& ctx);
// Gradients of the merge. out, lse: its outputs; dout (..., HSV); dlse (...) or undefined (zero).
// dout_a, dout_b (..., HSV) and dlse_a, dlse_b (...): ACCUMULATED (+=); any may be undefined (not
// wanted). dout_x = w_x·dout,  dlse_x = w_x·(⟨dout, out_x − out⟩ + dlse).
void attention_merge_backward(ConstTensorView out_a, ConstTensorView lse_a, ConstTensorView out_b,
                              ConstTensorView lse_b, ConstTensorView out, ConstTensorView lse,
                              ConstTensorView dout, ConstTensorView dlse, TensorView dout_a,
                              TensorView dlse_a, TensorView dout_b, TensorView dlse_b,
                              const Context& ctx);

// ---------------------------------------------------------------------------------------------------
// Out-parameter forms, for callers that own their buffers (modules, arenas). Same shapes and
// semantics.
//
// q:     (B, NH, T, HS)       queries
// k:     (B, NH_kv, S, HS)    keys; NH must be a multiple of NH_kv (GQA/MQA: head h reads kv head
//                             h / (NH / NH_kv))
// v:     (B, NH_kv, S, HSV)   values (HSV may differ from HS)
// mask:  see AttentionMask
// bias:  (B|1, NH|1, T, S)    optional ({} = none): added to the scores; -inf entries mask keys
// scale: multiplies q·k (default_attention_scale(HS) for the usual 1/sqrt(HS)); must be finite
// out:   (B, NH, T, HSV)      overwritten
// lse:   (B, NH, T)           overwritten: log Σ_s exp(score[t, s]) over visible keys; -inf if none
// probs: (B, NH, T, S)        overwritten if defined (pass {} to skip): the softmax, 0 where masked
// Every view may be strided; outputs must not overlap inputs or each other.
//
// The fused kernel (src/ops/attention.cc), float32: tiled FlashAttention-2 with an online softmax.
// The T×S score matrix is never stored, extra memory is O(block · HS) per thread, masked key blocks
// are skipped (a window of ±w costs O(T·w·HS)), GQA reads shared kv heads in place. probs, when
// given, is recomputed block by block from lse after the forward. Results are bitwise identical for
// any ctx.num_threads(). Inputs whose last dimension is not unit-stride are copied first.
void attention_forward(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                       const AttentionMask& mask, ConstTensorView bias, double scale,
                       TensorView out, TensorView lse, TensorView probs, const Context& ctx);

// Gradients of attention_forward. out and lse are the forward's outputs.
// dout:  (B, NH, T, HSV)
// dq:    (B, NH, T, HS)       ACCUMULATED (+=)
// dk:    (B, NH_kv, S, HS)    ACCUMULATED; summed over the NH / NH_kv query heads sharing a kv head
// dv:    (B, NH_kv, S, HSV)   ACCUMULATED; likewise
// dbias: shape of bias        ACCUMULATED if defined (needs a bias); summed over broadcast
// dimensions
void attention_backward(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                        ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                        const AttentionMask& mask, ConstTensorView bias, double scale,
                        TensorView dq, TensorView dk, TensorView dv, TensorView dbias,
                        const Context& ctx);

// ---------------------------------------------------------------------------------------------------
// bf16 storage (docs/kernels.md, "bf16 storage"): q, k and v in bf16 (or q in float and k, v in
// bf16, a bf16 KV cache), half the bytes of float; bias, out, lse, probs, dout and every gradient
// stay float. Same shapes, masks, options and contracts as the float forms above.
//
// What is computed:
// - Widened (backward always; forward unless native): every bf16 value is widened to float exactly
//   as its tile is loaded and the float kernel runs on it, so the result is the float attention of
//   the widened inputs, to float rounding. No float copy of q, k or v is made (the tiles live in
//   the per-thread scratch).
// - Native (forward only, when bf16_dot_products() and q, k, v are all bf16 with even HS, and more
//   than 8 queries per dilation class): q·k as products of bf16 pairs (vdpbf16ps: each product
//   exact, sums in float), the probabilities rounded to bf16 for P·V. So out differs from the
//   widened result by at most about 2^-8 · max|v| per element beyond float rounding; lse keeps
//   float accuracy (the softmax sums stay in float). vdpbf16ps treats denormal bf16 as zero. A key
//   tile whose values are not all finite takes the widened P·V.
AttentionResult attention(ConstTensorViewBF16 q, ConstTensorViewBF16 k, ConstTensorViewBF16 v,
                          const AttentionOptions& options = {}, ConstTensorView bias = {},
                          const Context& ctx = thread_context());
AttentionResult attention(ConstTensorView q, ConstTensorViewBF16 k, ConstTensorViewBF16 v,
                          const AttentionOptions& options = {}, ConstTensorView bias = {},
                          const Context& ctx = thread_context());
AttentionGrads attention_grad(ConstTensorViewBF16 q, ConstTensorViewBF16 k, ConstTensorViewBF16 v,
                              ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                              const AttentionOptions& options = {}, ConstTensorView bias = {},
                              const Context& ctx = thread_context());
AttentionGrads attention_grad(ConstTensorView q, ConstTensorViewBF16 k, ConstTensorViewBF16 v,
                              ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                              const AttentionOptions& options = {}, ConstTensorView bias = {},
                              const Context& ctx = thread_context());
void attention_forward(ConstTensorViewBF16 q, ConstTensorViewBF16 k, ConstTensorViewBF16 v,
                       const AttentionMask& mask, ConstTensorView bias, double scale,
                       TensorView out, TensorView lse, TensorView probs, const Context& ctx);
void attention_forward(ConstTensorView q, ConstTensorViewBF16 k, ConstTensorViewBF16 v,
                       const AttentionMask& mask, ConstTensorView bias, double scale,
                       TensorView out, TensorView lse, TensorView probs, const Context& ctx);
void attention_backward(ConstTensorViewBF16 q, ConstTensorViewBF16 k, ConstTensorViewBF16 v,
                        ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                        const AttentionMask& mask, ConstTensorView bias, double scale,
                        TensorView dq, TensorView dk, TensorView dv, TensorView dbias,
                        const Context& ctx);
void attention_backward(ConstTensorView q, ConstTensorViewBF16 k, ConstTensorViewBF16 v,
                        ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                        const AttentionMask& mask, ConstTensorView bias, double scale,
                        TensorView dq, TensorView dk, TensorView dv, TensorView dbias,
                        const Context& ctx);

// Does the bf16 forward use native bf16 products here and now? True when the CPU has AVX512_BF16
// and the kernels dispatch to an AVX-512 target (set_simd_target("AVX2") turns it off, as on a CPU
// without them).
bool bf16_dot_products();

namespace reference {

// The specification: plain loops, double accumulation, everything materialised (dense mask, full
// T×S score and probability matrices). Single-threaded on purpose. Same arguments and contracts as
// the fused forms above; overloads for float and double data (the double one is what float64
// callers and finite-difference checks use). The reference recomputes everything in backward from
// q, k, v, so it does not trust out and lse (they are shape-checked only).
BasicAttentionResult<float> attention(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                      const AttentionOptions& options = {},
                                      ConstTensorView bias = {},
                                      const Context& ctx = thread_context());
BasicAttentionResult<double> attention(ConstTensorViewD q, ConstTensorViewD k, ConstTensorViewD v,
                                       const AttentionOptions& options = {},
                                       ConstTensorViewD bias = {},
                                       const Context& ctx = thread_context());
BasicAttentionGrads<float> attention_grad(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                                          ConstTensorView out, ConstTensorView lse,
                                          ConstTensorView dout,
                                          const AttentionOptions& options = {},
                                          ConstTensorView bias = {},
                                          const Context& ctx = thread_context());
BasicAttentionGrads<double> attention_grad(ConstTensorViewD q, ConstTensorViewD k,
                                           ConstTensorViewD v, ConstTensorViewD out,
                                           ConstTensorViewD lse, ConstTensorViewD dout,
                                           const AttentionOptions& options = {},
                                           ConstTensorViewD bias = {},
                                           const Context& ctx = thread_context());

void attention_forward(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                       const AttentionMask& mask, ConstTensorView bias, double scale,
                       TensorView out, TensorView lse, TensorView probs, const Context& ctx);
void attention_forward(ConstTensorViewD q, ConstTensorViewD k, ConstTensorViewD v,
                       const AttentionMask& mask, ConstTensorViewD bias, double scale,
                       TensorViewD out, TensorViewD lse, TensorViewD probs, const Context& ctx);
void attention_backward(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                        ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                        const AttentionMask& mask, ConstTensorView bias, double scale,
                        TensorView dq, TensorView dk, TensorView dv, TensorView dbias,
                        const Context& ctx);
void attention_backward(ConstTensorViewD q, ConstTensorViewD k, ConstTensorViewD v,
                        ConstTensorViewD out, ConstTensorViewD lse, ConstTensorViewD dout,
                        const AttentionMask& mask, ConstTensorViewD bias, double scale,
                        TensorViewD dq, TensorViewD dk, TensorViewD dv, TensorViewD dbias,
                        const Context& ctx);

// bf16 inputs: widened exactly to double, then the double reference above; results in float.
BasicAttentionResult<float> attention(ConstTensorViewBF16 q, ConstTensorViewBF16 k,
                                      ConstTensorViewBF16 v, const AttentionOptions& options = {},
                                      ConstTensorView bias = {},
                                      const Context& ctx = thread_context());
BasicAttentionResult<float> attention(ConstTensorView q, ConstTensorViewBF16 k,
                                      ConstTensorViewBF16 v, const AttentionOptions& options = {},
                                      ConstTensorView bias = {},
                                      const Context& ctx = thread_context());
BasicAttentionGrads<float> attention_grad(ConstTensorViewBF16 q, ConstTensorViewBF16 k,
                                          ConstTensorViewBF16 v, ConstTensorView out,
                                          ConstTensorView lse, ConstTensorView dout,
                                          const AttentionOptions& options = {},
                                          ConstTensorView bias = {},
                                          const Context& ctx = thread_context());
BasicAttentionGrads<float> attention_grad(ConstTensorView q, ConstTensorViewBF16 k,
                                          ConstTensorViewBF16 v, ConstTensorView out,
                                          ConstTensorView lse, ConstTensorView dout,
                                          const AttentionOptions& options = {},
                                          ConstTensorView bias = {},
                                          const Context& ctx = thread_context());

// The merge in double, row by row: the specification of attention_merge_forward/backward.
void attention_merge_forward(ConstTensorViewD out_a, ConstTensorViewD lse_a, ConstTensorViewD out_b,
                             ConstTensorViewD lse_b, TensorViewD out, TensorViewD lse,
                             const Context& ctx);
void attention_merge_backward(ConstTensorViewD out_a, ConstTensorViewD lse_a,
                              ConstTensorViewD out_b, ConstTensorViewD lse_b, ConstTensorViewD out,
                              ConstTensorViewD lse, ConstTensorViewD dout, ConstTensorViewD dlse,
                              TensorViewD dout_a, TensorViewD dlse_a, TensorViewD dout_b,
                              TensorViewD dlse_b, const Context& ctx);

// The mask (and bias) as a dense additive tensor (B, NH, T, S): 0 or -inf for the structure, plus
// ALiBi and bias. What xFormers calls materialize(): for tests and debugging, O(B·NH·T·S) memory.
TensorD materialize_attention_mask(const AttentionMask& mask, int64_t B, int64_t NH, int64_t T_,
                                   int64_t S);
TensorD materialize_attention_mask(const AttentionMask& mask, ConstTensorView bias, int64_t B,
                                   int64_t NH, int64_t T_, int64_t S);
TensorD materialize_attention_mask(const AttentionMask& mask, ConstTensorViewD bias, int64_t B,
                                   int64_t NH, int64_t T_, int64_t S);

}  // namespace reference
}  // namespace attn::ops
