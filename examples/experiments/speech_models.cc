// SPDX-License-Identifier: MIT
// The frame classifiers of `attn experiment speech` (speech_models.h).
#include "speech_models.h"

#include <algorithm>
#include <cmath>
#include <string_view>

namespace attn::examples {

namespace {

constexpr const char* kNames =
    "full, window<W>, chunk<C>x<L>, dilation<D>, dilation<D>-window<W>, lstm-uni, lstm-bi";

ops::AttentionMask window_mask(int64_t w) {
  ops::AttentionMask m;
  m.window_left = m.window_right = w;
  return m;
}

nn::SpeechEncoderConfig encoder_config(const SpeechModelConfig& c) {
  nn::SpeechEncoderConfig e;
  e.input_dim = c.input_dim;
  e.num_layers = c.layers;
  e.layer.d_model = c.d_model;
  e.layer.nhead = c.nhead;
  e.layer.dim_feedforward = c.dim_feedforward;
  e.layer.dropout = c.dropout;
  e.layer.norm_first = true;
  return e;
}

// The hidden size H of a 2-layer LSTM over C inputs with about P = layers·(4C² + 2C·FF) weights:
// one direction has 4H(C + H) + 4H·2H = 12H² + 4CH, two have 32H² + 8CH.
int64_t matched_lstm_hidden(const SpeechModelConfig& c, bool bidirectional) {
  if (c.lstm_hidden > 0) return c.lstm_hidden;
  const auto C = static_cast<double>(c.d_model);
  const double P = static_cast<double>(c.layers) *
                   (4.0 * C * C + 2.0 * C * static_cast<double>(c.dim_feedforward));
  const double a = bidirectional ? 32.0 : 12.0, b = (bidirectional ? 8.0 : 4.0) * C;
  return std::max<int64_t>(8, std::llround((-b + std::sqrt(b * b + 4.0 * a * P)) / (2.0 * a)));
}

}  // namespace

namespace {

// The number that `text` is after `prefix` (1 to 6 digits), or -1.
int64_t number_after(std::string_view text, std::string_view prefix) {
  if (text.substr(0, prefix.size()) != prefix) return -1;
  const std::string_view digits = text.substr(prefix.size());
  if (digits.empty() || digits.size() > 6) return -1;
  int64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return -1;
    n = 10 * n + (c - '0');
  }
  return n;
}

}  // namespace

SpeechModelSpec parse_speech_model(const std::string& name) {
  SpeechModelSpec s;
  s.name = name;
  if (name == "full") return s;
  if (name == "lstm-uni" || name == "lstm-bi") {
    s.kind = SpeechModelKind::kLSTM;
    s.bidirectional = name == "lstm-bi";
    return s;
  }
  const std::string_view n = name;
  if (const int64_t w = number_after(n, "window"); w >= 0) {
    s.mask = window_mask(w);
    s.window = w;
    return s;
  }
  if (const auto x = n.find('x'); n.substr(0, 5) == "chunk" && x != std::string_view::npos) {
    const int64_t c = number_after(n.substr(0, x), "chunk"), l = number_after(n.substr(x), "x");
    if (c > 0 && l >= 0) {
      s.mask.chunk_size = c;
      s.mask.num_left_chunks = l;
      return s;
    }
  }
  if (n.substr(0, 8) == "dilation") {
    const auto dash = n.find('-');
    const int64_t d = number_after(n.substr(0, dash), "dilation");
    const int64_t w = dash == std::string_view::npos ? -1 : number_after(n.substr(dash), "-window");
    if (d > 1 && (dash == std::string_view::npos || w >= 0)) {
      if (w >= 0) {
        s.mask = window_mask(w);
        s.window = w;
      }
      s.mask.dilation = d;
      return s;
    }
  }
  fail<ValueError>("parse_speech_model", "unknown model '", name, "'; expected one of ", kNames,
                   " (W >= 0, C >= 1, D >= 2)");
}

std::vector<std::string> default_speech_models() {
  return {"full",
          "window2",
          "window4",
          "window8",
          "window16",
          "window32",
          "chunk16x4",
          "dilation2",
          "dilation4",
          "dilation2-window16",
          "dilation4-window16",
          "lstm-uni",
          "lstm-bi"};
}

SpeechFrameModel::SpeechFrameModel(const SpeechModelSpec& spec, const SpeechModelConfig& c,
                                   Rng& rng)
    : spec_(spec), config_(c) {
  if (c.classes < 2) fail<ValueError>("SpeechFrameModel", "classes must be >= 2, got ", c.classes);
  if (spec.kind == SpeechModelKind::kAttention) {
    encoder_ = std::make_unique<nn::SpeechEncoder>(encoder_config(c), rng, rng.next_u64());
    register_module("encoder", *encoder_);
    head_ = std::make_unique<nn::Linear>(c.d_model, c.classes, true, rng);
  } else {
    embed_ = std::make_unique<nn::Conv2dSubsampling4>(c.input_dim, c.d_model, rng);
    nn::RnnOptions o;
    o.input_size = c.d_model;
    o.hidden_size = matched_lstm_hidden(c, spec.bidirectional);
    o.num_layers = c.lstm_layers;
    o.batch_first = true;
    o.dropout = c.dropout;
    o.bidirectional = spec.bidirectional;
    lstm_ = std::make_unique<nn::LSTM>(o, rng, rng.next_u64());
    register_module("embed", *embed_);
    register_module("lstm", *lstm_);
    head_ = std::make_unique<nn::Linear>(o.hidden_size * (spec.bidirectional ? 2 : 1), c.classes,
                                         true, rng);
  }
  register_module("head", *head_);
}

Tensor SpeechFrameModel::forward(ConstTensorView feats, std::span<const int64_t> lengths,
                                 bool train, const Context& ctx) {
  constexpr const char* fn = "SpeechFrameModel::forward";
  if (feats.rank() != 3 || feats.dim(2) != config_.input_dim)
    fail<ShapeError>(fn, "feats must be (B, T, ", config_.input_dim, "), got ",
                     feats.shape().str());
  if (static_cast<int64_t>(lengths.size()) != feats.dim(0))
    fail<ShapeError>(fn, "need one length per batch entry: ", lengths.size(), " for ",
                     feats.shape().str());
  const int64_t T_out = nn::Conv2dSubsampling4::output_length(feats.dim(1));
  if (T_out < 1) fail<ShapeError>(fn, "need at least 7 frames, got ", feats.shape().str());
  std::vector<int64_t> out_lengths;
  for (int64_t n : lengths) {
    if (n < 0 || n > feats.dim(1))
      fail<ValueError>(fn, "lengths must be in [0, ", feats.dim(1), "], got ", n);
    out_lengths.push_back(std::max<int64_t>(1, nn::Conv2dSubsampling4::output_length(n)));
  }
  set_training(train);
  Tensor h;
  if (encoder_) {
    ops::AttentionMask mask = spec_.mask;
    mask.key_lengths = out_lengths;
    h = encoder_->forward(feats, mask, train ? &encoder_cache_ : nullptr, ctx);
  } else {
    const Tensor x = embed_->forward(feats, train ? &embed_cache_ : nullptr, ctx);
    h = lstm_->forward(x.view(), {}, {}, out_lengths, train ? &lstm_cache_ : nullptr, ctx).output;
  }
  return head_->forward(h.view(), train ? &head_cache_ : nullptr, ctx);
}

void SpeechFrameModel::backward(ConstTensorView dlogits, const Context& ctx) {
  const Tensor dh = head_->backward(dlogits, head_cache_, ctx);
  if (encoder_) {
    encoder_->backward(dh.view(), encoder_cache_, ctx);
  } else {
    const nn::RNNBase::Grads g = lstm_->backward(dh.view(), {}, {}, lstm_cache_, ctx);
    embed_->backward(g.dx.view(), embed_cache_, ctx);
  }
}

Tensor SpeechFrameModel::attention_map(ConstTensorView feats, int64_t layer, const Context& ctx) {
  constexpr const char* fn = "SpeechFrameModel::attention_map";
  if (!encoder_) fail<ValueError>(fn, "model '", spec_.name, "' has no attention");
  if (layer < 0 || layer >= config_.layers)
    fail<ValueError>(fn, "layer must be in [0, ", config_.layers, "), got ", layer);
  if (feats.rank() != 3 || feats.dim(0) != 1)
    fail<ShapeError>(fn, "feats must be (1, T, F), got ", feats.shape().str());
  set_training(false);
  Tensor x = encoder_->embed.forward(feats, nullptr, ctx);
  encoder_->add_positions(x.view(), 0, ctx);
  nn::AttentionOptions opts;
  opts.mask = spec_.mask;
  for (int64_t i = 0; i < layer; ++i)
    x = encoder_->encoder.layer(i).forward(x.view(), opts, nullptr, ctx);
  nn::TransformerEncoderLayer& l = encoder_->encoder.layer(layer);
  const Tensor h =
      l.config().norm_first ? l.norm1.forward(x.view(), nullptr, ctx) : Tensor::copy_of(x.view());
  opts.need_weights = true;
  Tensor weights;
  l.self_attn.forward(h.view(), h.view(), h.view(), opts, nullptr, ctx, &weights);
  return Tensor::copy_of(weights.view().select(0, 0));
}

double SpeechFrameModel::attention_flops(int64_t T) const {
  if (!encoder_) return 0.0;
  double pairs = 0.0;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s < T; ++s) pairs += spec_.mask.key_visible(0, t, s) ? 1.0 : 0.0;
  return pairs * 4.0 * static_cast<double>(config_.d_model * config_.layers);
}

}  // namespace attn::examples
