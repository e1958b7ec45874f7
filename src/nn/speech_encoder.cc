// SPDX-License-Identifier: MIT
// Conv2dSubsampling4, SpeechEncoder and its JSON config (include/attn/nn/speech_encoder.h). The
// StreamingEncoder is in streaming_encoder.cc.
#include "attn/nn/speech_encoder.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "attn/io/safetensors.h"
#include "attn/ops/activation.h"
#include "attn/ops/positional.h"
#include "io/internal/file_bytes.h"
#include "nn/internal/json_config.h"

namespace attn::nn {

namespace {

ops::Conv2dOptions stride2() {
  ops::Conv2dOptions o;
  o.stride_h = o.stride_w = 2;
  return o;
}

int64_t halved(int64_t n) { return n >= 3 ? (n - 3) / 2 + 1 : 0; }  // a 3-wide stride-2 conv

Tensor relu(const Tensor& h, const Context& ctx) {
  Tensor a = Tensor::uninitialized(h.shape());
  ops::relu_forward(h.view(), a.view(), ctx);
  return a;
}

}  // namespace

Conv2dSubsampling4::Conv2dSubsampling4(int64_t F, int64_t C, Rng& rng)
    : conv1(1, C, 3, 3, stride2(), true, rng),
      conv2(C, C, 3, 3, stride2(), true, rng),
      out(C * halved(halved(F)), C, true, rng),
      F_(F),
      C_(C) {
  if (halved(halved(F)) < 1)
    fail<ValueError>("Conv2dSubsampling4",
                     "input_dim must be >= 7 (two 3×3 stride-2 convolutions), got ", F);
  register_module("conv1", conv1);
  register_module("conv2", conv2);
  register_module("out", out);
}

int64_t Conv2dSubsampling4::output_length(int64_t T) { return halved(halved(T)); }

Tensor Conv2dSubsampling4::forward(ConstTensorView x, Cache* cache, const Context& ctx) {
  constexpr const char* fn = "Conv2dSubsampling4::forward";
  if (!x.defined() || x.rank() != 3 || x.dim(2) != F_)
    fail<ShapeError>(fn, "x must be (B, T, ", F_, "), got ",
                     x.defined() ? x.shape().str() : "nothing");
  const int64_t B = x.dim(0), T2 = output_length(x.dim(1));
  if (T2 == 0) {  // fewer than 7 frames: nothing to emit (as WeNet, which drops them)
    if (cache) *cache = Cache{};
    return Tensor(Shape{B, 0, C_});
  }
  Tensor h1 = conv1.forward(x.unsqueeze(1), cache ? &cache->conv1 : nullptr, ctx);
  const Tensor a1 = relu(h1, ctx);
  Tensor h2 = conv2.forward(a1.view(), cache ? &cache->conv2 : nullptr, ctx);
  const Tensor a2 = relu(h2, ctx);
  // (B, C, T', F') -> (B, T', C·F'): each encoder frame is every channel's frequency column.
  const int64_t F2 = a2.dim(3);
  const Tensor rows = Tensor::copy_of(a2.view().permute({0, 2, 1, 3}));
  Tensor y =
      out.forward(rows.view().reshape(Shape{B, T2, C_ * F2}), cache ? &cache->out : nullptr, ctx);
  if (cache) {
    cache->h1 = std::move(h1);
    cache->h2 = std::move(h2);
  }
  return y;
}

Tensor Conv2dSubsampling4::backward(ConstTensorView dout, const Cache& cache, const Context& ctx) {
  constexpr const char* fn = "Conv2dSubsampling4::backward";
  if (!cache.h2.defined())
    fail<ValueError>(fn, "the cache is empty: run forward with a cache (on >= 7 frames) first");
  const int64_t B = cache.h2.dim(0), T2 = cache.h2.dim(2), F2 = cache.h2.dim(3);
  if (!dout.defined() || !(dout.shape() == Shape{B, T2, C_}))
    fail<ShapeError>(fn, "dout must be ", Shape{B, T2, C_}.str(), ", got ",
                     dout.defined() ? dout.shape().str() : "nothing");
  const Tensor drows = out.backward(dout, cache.out, ctx);  // (B, T', C·F')
  const Tensor da2 =
      Tensor::copy_of(drows.view().reshape(Shape{B, T2, C_, F2}).permute({0, 2, 1, 3}));
  Tensor dh2(cache.h2.shape());
  ops::relu_backward(cache.h2.view(), da2.view(), dh2.view(), ctx);
  const Tensor da1 = conv2.backward(dh2.view(), cache.conv2, ctx);
  Tensor dh1(cache.h1.shape());
  ops::relu_backward(cache.h1.view(), da1.view(), dh1.view(), ctx);
  Tensor dx = conv1.backward(dh1.view(), cache.conv1, ctx);  // (B, 1, T, F)
  return Tensor::copy_of(dx.view().select(1, 0));
}

// ------------------------------------------------------------------------------------ encoder

SpeechEncoder::SpeechEncoder(const SpeechEncoderConfig& config, Rng& rng, uint64_t seed)
    : embed(config.input_dim, config.layer.d_model, rng),
      encoder(config.layer, config.num_layers, /*final_norm=*/true, rng, seed),
      config_(config) {
  register_module("embed", embed);
  register_module("encoder", encoder);
}

void SpeechEncoder::add_positions(TensorView x, int64_t start_pos, const Context& ctx) const {
  const auto scale = static_cast<float>(std::sqrt(static_cast<double>(d_model())));
  for_each_offset(x.shape(), x.strides(), [&](int64_t o) { x.at_offset(o) *= scale; });
  ops::add_sinusoidal_encoding(x, x, start_pos, ctx);
}

Tensor SpeechEncoder::forward(ConstTensorView feats, const ops::AttentionMask& mask, Cache* cache,
                              const Context& ctx, int64_t start_pos) {
  Tensor x = embed.forward(feats, cache ? &cache->embed : nullptr, ctx);
  if (x.dim(1) == 0) {
    if (cache) cache->encoder = {};
    return x;
  }
  add_positions(x.view(), start_pos, ctx);
  AttentionOptions opts;
  opts.mask = mask;
  opts.start_pos = start_pos;
  return encoder.forward(x.view(), opts, cache ? &cache->encoder : nullptr, ctx);
}

Tensor SpeechEncoder::backward(ConstTensorView dout, const Cache& cache, const Context& ctx) {
  Tensor g = encoder.backward(dout, cache.encoder, ctx);
  const auto scale = static_cast<float>(std::sqrt(static_cast<double>(d_model())));
  for (float& v : g.values()) v *= scale;  // d(x·√C + PE)/dx = √C
  return embed.backward(g.view(), cache.embed, ctx);
}

// ------------------------------------------------------------------------------------- config

namespace {

constexpr const char* kWhat = "speech encoder config";

[[noreturn]] void bad_config(const std::string& source, const std::string& why) {
  internal::bad_config(kWhat, source, why);
}

template <typename T>
T get(const nlohmann::json& j, const char* key, T fallback, const std::string& source) {
  return internal::config_value<T>(kWhat, j, key, fallback, source);
}

}  // namespace

SpeechEncoderConfig parse_speech_encoder_config(const std::string& text,
                                                const std::string& source) {
  const nlohmann::json j = internal::parse_config_object(
      kWhat, text, source,
      {"input_dim", "d_model", "nhead", "dim_feedforward", "num_layers", "norm_first",
       "layer_norm_eps", "dropout", "activation", "rope"});
  SpeechEncoderConfig c;
  auto& l = c.layer;
  c.input_dim = get<int64_t>(j, "input_dim", c.input_dim, source);
  c.num_layers = get<int64_t>(j, "num_layers", c.num_layers, source);
  l.d_model = get<int64_t>(j, "d_model", l.d_model, source);
  l.nhead = get<int64_t>(j, "nhead", l.nhead, source);
  l.dim_feedforward = get<int64_t>(j, "dim_feedforward", l.dim_feedforward, source);
  l.norm_first = get<bool>(j, "norm_first", l.norm_first, source);
  l.layer_norm_eps = get<double>(j, "layer_norm_eps", l.layer_norm_eps, source);
  l.dropout = get<double>(j, "dropout", l.dropout, source);
  l.rope.enabled = get<bool>(j, "rope", false, source);
  const std::string activation =
      get<std::string>(j, "activation", activation_name(l.activation), source);
  if (activation != "relu" && activation != "gelu")
    bad_config(source, "\"activation\" must be \"relu\" or \"gelu\", got \"" + activation + "\"");
  l.activation = parse_activation(activation);
  if (Conv2dSubsampling4::output_length(c.input_dim) < 1)
    bad_config(source, "input_dim must be >= 7, got " + std::to_string(c.input_dim));
  if (l.d_model < 1 || l.nhead < 1 || l.d_model % l.nhead != 0)
    bad_config(source, "d_model (" + std::to_string(l.d_model) +
                           ") must be a positive multiple of nhead (" + std::to_string(l.nhead) +
                           ")");
  if (c.num_layers < 1) bad_config(source, "num_layers must be >= 1");
  if (l.dim_feedforward < 1) bad_config(source, "dim_feedforward must be >= 1");
  if (!(l.layer_norm_eps >= 0.0)) bad_config(source, "layer_norm_eps must be >= 0");
  if (!(l.dropout >= 0.0 && l.dropout < 1.0)) bad_config(source, "dropout must be in [0, 1)");
  if (l.rope.enabled && (l.d_model / l.nhead) % 2 != 0)
    bad_config(source, "\"rope\" needs an even head size");
  return c;
}

std::string speech_encoder_config_to_json(const SpeechEncoderConfig& c) {
  const auto& l = c.layer;
  const nlohmann::json j = {{"input_dim", c.input_dim},
                            {"d_model", l.d_model},
                            {"nhead", l.nhead},
                            {"dim_feedforward", l.dim_feedforward},
                            {"num_layers", c.num_layers},
                            {"norm_first", l.norm_first},
                            {"activation", activation_name(l.activation)},
                            {"layer_norm_eps", l.layer_norm_eps},
                            {"dropout", l.dropout},
                            {"rope", l.rope.enabled}};
  return j.dump(2) + "\n";
}

// ----------------------------------------------------------------------------- directories

void save_speech_encoder(const std::string& dir, const SpeechEncoder& model) {
  constexpr const char* fn = "nn::save_speech_encoder";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail<IoError>(fn, "cannot create '", dir, "': ", ec.message());
  const std::string json = speech_encoder_config_to_json(model.config());
  io::internal::write_file_bytes(
      fn, (std::filesystem::path(dir) / "config.json").string(),
      std::span(reinterpret_cast<const std::byte*>(json.data()), json.size()));
  std::vector<io::NamedTensorView> tensors;
  for (const auto& [name, view] : model.state_dict()) tensors.emplace_back(name, view);
  io::write_safetensors((std::filesystem::path(dir) / "model.safetensors").string(), tensors);
}

std::unique_ptr<SpeechEncoder> load_speech_encoder(const std::string& dir) {
  constexpr const char* fn = "nn::load_speech_encoder";
  const std::string config_path = (std::filesystem::path(dir) / "config.json").string();
  const std::vector<std::byte> bytes = io::internal::read_file_bytes(fn, config_path);
  const SpeechEncoderConfig config = parse_speech_encoder_config(
      std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), config_path);
  Rng rng(0);
  auto model = std::make_unique<SpeechEncoder>(config, rng);
  model->load_state_dict(
      io::read_safetensors((std::filesystem::path(dir) / "model.safetensors").string()).tensors,
      /*strict=*/true);
  model->set_training(false);
  return model;
}

}  // namespace attn::nn
