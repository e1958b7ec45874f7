// SPDX-License-Identifier: MIT
// Frame-level phoneme classifiers for `attn experiment speech`: fbank (B, T, F) ->
// Conv2dSubsampling4 (40 ms encoder frames) -> a sequence model -> Linear -> logits (B, T', K), one
// phoneme per encoder frame. The sequence model is the Speech I encoder under one attention mask,
// or an LSTM:
//   full                every encoder frame sees every frame
//   window<W>           truncated: frames t-W..t+W                 (e.g. window16)
//   chunk<C>x<L>        streaming: chunks of C frames, L chunks back (e.g. chunk16x4)
//   dilation<D>         interval sampling: every D-th frame        (e.g. dilation2)
//   dilation<D>-window<W>   both
//   lstm-uni, lstm-bi   a 2-layer LSTM, one or both directions (no attention)
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "attn/attn.h"

namespace attn::examples {

enum class SpeechModelKind { kAttention, kLSTM };

struct SpeechModelSpec {
  std::string name;
  SpeechModelKind kind = SpeechModelKind::kAttention;
  ops::AttentionMask mask;     // the attention models' mask (key_lengths set per batch)
  bool bidirectional = false;  // the LSTM's
  int64_t window = -1;         // W of a window mask (-1: none), for the plots
};

// One of the names above; ValueError naming them otherwise.
SpeechModelSpec parse_speech_model(const std::string& name);
// The experiment's default list: full, window 2..32, chunk16x4, dilation 2 and 4 with and without
// window16, lstm-uni, lstm-bi.
std::vector<std::string> default_speech_models();

struct SpeechModelConfig {
  int64_t input_dim = 40, classes = 0;  // F fbank bins, K phonemes
  int64_t d_model = 128, nhead = 4, dim_feedforward = 512, layers = 4;
  double dropout = 0.1;
  // LSTM hidden size per direction; 0: the size whose 2-layer LSTM has about as many weights as
  // the attention layers (4C² + 2C·FF each), so both kinds of model are of similar size.
  int64_t lstm_hidden = 0, lstm_layers = 2;
};

class SpeechFrameModel : public nn::Module {
 public:
  SpeechFrameModel(const SpeechModelSpec& spec, const SpeechModelConfig& config, Rng& rng);

  // feats (B, T, F) with lengths[b] <= T valid frames per entry (the rest padding) -> logits
  // (B, T', K), T' = Conv2dSubsampling4::output_length(T); encoder frame j of entry b is valid
  // for j < output_length(lengths[b]). train: training mode and the caches backward needs.
  Tensor forward(ConstTensorView feats, std::span<const int64_t> lengths, bool train,
                 const Context& ctx);
  // dlogits (B, T', K); parameter gradients accumulate.
  void backward(ConstTensorView dlogits, const Context& ctx);

  // The attention probabilities of encoder layer `layer` for one utterance feats (1, T, F),
  // averaged over heads: (T', T'). Attention models only.
  Tensor attention_map(ConstTensorView feats, int64_t layer, const Context& ctx);
  // Forward FLOPs of the attention products (QKᵀ and PV, 4·C per visible query-key pair per
  // layer) on one utterance of T' encoder frames; 0 for the LSTMs.
  double attention_flops(int64_t encoder_frames) const;

  const SpeechModelSpec& spec() const { return spec_; }
  const SpeechModelConfig& config() const { return config_; }

 private:
  SpeechModelSpec spec_;
  SpeechModelConfig config_;
  std::unique_ptr<nn::SpeechEncoder> encoder_;     // attention
  std::unique_ptr<nn::Conv2dSubsampling4> embed_;  // LSTM
  std::unique_ptr<nn::LSTM> lstm_;
  std::unique_ptr<nn::Linear> head_;
  // What backward needs from the last training forward.
  nn::SpeechEncoder::Cache encoder_cache_;
  nn::Conv2dSubsampling4::Cache embed_cache_;
  nn::RNNBase::Cache lstm_cache_;
  nn::Linear::Cache head_cache_;
};

}  // namespace attn::examples
