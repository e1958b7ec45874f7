// SPDX-License-Identifier: MIT
// EncoderModel and its JSON config (include/attn/nn/encoder_model.h).
#include "attn/nn/encoder_model.h"

#include <nlohmann/json.hpp>

#include "nn/internal/json_config.h"

namespace attn::nn {

namespace {

constexpr const char* kPositionalNames[] = {"none", "sinusoidal", "learned",
                                            "rope", "alibi",      "relative"};

constexpr const char* kWhat = "encoder config";

[[noreturn]] void bad_config(const std::string& source, const std::string& why) {
  internal::bad_config(kWhat, source, why);
}

template <typename T>
T get(const nlohmann::json& j, const char* key, T fallback, const std::string& source) {
  return internal::config_value<T>(kWhat, j, key, fallback, source);
}

}  // namespace

EncoderModelConfig parse_encoder_config(const std::string& text, const std::string& source) {
  const nlohmann::json j = internal::parse_config_object(
      kWhat, text, source,
      {"d_model", "nhead", "dim_feedforward", "num_layers", "norm_first", "activation",
       "layer_norm_eps", "final_norm", "batch_first", "bias", "positional", "max_len", "dropout",
       "rope_base"});
  for (const char* required : {"d_model", "nhead", "num_layers"})
    if (!j.contains(required))
      bad_config(source, std::string("missing required key \"") + required + "\"");
  EncoderModelConfig c;
  auto& l = c.layer;
  l.d_model = get<int64_t>(j, "d_model", 0, source);
  l.nhead = get<int64_t>(j, "nhead", 0, source);
  l.dim_feedforward = get<int64_t>(j, "dim_feedforward", 2048, source);
  l.norm_first = get<bool>(j, "norm_first", false, source);
  l.layer_norm_eps = get<double>(j, "layer_norm_eps", 1e-5, source);
  l.dropout = get<double>(j, "dropout", 0.1, source);
  l.bias = get<bool>(j, "bias", true, source);
  const std::string activation = get<std::string>(j, "activation", "relu", source);
  if (activation != "relu" && activation != "gelu")
    bad_config(source, "\"activation\" must be \"relu\" or \"gelu\", got \"" + activation + "\"");
  l.activation = parse_activation(activation);
  c.num_layers = get<int64_t>(j, "num_layers", 1, source);
  c.final_norm = get<bool>(j, "final_norm", false, source);
  c.batch_first = get<bool>(j, "batch_first", true, source);
  c.max_len = get<int64_t>(j, "max_len", 0, source);
  const std::string pos = get<std::string>(j, "positional", "none", source);
  bool found = false;
  for (size_t i = 0; i < std::size(kPositionalNames); ++i)
    if (pos == kPositionalNames[i]) {
      c.positional = static_cast<PositionalKind>(i);
      found = true;
    }
  if (!found)
    bad_config(
        source,
        "\"positional\" must be one of none, sinusoidal, learned, rope, alibi, relative; got \"" +
            pos + "\"");
  l.rope.enabled = c.positional == PositionalKind::kRope;
  l.rope.base = get<double>(j, "rope_base", 10000.0, source);
  if (l.d_model < 1 || l.nhead < 1 || l.d_model % l.nhead != 0)
    bad_config(source, "d_model (" + std::to_string(l.d_model) +
                           ") must be a positive multiple of nhead (" + std::to_string(l.nhead) +
                           ")");
  if (c.num_layers < 1) bad_config(source, "num_layers must be >= 1");
  if (l.dim_feedforward < 1) bad_config(source, "dim_feedforward must be >= 1");
  if (!(l.layer_norm_eps >= 0.0)) bad_config(source, "layer_norm_eps must be >= 0");
  if (!(l.dropout >= 0.0 && l.dropout < 1.0)) bad_config(source, "dropout must be in [0, 1)");
  if (c.positional == PositionalKind::kLearned && c.max_len < 1)
    bad_config(source, "positional \"learned\" needs \"max_len\" >= 1");
  if (c.positional == PositionalKind::kRope && (l.d_model / l.nhead) % 2 != 0)
    bad_config(source, "positional \"rope\" needs an even head size, d_model / nhead = " +
                           std::to_string(l.d_model / l.nhead));
  return c;
}

std::string encoder_config_to_json(const EncoderModelConfig& c) {
  const auto& l = c.layer;
  nlohmann::json j = {{"d_model", l.d_model},
                      {"nhead", l.nhead},
                      {"dim_feedforward", l.dim_feedforward},
                      {"num_layers", c.num_layers},
                      {"norm_first", l.norm_first},
                      {"activation", activation_name(l.activation)},
                      {"layer_norm_eps", l.layer_norm_eps},
                      {"final_norm", c.final_norm},
                      {"batch_first", c.batch_first},
                      {"bias", l.bias},
                      {"dropout", l.dropout},
                      {"positional", kPositionalNames[static_cast<int>(c.positional)]}};
  if (c.positional == PositionalKind::kLearned) j["max_len"] = c.max_len;
  if (c.positional == PositionalKind::kRope) j["rope_base"] = l.rope.base;
  return j.dump(2);
}

EncoderModel::EncoderModel(const EncoderModelConfig& config, Rng& rng, uint64_t dropout_seed)
    : encoder(config.layer, config.num_layers, config.final_norm, rng, dropout_seed),
      config_(config) {
  register_module("", encoder);
  switch (config.positional) {
    case PositionalKind::kSinusoidal:
      sinusoidal_ = std::make_unique<SinusoidalPositionalEncoding>(config.layer.d_model);
      break;
    case PositionalKind::kLearned:
      learned_ =
          std::make_unique<LearnedPositionalEncoding>(config.max_len, config.layer.d_model, rng);
      register_module("pos_embedding", *learned_);
      break;
    case PositionalKind::kRelative:
      relative_ = std::make_unique<RelativePositionBias>(config.layer.nhead, rng);
      register_module("", *relative_);
      break;
    default:
      break;
  }
}

Tensor EncoderModel::forward(ConstTensorView x, const AttentionOptions& opts, Cache* cache,
                             const Context& ctx) {
  constexpr const char* fn = "EncoderModel::forward";
  if (!x.defined() || x.rank() != 3 || x.dim(2) != config_.layer.d_model)
    fail<ShapeError>(fn, "input must be ", config_.batch_first ? "(B, T, C)" : "(T, B, C)",
                     " with C = ", config_.layer.d_model, ", got ",
                     x.defined() ? x.shape().str() : "nothing");
  const ConstTensorView xb = config_.batch_first ? x : x.transpose(0, 1);
  Tensor h = Tensor::copy_of(xb);
  if (sinusoidal_) h = sinusoidal_->forward(h.view(), opts.start_pos, ctx);
  if (learned_) h = learned_->forward(h.view(), opts.start_pos, ctx);
  AttentionOptions o = opts;
  if (config_.positional == PositionalKind::kAlibi)
    o.mask.alibi_slopes = ops::alibi_slopes(config_.layer.nhead);
  Tensor bias;
  if (relative_) {
    if (o.attn_mask.defined())
      fail<ValueError>(fn, "positional \"relative\" cannot be combined with an attn_mask");
    bias = relative_->forward(h.dim(1), h.dim(1), 0);
    o.attn_mask = bias.view();
    o.attn_mask_grad = cache != nullptr;
  }
  Tensor y = encoder.forward(h.view(), o, cache ? &cache->encoder : nullptr, ctx);
  if (cache) {
    cache->bias = std::move(bias);  // the layers' caches view it; moving keeps the buffer
    cache->start_pos = opts.start_pos;
  }
  if (config_.batch_first) return y;
  return Tensor::copy_of(y.view().transpose(0, 1));
}

Tensor EncoderModel::backward(ConstTensorView dout, const Cache& cache, const Context& ctx) {
  const ConstTensorView db = config_.batch_first ? dout : dout.transpose(0, 1);
  Tensor dbias;
  Tensor g = encoder.backward(db, cache.encoder, ctx, relative_ ? &dbias : nullptr);
  if (relative_ && dbias.defined()) relative_->backward(dbias.view(), 0);
  if (learned_) g = learned_->backward(g.view(), cache.start_pos, ctx);
  if (config_.batch_first) return g;
  return Tensor::copy_of(g.view().transpose(0, 1));
}

}  // namespace attn::nn
