// SPDX-License-Identifier: MIT
// TransformerEncoderLayer and TransformerEncoder with torch.nn's parameter names and semantics
// (batch_first=True; see docs/nn.md for batch_first=False and the other differences).
#pragma once

#include <memory>
#include <vector>

#include "attn/nn/attention.h"
#include "attn/nn/layers.h"
#include "attn/nn/module.h"

namespace attn::nn {

struct EncoderLayerConfig {
  int64_t d_model = 512;
  int64_t nhead = 8;
  int64_t dim_feedforward = 2048;
  double dropout = 0.1;  // on the attention and feed-forward outputs and inside the MLP (not on the
                         // attention probabilities: the fused kernel has no probability dropout)
  ActivationKind activation = ActivationKind::kReLU;
  double layer_norm_eps = 1e-5;
  bool norm_first = false;
  bool bias = true;
  RopeConfig rope;
};

// Post-norm (norm_first = false):  h = norm1(x + dropout1(self_attn(x)));  y = norm2(h +
// dropout2(ff(h))) Pre-norm  (norm_first = true):   h = x + dropout1(self_attn(norm1(x)));  y = h +
// dropout2(ff(norm2(h))) Parameters: self_attn.*, linear1.*, linear2.*, norm1.*, norm2.* (as
// torch.nn.TransformerEncoderLayer).
class TransformerEncoderLayer : public Module {
 public:
  TransformerEncoderLayer(const EncoderLayerConfig& config, Rng& rng, uint64_t dropout_seed = 0);
  struct Cache {
    MultiheadAttention::Cache self_attn;
    FeedForward::Cache ff;
    LayerNorm::Cache norm1, norm2;
    Dropout::Cache dropout1, dropout2;
  };
  // x: (B, T, C) -> (B, T, C)
  Tensor forward(ConstTensorView x, const AttentionOptions& opts, Cache* cache, const Context& ctx);
  // Returns dx; *dattn_mask (if given) accumulates d(attn_mask) when opts.attn_mask_grad was set.
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx,
                  Tensor* dattn_mask = nullptr);

  const EncoderLayerConfig& config() const { return config_; }

  MultiheadAttention self_attn;
  FeedForward ff;  // its linear1/linear2 appear at this level, as in PyTorch
  LayerNorm norm1, norm2;
  Dropout dropout1, dropout2;

 private:
  EncoderLayerConfig config_;
};

// A stack of num_layers layers ("layers.<i>.*") and an optional final LayerNorm ("norm.*").
class TransformerEncoder : public Module {
 public:
  TransformerEncoder(const EncoderLayerConfig& config, int64_t num_layers, bool final_norm,
                     Rng& rng, uint64_t dropout_seed = 0);
  struct Cache {
    std::vector<TransformerEncoderLayer::Cache> layers;
    LayerNorm::Cache norm;
  };
  Tensor forward(ConstTensorView x, const AttentionOptions& opts, Cache* cache, const Context& ctx);
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx,
                  Tensor* dattn_mask = nullptr);

  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  TransformerEncoderLayer& layer(int64_t i) { return *layers_.at(static_cast<size_t>(i)); }
  LayerNorm* norm() { return norm_.get(); }

 private:
  std::vector<std::unique_ptr<TransformerEncoderLayer>> layers_;
  std::unique_ptr<LayerNorm> norm_;
};

}  // namespace attn::nn
