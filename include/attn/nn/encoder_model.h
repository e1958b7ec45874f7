// SPDX-License-Identifier: MIT
// EncoderModel: a positional encoding followed by a TransformerEncoder, described by a JSON config:
// the format `attn encode` reads and scripts/export_torch_encoder.py writes (docs/nn.md):
//   {"d_model": 256, "nhead": 8, "dim_feedforward": 2048, "num_layers": 2, "norm_first": false,
//    "activation": "relu", "layer_norm_eps": 1e-5, "final_norm": true, "batch_first": true, "bias":
//    true, "positional": "none" | "sinusoidal" | "learned" | "rope" | "alibi" | "relative",
//    "max_len": 512}
// Only d_model, nhead and num_layers are required; the rest default to torch.nn's defaults
// ("positional" to "none": torch's encoder has none). Unknown keys and wrong types are errors.
#pragma once

#include <memory>
#include <string>

#include "attn/nn/attention.h"
#include "attn/nn/transformer.h"

namespace attn::nn {

enum class PositionalKind { kNone, kSinusoidal, kLearned, kRope, kAlibi, kRelative };

struct EncoderModelConfig {
  EncoderLayerConfig layer;
  int64_t num_layers = 1;
  bool final_norm = false;
  bool batch_first = true;  // false: inputs and outputs are (T, B, C), as torch's default
  PositionalKind positional = PositionalKind::kNone;
  int64_t max_len = 0;  // learned: table size (required)
};

// Parses and validates a config; `source` names the file in error messages (ValueError).
EncoderModelConfig parse_encoder_config(const std::string& json_text,
                                        const std::string& source = "config");
std::string encoder_config_to_json(const EncoderModelConfig& config);

// Parameters: the encoder's ("layers.<i>.*", "norm.*"), plus "pos_embedding.weight" (learned) or
// "relative_attention_bias.weight" (relative).
class EncoderModel : public Module {
 public:
  EncoderModel(const EncoderModelConfig& config, Rng& rng, uint64_t dropout_seed = 0);
  struct Cache {
    TransformerEncoder::Cache encoder;
    Tensor bias;  // (1, NH, T, T) relative-position bias the layers saw
    int64_t start_pos = 0;
  };
  // x: (B, T, C) (or (T, B, C) when !batch_first) -> the same layout. opts carries masks (key
  // lengths, causal, window, ...); the model adds its positional parts (ALiBi slopes, relative
  // bias) to it.
  Tensor forward(ConstTensorView x, const AttentionOptions& opts, Cache* cache, const Context& ctx);
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);

  const EncoderModelConfig& config() const { return config_; }
  TransformerEncoder encoder;

 private:
  EncoderModelConfig config_;
  std::unique_ptr<SinusoidalPositionalEncoding> sinusoidal_;
  std::unique_ptr<LearnedPositionalEncoding> learned_;
  std::unique_ptr<RelativePositionBias> relative_;
};

}  // namespace attn::nn
