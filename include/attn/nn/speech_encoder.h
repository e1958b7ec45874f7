// SPDX-License-Identifier: MIT
// The speech encoder of WeNet's and ESPnet's transformer models, and its streaming twin:
//   features (B, T, F) -> Conv2dSubsampling4 -> x·√C + PE -> encoder layers -> LayerNorm -> (B, T',
//   C)
// T' = ((T - 1) / 2 - 1) / 2 (≈ T / 4: 40 ms per encoder frame for 10 ms features). The layers'
// attention takes any ops::AttentionMask over encoder frames: full, window (truncated), chunk +
// left chunks (streaming), dilation (interval sampling). StreamingEncoder runs the chunk mask on a
// stream, piece by piece, with bounded caches, and gives the offline model's output
// (docs/speech.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attn/nn/conv.h"
#include "attn/nn/layers.h"
#include "attn/nn/module.h"
#include "attn/nn/transformer.h"
#include "attn/ops/attention.h"

namespace attn::nn {

// WeNet's Conv2dSubsampling4: two 3×3 stride-2 Conv2d + ReLU over (time, frequency), then Linear.
// x (B, T, F) -> (B, T', C). Output frame j reads input frames [4j, 4j + 7) (kRightContext = 6
// frames beyond the first), so it can run on overlapping windows of a stream.
// Parameters "conv1.*" (C, 1, 3, 3), "conv2.*" (C, C, 3, 3), "out.*" (C, C·F'), F' = ((F-1)/2-1)/2.
class Conv2dSubsampling4 : public Module {
 public:
  static constexpr int64_t kRate = 4;
  static constexpr int64_t kRightContext = 6;
  Conv2dSubsampling4(int64_t input_dim, int64_t C, Rng& rng);
  struct Cache {
    Conv2d::Cache conv1, conv2;
    Tensor h1, h2;  // (B, C, T1, F1), (B, C, T', F'): the convolutions' outputs before ReLU
    Linear::Cache out;
  };
  Tensor forward(ConstTensorView x, Cache* cache, const Context& ctx);
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);  // -> dx (B, T, F)
  // T' for T input frames (0 when T < 7).
  static int64_t output_length(int64_t T);

  Conv2d conv1, conv2;
  Linear out;

 private:
  int64_t F_, C_;
};

struct SpeechEncoderConfig {
  int64_t input_dim = 80;  // F: feature bins per frame
  int64_t num_layers = 12;
  // d_model, nhead, dim_feedforward, activation, norm_first (pre-norm as WeNet), ...; dropout
  // applies in training only. RoPE is allowed (applied before the cache); ALiBi and relative
  // biases are not part of this encoder.
  EncoderLayerConfig layer = {256, 4, 1024, 0.1, ActivationKind::kReLU, 1e-5, true, true, {}};
};

// The JSON a model directory's config.json holds (docs/speech.md):
//   {"input_dim": 80, "d_model": 256, "nhead": 4, "dim_feedforward": 1024, "num_layers": 12,
//    "norm_first": true, "activation": "relu", "layer_norm_eps": 1e-5, "dropout": 0.1}
// Every key is optional (the defaults above); unknown keys and wrong types are ValueErrors naming
// `source`.
SpeechEncoderConfig parse_speech_encoder_config(const std::string& json_text,
                                                const std::string& source = "config");
std::string speech_encoder_config_to_json(const SpeechEncoderConfig& config);

// Parameters "embed.*" (Conv2dSubsampling4), "encoder.layers.<i>.*", "encoder.norm.*".
class SpeechEncoder : public Module {
 public:
  SpeechEncoder(const SpeechEncoderConfig& config, Rng& rng, uint64_t dropout_seed = 0);
  struct Cache {
    Conv2dSubsampling4::Cache embed;
    TransformerEncoder::Cache encoder;
  };
  // feats (B, T, F) -> (B, T', C). mask is over encoder frames (its key_lengths in encoder
  // frames); start_pos is the position of the first encoder frame (for PE and RoPE).
  Tensor forward(ConstTensorView feats, const ops::AttentionMask& mask, Cache* cache,
                 const Context& ctx, int64_t start_pos = 0);
  // dout (B, T', C) -> dfeats (B, T, F); parameter gradients accumulate.
  Tensor backward(ConstTensorView dout, const Cache& cache, const Context& ctx);

  const SpeechEncoderConfig& config() const { return config_; }
  int64_t d_model() const { return config_.layer.d_model; }

  // x (B, T', C) -> x·√C + PE(start_pos + t), in place (the step between embed and encoder).
  void add_positions(TensorView x, int64_t start_pos, const Context& ctx) const;

  Conv2dSubsampling4 embed;
  TransformerEncoder encoder;

 private:
  SpeechEncoderConfig config_;
};

// A model directory: config.json (the JSON above) and model.safetensors (the parameters). save
// creates the directory; load returns the model in evaluation mode and throws IoError / ValueError
// / ShapeError naming the file for a missing, malformed or mismatched one (strict: every parameter,
// nothing else). `attn speech new-model` writes such directories.
void save_speech_encoder(const std::string& dir, const SpeechEncoder& model);
std::unique_ptr<SpeechEncoder> load_speech_encoder(const std::string& dir);

// The chunk mask a StreamingEncoder reproduces: chunk_size encoder frames, num_left_chunks back
// (-1: every earlier chunk).
ops::AttentionMask streaming_mask(int64_t chunk_size, int64_t num_left_chunks);

// Feeds a SpeechEncoder a stream of feature frames in pieces of any size and emits encoder frames
// chunk by chunk, equal (to float rounding) to SpeechEncoder::forward on the whole stream with
// streaming_mask(chunk_size, num_left_chunks). What it keeps between pieces:
//   - the feature frames not yet consumed: at most 4·chunk + 6 rows (the subsampling's overlap of
//     kRightContext frames is carried over);
//   - per layer, the keys and values of the last num_left_chunks chunks plus the current one, in a
//     ring of (num_left_chunks + 1)·chunk rows that never grows with the stream. Attention is
//     order-free over keys, so a chunk's keys go to its ring slot and every query attends to the
//     whole ring. num_left_chunks = -1 keeps every key (memory then grows with the stream).
// Inference only: the model must be in evaluation mode (set_training(false)).
class StreamingEncoder {
 public:
  StreamingEncoder(SpeechEncoder& model, int64_t chunk_size, int64_t num_left_chunks,
                   const Context& ctx = thread_context());
  // frames (n, F), n >= 0 -> the encoder frames (m, C) the stream completed (m a multiple of
  // chunk_size, possibly 0).
  Tensor push(ConstTensorView frames);
  // End of stream: the remaining encoder frames (the last, partial chunk; (0, C) if none). The
  // encoder is then reset for a new stream.
  Tensor flush();
  void reset();

  int64_t chunk_size() const { return chunk_; }
  int64_t num_left_chunks() const { return left_; }
  int64_t frames_emitted() const { return emitted_; }
  int64_t chunks_emitted() const { return chunks_; }
  // Bytes held by the feature buffer and the key/value rings now.
  int64_t cache_bytes() const;

 private:
  Tensor run_chunk(ConstTensorView window, int64_t n_out);
  // The ring rows of slot `slot` for n frames; grows the ring when num_left_chunks < 0.
  void ensure_capacity(int64_t rows);

  SpeechEncoder& model_;
  const Context& ctx_;
  int64_t chunk_, left_, F_, C_;
  std::vector<float> pending_;         // unconsumed feature frames, row-major (rows, F)
  std::vector<Tensor> keys_, values_;  // per layer (1, ring rows, C)
  int64_t ring_rows_ = 0, filled_rows_ = 0;
  int64_t emitted_ = 0, chunks_ = 0;
};

}  // namespace attn::nn
