// SPDX-License-Identifier: MIT
// SelfAttention2d: the SAGAN block (Zhang et al., arXiv 1805.08318). An image x (B, C, H, W) is a
// sequence of N = H·W vectors of C channels; every position attends over all positions, and the
// result is added back: y = γ·o + x with γ initialised to 0, so the block starts as the identity
// and the network learns how much non-local evidence to use. Two published forms:
//   kPaper    (the paper; heykeetae/Self-Attention-GAN): 1×1 convs f, g: C → C/8 (queries, keys)
//   and
//             h: C → C (values), o = attention over the N positions. Parameters "query_conv.*",
//             "key_conv.*", "value_conv.*" (with biases) and "gamma" (1).
//   kReleased (brain-research/self-attention-gan, BigGAN-PyTorch's Attention): θ, φ: C → C/8,
//             g: C → C/2, φ and g 2×2 max-pooled (N/4 keys), the attended values (C/2) through a
//             1×1 conv C/2 → C. Parameters "theta.weight", "phi.weight", "g.weight", "o.weight" (no
//             biases) and "gamma" (a scalar; the σ of the TensorFlow code). H and W must be even.
// Scores are plain dot products (no 1/√d scale), as in both. Attention runs on the fused kernel on
// (B, 1, N, ·) views of the conv outputs: no N×N matrix exists unless the attention map is asked
// for.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "attn/context.h"
#include "attn/nn/conv.h"
#include "attn/nn/module.h"
#include "attn/tensor.h"

namespace attn::nn {

enum class SaganForm { kPaper, kReleased };
const char* sagan_form_name(SaganForm form);          // "paper" / "released"
SaganForm parse_sagan_form(const std::string& name);  // throws ValueError for anything else

class SelfAttention2d : public Module {
 public:
  // channels must be a multiple of 8 (and of 2).
  SelfAttention2d(int64_t channels, SaganForm form, Rng& rng);

  struct Cache {
    Conv2d::Cache q_conv, k_conv, v_conv, o_conv;  // o_conv: kReleased only
    MaxPool2d::Cache k_pool, v_pool;               // kReleased only
    Tensor q, k, v;   // conv outputs (B, C_qk, H, W), (B, C_qk, H', W'), (B, C_v, H', W')
    Tensor attended;  // (B, 1, N, C_v): the attention output
    Tensor lse;       // (B, 1, N)
    Tensor o;         // (B, C, H, W): what γ scales
    Shape x_shape;
  };
  // x (B, C, H, W) -> y (B, C, H, W). attention_map, when given, receives the (B, N, S) attention
  // probabilities (row i: how query position i = h·W + w spreads over the S = N or N/4 key
  // positions).
  Tensor forward(ConstTensorView x, Cache* cache, const Context& ctx,
                 Tensor* attention_map = nullptr);
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);

  SaganForm form() const { return form_; }
  int64_t channels() const { return C_; }
  Parameter& gamma() { return *gamma_; }

 private:
  int64_t C_;
  SaganForm form_;
  Conv2d q_conv_, k_conv_, v_conv_;  // f, g, h (paper) / θ, φ, g (released)
  std::unique_ptr<Conv2d> o_conv_;   // released only
  MaxPool2d pool_;
  Parameter* gamma_;
};

}  // namespace attn::nn
