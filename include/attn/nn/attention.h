// SPDX-License-Identifier: MIT
// MultiheadAttention (torch.nn.MultiheadAttention with batch_first=True, on the fused kernel) and
// the positional-encoding modules: sinusoidal, learned absolute, RoPE (inside attention), ALiBi
// (kernel slopes) and T5 relative-position bias (through the kernel's bias path, with gradients).
#pragma once

#include <cstdint>
#include <vector>

#include "attn/context.h"
#include "attn/nn/layers.h"
#include "attn/nn/module.h"
#include "attn/ops/attention.h"
#include "attn/ops/positional.h"
#include "attn/tensor.h"

namespace attn::nn {

// Rotary embedding applied to q and k after the input projection (positions start_pos + t).
struct RopeConfig {
  bool enabled = false;
  double base = 10000.0;
  ops::RopeLayout layout = ops::RopeLayout::kHalf;
};

// Everything besides the inputs that shapes one attention call.
struct AttentionOptions {
  // Kernel mask parameters: causal, window, dilation, chunk, key_lengths, alibi_slopes. These cost
  // only the work they leave.
  ops::AttentionMask mask;
  // PyTorch's attn_mask as an additive float mask (-inf = masked): (T, S) for every batch entry and
  // head, or (B or 1, NH or 1, T, S). A boolean PyTorch mask (True = masked) converts to 0 / -inf.
  // The cache refers to it, so it must outlive a backward that uses the cache.
  ConstTensorView attn_mask;
  // PyTorch's key_padding_mask: (B, S), nonzero = padding (True in PyTorch). Masks that pad only at
  // the end become kernel key lengths (no dense memory); any other pattern becomes part of a dense
  // bias.
  ConstTensorView key_padding_mask;
  bool need_weights = false;         // return the attention probabilities
  bool average_attn_weights = true;  // (B, T, S) averaged over heads, else (B, NH, T, S)
  bool attn_mask_grad = false;       // backward also returns d(attn_mask) (for learned biases)
  int64_t start_pos = 0;             // position of the first query and key, for RoPE
};

class MultiheadAttention : public Module {
 public:
  // Parameters as PyTorch: "in_proj_weight" (3C, C) xavier-uniform, "in_proj_bias" (3C) = 0,
  // "out_proj.weight" (C, C) U(±1/√C), "out_proj.bias" (C) = 0. C must be a multiple of NH.
  MultiheadAttention(int64_t C, int64_t NH, bool bias, Rng& rng, RopeConfig rope = {});

  struct Cache {
    bool self = false;  // query, key and value were the same view
    Tensor query_in, key_in,
        value_in;             // (B, T, C), (B, S, C), (B, S, C); key/value empty when self
    Tensor q, k, v;           // (B, T, C), (B, S, C), (B, S, C) projections (q, k after RoPE)
    Tensor lse;               // (B, NH, T)
    Tensor dense_bias;        // the combined dense mask the kernel saw, if one was built
    ops::AttentionMask mask;  // the resolved kernel mask
    ConstTensorView bias;     // what the kernel added to the scores: dense_bias, attn_mask or none
    Linear::Cache out_proj;   // its x: the heads' outputs, concatenated, as (B·T, C) rows
    int64_t start_pos = 0;
    bool attn_mask_grad = false;
    Shape attn_mask_shape;
  };
  struct Grads {
    Tensor dquery;        // (B, T, C); for self-attention the sum over query, key and value
    Tensor dkey, dvalue;  // (B, S, C); empty for self-attention
    Tensor dattn_mask;    // shape of attn_mask, when AttentionOptions::attn_mask_grad
  };

  // query (B, T, C), key (B, S, C), value (B, S, C); pass the same view three times for
  // self-attention. Returns (B, T, C). With opts.need_weights, *weights gets the probabilities (see
  // AttentionOptions).
  Tensor forward(ConstTensorView query, ConstTensorView key, ConstTensorView value,
                 const AttentionOptions& opts, Cache* cache, const Context& ctx,
                 Tensor* weights = nullptr);
  Grads backward(ConstTensorView dout, const Cache& cache, const Context& ctx);

  // The two halves of a self-attention forward, for callers that keep their own key/value cache
  // (nn::StreamingEncoder). Inference only: nothing is cached, dropout does not apply.
  // project_self: x (B, T, C) -> q, k, v (each (B, T, C), overwritten, any row-contiguous view),
  //   RoPE (if enabled) applied to q and k at positions start_pos + t.
  // attend_projected: q (B, T, C), k and v (B, S, C) -> out_proj(attention(q, k, v, mask)), (B, T, C).
  void project_self(ConstTensorView x, TensorView q, TensorView k, TensorView v, int64_t start_pos,
                    const Context& ctx);
  Tensor attend_projected(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                          const ops::AttentionMask& mask, const Context& ctx);

  int64_t embed_dim() const { return C_; }
  int64_t num_heads() const { return NH_; }
  const RopeConfig& rope() const { return rope_; }

  Linear out_proj;

 private:
  int64_t C_, NH_;
  RopeConfig rope_;
  Parameter* in_proj_weight_;
  Parameter* in_proj_bias_ = nullptr;
};

// x + PE(start_pos + t) (fixed, no parameters); backward is the identity.
class SinusoidalPositionalEncoding : public Module {
 public:
  explicit SinusoidalPositionalEncoding(int64_t C, double base = 10000.0) : C_(C), base_(base) {}
  Tensor forward(ConstTensorView x, int64_t start_pos, const Context& ctx);  // (B, T, C)

 private:
  int64_t C_;
  double base_;
};

// x + weight[start_pos + t]: a learned table "weight" (max_len, C) ~ N(0, 1) (as an nn.Embedding).
class LearnedPositionalEncoding : public Module {
 public:
  LearnedPositionalEncoding(int64_t max_len, int64_t C, Rng& rng);
  Tensor forward(ConstTensorView x, int64_t start_pos, const Context& ctx);  // (B, T, C)
  // Accumulates Σ_b dout[b, t] into weight.grad; returns dx = dout.
  Tensor backward(ConstTensorView dout, int64_t start_pos, const Context& ctx);

 private:
  int64_t max_len_, C_;
  Parameter* weight_;
};

// T5 relative-position bias: a learned scalar per head and distance bucket,
// "relative_attention_bias.weight" (num_buckets, NH), added to the scores through the kernel's bias
// path.
class RelativePositionBias : public Module {
 public:
  RelativePositionBias(int64_t NH, Rng& rng, bool bidirectional = true, int64_t num_buckets = 32,
                       int64_t max_distance = 128);
  // The bias (1, NH, T, S) for queries at positions query_offset + t and keys at s.
  Tensor forward(int64_t T, int64_t S, int64_t query_offset = 0) const;
  // dbias (1, NH, T, S) (from MultiheadAttention::Grads::dattn_mask): accumulated into the table's
  // grad.
  void backward(ConstTensorView dbias, int64_t query_offset = 0);

  Embedding relative_attention_bias;

 private:
  // The bucket of every key - query distance s - t of a (T, S) bias, at index s - t + T - 1.
  std::vector<int64_t> buckets(int64_t T, int64_t S, int64_t query_offset) const;
  int64_t NH_, num_buckets_, max_distance_;
  bool bidirectional_;
};

}  // namespace attn::nn
