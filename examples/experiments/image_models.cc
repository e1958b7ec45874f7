// SPDX-License-Identifier: MIT
// The CNN, the ViT and the CNN with a SAGAN block (image_models.h).
#include "image_models.h"

#include <algorithm>
#include <utility>
#include <nlohmann/json.hpp>

namespace attn::examples {
namespace {

using nn::Conv2d;

// (B, C, N) image planes <-> (B, N, C) token rows.
Tensor to_tokens(ConstTensorView x) {
  const int64_t B = x.dim(0), C = x.dim(1), N = x.dim(2) * x.dim(3);
  Tensor t = Tensor::uninitialized(Shape{B, N, C});
  copy(ConstTensorView(x.reshape(Shape{B, C, N}).transpose(1, 2)), t.view());
  return t;
}
Tensor to_planes(ConstTensorView tokens, int64_t H, int64_t W) {
  const int64_t B = tokens.dim(0), N = tokens.dim(1), C = tokens.dim(2);
  Tensor x = Tensor::uninitialized(Shape{B, C, H, W});
  copy(tokens, x.view().reshape(Shape{B, C, N}).transpose(1, 2));
  return x;
}

// conv 3×3 (padding 1) → BatchNorm2d → max pool 2×2 → ReLU. The pool runs before the ReLU: the
// same function (max and ReLU commute; the same max wins, gradients included) with the ReLU's
// forward and backward on a quarter of the values (they were ~10% of a training step,
// memory-bound).
struct ConvBlock : nn::Module {
  Conv2d conv;
  nn::BatchNorm2d bn;
  nn::Activation relu{nn::ActivationKind::kReLU};
  nn::MaxPool2d pool{ops::Pool2dOptions{}};
  struct Cache {
    Conv2d::Cache conv;
    nn::BatchNorm::Cache bn;
    nn::Activation::Cache relu;
    nn::MaxPool2d::Cache pool;
  } cache;

  ConvBlock(int64_t in, int64_t out, Rng& rng)
      : conv(in, out, 3, 3, {.pad_h = 1, .pad_w = 1}, false, rng), bn(out) {
    register_module("conv", conv);  // no conv bias: BatchNorm's shift replaces it
    register_module("bn", bn);
  }
  Tensor forward(ConstTensorView x, bool train, const Context& ctx) {
    // Each activation is handed to the next layer's cache, not copied there.
    Tensor h = conv.forward(x, train ? &cache.conv : nullptr, ctx);
    h = bn.forward(std::move(h), train ? &cache.bn : nullptr, ctx);
    h = pool.forward(std::move(h), train ? &cache.pool : nullptr, ctx);
    return relu.forward(std::move(h), train ? &cache.relu : nullptr, ctx);
  }
  Tensor backward(ConstTensorView dout, const Context& ctx) {
    Tensor g = relu.backward(dout, cache.relu, ctx);
    g = pool.backward(g, cache.pool, ctx);
    g = bn.backward(g, cache.bn, ctx);
    return conv.backward(g, cache.conv, ctx);
  }
};

// flatten → linear → ReLU → dropout → linear.
struct MlpHead : nn::Module {
  nn::Flatten flatten;
  nn::Linear fc1, fc2;
  nn::Activation relu{nn::ActivationKind::kReLU};
  nn::Dropout dropout;
  struct Cache {
    nn::Flatten::Cache flatten;
    nn::Linear::Cache fc1, fc2;
    nn::Activation::Cache relu;
    nn::Dropout::Cache dropout;
  } cache;

  MlpHead(int64_t in, int64_t hidden, int64_t classes, double p, Rng& rng)
      : fc1(in, hidden, true, rng), fc2(hidden, classes, true, rng), dropout(p, rng.next_u64()) {
    register_module("fc1", fc1);
    register_module("fc2", fc2);
    register_module("dropout", dropout);  // no parameters, but it must follow train()/eval()
  }
  Tensor forward(ConstTensorView x, bool train, const Context& ctx) {
    Tensor h = flatten.forward(x, train ? &cache.flatten : nullptr, ctx);
    h = fc1.forward(h, train ? &cache.fc1 : nullptr, ctx);
    h = relu.forward(std::move(h), train ? &cache.relu : nullptr, ctx);
    h = dropout.forward(h, train ? &cache.dropout : nullptr, ctx);
    return fc2.forward(h, train ? &cache.fc2 : nullptr, ctx);
  }
  Tensor backward(ConstTensorView dlogits, const Context& ctx) {
    Tensor g = fc2.backward(dlogits, cache.fc2, ctx);
    g = dropout.backward(g, cache.dropout, ctx);
    g = relu.backward(g, cache.relu, ctx);
    g = fc1.backward(g, cache.fc1, ctx);
    return flatten.backward(g, cache.flatten, ctx);
  }
};

// The CNN, with the SAGAN block between its blocks when `sagan`.
class Cnn : public ImageModel {
 public:
  Cnn(const ImageModelConfig& c, bool sagan, Rng& rng)
      : block1_(c.channels, c.conv1, rng),
        block2_(c.conv1, c.conv2, rng),
        head_(c.conv2 * (c.height / 4) * (c.width / 4), c.hidden, c.classes, c.dropout, rng) {
    register_module("block1", block1_);
    if (sagan) {
      attention_ = std::make_unique<nn::SelfAttention2d>(c.conv1, c.sagan_form, rng);
      register_module("attention", *attention_);
    }
    register_module("block2", block2_);
    register_module("head", head_);
    grid_ = c.height / 2;
  }
  Tensor forward(ConstTensorView x, bool train, const Context& ctx) override {
    set_training(train);
    Tensor h = block1_.forward(x, train, ctx);
    if (attention_) h = attention_->forward(h, train ? &attention_cache_ : nullptr, ctx);
    h = block2_.forward(h, train, ctx);
    return head_.forward(h, train, ctx);
  }
  void backward(ConstTensorView dlogits, const Context& ctx) override {
    Tensor g = block2_.backward(head_.backward(dlogits, ctx), ctx);
    if (attention_) g = attention_->backward(g, attention_cache_, ctx);
    block1_.backward(g, ctx);
  }
  Tensor attention_map(ConstTensorView x, const Context& ctx) override {
    if (!attention_) return {};
    set_training(false);
    Tensor map;
    attention_->forward(block1_.forward(x, false, ctx), nullptr, ctx, &map);
    return map;
  }
  int64_t attention_grid() const override { return attention_ ? grid_ : 0; }

 private:
  ConvBlock block1_, block2_;
  std::unique_ptr<nn::SelfAttention2d> attention_;
  nn::SelfAttention2d::Cache attention_cache_;
  MlpHead head_;
  int64_t grid_ = 0;
};

nn::EncoderLayerConfig vit_layer(const ImageModelConfig& c) {
  nn::EncoderLayerConfig l;
  l.d_model = c.d_model;
  l.nhead = c.nhead;
  l.dim_feedforward = c.dim_feedforward;
  l.dropout = c.dropout * 0.4;  // 0.1 at the default 0.25
  l.activation = nn::ActivationKind::kGELU;
  l.norm_first = true;  // pre-norm, as ViT
  return l;
}

// The 2-D sinusoidal encoding (N, C): the first C/2 channels are the lecture's PE of the patch's
// row, the other C/2 that of its column.
Tensor sinusoidal_2d(int64_t gh, int64_t gw, int64_t C) {
  const int64_t half = C / 2;
  Tensor rows(Shape{gh, half}), cols(Shape{gw, C - half}), pe(Shape{gh * gw, C});
  ops::sinusoidal_encoding(rows.view());
  ops::sinusoidal_encoding(cols.view());
  for (int64_t r = 0; r < gh; ++r)
    for (int64_t q = 0; q < gw; ++q) {
      for (int64_t k = 0; k < half; ++k) pe(r * gw + q, k) = rows(r, k);
      for (int64_t k = half; k < C; ++k) pe(r * gw + q, k) = cols(q, k - half);
    }
  return pe;
}

class Vit : public ImageModel {
 public:
  Vit(const ImageModelConfig& c, Rng& rng)
      : c_(c),
        gh_(c.height / c.patch),
        gw_(c.width / c.patch),
        tokens_(gh_ * gw_ + (c.class_token ? 1 : 0)),
        patch_(c.channels, c.d_model, c.patch, c.patch, {.stride_h = c.patch, .stride_w = c.patch},
               true, rng),
        encoder_(vit_layer(c), c.layers, true, rng, rng.next_u64()),
        head_(c.d_model, c.classes, true, rng) {
    if (c.height % c.patch || c.width % c.patch)
      fail<ValueError>("ViT", "the patch size ", c.patch, " must divide the image ", c.height, "x",
                       c.width);
    register_module("patch_embed", patch_);
    if (c.class_token) {
      cls_ = &register_parameter("cls_token", Shape{1, 1, c.d_model});
      for (float& v : cls_->value.values()) v = static_cast<float>(0.02 * rng.normal());
    }
    if (c.positional == "learned") {
      pos_ = &register_parameter("pos_embedding", Shape{1, tokens_, c.d_model});
      for (float& v : pos_->value.values()) v = static_cast<float>(0.02 * rng.normal());
    } else if (c.positional == "sinusoidal") {
      fixed_pos_ = sinusoidal_2d(gh_, gw_, c.d_model);
    } else {
      fail<ValueError>("ViT", "positional must be 'learned' or 'sinusoidal', got '", c.positional,
                       "'");
    }
    register_module("encoder", encoder_);
    register_module("head", head_);
  }

  Tensor forward(ConstTensorView x, bool train, const Context& ctx) override {
    set_training(train);
    const Tensor patches = patch_.forward(x, train ? &patch_cache_ : nullptr, ctx);
    const Tensor grid = to_tokens(patches);  // (B, 49, C)
    const int64_t B = x.dim(0), C = c_.d_model, first = c_.class_token ? 1 : 0;
    // seq (B, tokens, C) = [class token,] patches, plus the positional encoding.
    Tensor seq = Tensor::uninitialized(Shape{B, tokens_, C});
    const float* pos = pos_ ? pos_->value.data() : nullptr;
    for (int64_t b = 0; b < B; ++b) {
      float* row = seq.data() + b * tokens_ * C;
      if (cls_) std::copy(cls_->value.data(), cls_->value.data() + C, row);
      std::copy(grid.data() + b * (tokens_ - first) * C,
                grid.data() + (b + 1) * (tokens_ - first) * C, row + first * C);
      if (pos) {
        for (int64_t i = 0; i < tokens_ * C; ++i) row[i] += pos[i];
      } else {  // the fixed encoding covers the patches; a class token gets none
        for (int64_t i = 0; i < (tokens_ - first) * C; ++i)
          row[first * C + i] += fixed_pos_.data()[i];
      }
    }
    const Tensor h = encoder_.forward(seq, {}, train ? &encoder_cache_ : nullptr, ctx);
    Tensor pooled = Tensor::uninitialized(Shape{B, C});
    for (int64_t b = 0; b < B; ++b) {
      const float* hb = h.data() + b * tokens_ * C;
      float* out = pooled.data() + b * C;
      if (cls_) {
        std::copy(hb, hb + C, out);
        continue;
      }
      for (int64_t k = 0; k < C; ++k) {
        double sum = 0.0;
        for (int64_t t = 0; t < tokens_; ++t) sum += static_cast<double>(hb[t * C + k]);
        out[k] = static_cast<float>(sum / static_cast<double>(tokens_));
      }
    }
    B_ = B;
    return head_.forward(pooled, train ? &head_cache_ : nullptr, ctx);
  }

  void backward(ConstTensorView dlogits, const Context& ctx) override {
    const Tensor dpooled = head_.backward(dlogits, head_cache_, ctx);
    const int64_t C = c_.d_model, first = c_.class_token ? 1 : 0;
    Tensor dh(Shape{B_, tokens_, C});
    const float share = 1.0f / static_cast<float>(tokens_);
    for (int64_t b = 0; b < B_; ++b) {
      const float* g = dpooled.data() + b * C;
      float* out = dh.data() + b * tokens_ * C;
      for (int64_t t = 0; t < (cls_ ? 1 : tokens_); ++t)
        for (int64_t k = 0; k < C; ++k) out[t * C + k] = cls_ ? g[k] : g[k] * share;
    }
    const Tensor dseq = encoder_.backward(dh, encoder_cache_, ctx);
    for (int64_t b = 0; b < B_; ++b) {
      const float* g = dseq.data() + b * tokens_ * C;
      if (pos_)
        for (int64_t i = 0; i < tokens_ * C; ++i) pos_->grad.data()[i] += g[i];
      if (cls_)
        for (int64_t k = 0; k < C; ++k) cls_->grad.data()[k] += g[k];
    }
    Tensor dgrid = Tensor::uninitialized(Shape{B_, gh_ * gw_, C});
    copy(ConstTensorView(dseq.view().slice(1, first, tokens_)), dgrid.view());
    patch_.backward(to_planes(dgrid, gh_, gw_), patch_cache_, ctx);
  }

 private:
  ImageModelConfig c_;
  int64_t gh_, gw_, tokens_;
  Conv2d patch_;
  nn::TransformerEncoder encoder_;
  nn::Linear head_;
  nn::Parameter* cls_ = nullptr;
  nn::Parameter* pos_ = nullptr;
  Tensor fixed_pos_;  // (N, C) for the sinusoidal encoding
  Conv2d::Cache patch_cache_;
  nn::TransformerEncoder::Cache encoder_cache_;
  nn::Linear::Cache head_cache_;
  int64_t B_ = 0;
};

}  // namespace

Tensor ImageModel::attention_map(ConstTensorView, const Context&) { return {}; }

const char* image_model_name(ImageModelKind kind) {
  switch (kind) {
    case ImageModelKind::kCNN:
      return "cnn";
    case ImageModelKind::kViT:
      return "vit";
    case ImageModelKind::kCNNSagan:
      return "cnn-sagan";
  }
  return "?";
}

ImageModelKind parse_image_model(const std::string& name) {
  for (auto k : {ImageModelKind::kCNN, ImageModelKind::kViT, ImageModelKind::kCNNSagan})
    if (name == image_model_name(k)) return k;
  fail<ValueError>("parse_image_model", "'", name, "' is not a model (cnn, vit, cnn-sagan)");
}

std::unique_ptr<ImageModel> make_image_model(ImageModelKind kind, const ImageModelConfig& c,
                                             Rng& rng) {
  if (c.height % 4 || c.width % 4)
    fail<ValueError>("make_image_model", "the image sides must be multiples of 4, got ", c.height,
                     "x", c.width);
  if (kind == ImageModelKind::kViT) return std::make_unique<Vit>(c, rng);
  return std::make_unique<Cnn>(c, kind == ImageModelKind::kCNNSagan, rng);
}

std::string image_config_json(ImageModelKind kind, const ImageModelConfig& c) {
  const nlohmann::json j = {{"model", image_model_name(kind)},
                            {"channels", c.channels},
                            {"height", c.height},
                            {"width", c.width},
                            {"classes", c.classes},
                            {"conv1", c.conv1},
                            {"conv2", c.conv2},
                            {"hidden", c.hidden},
                            {"dropout", c.dropout},
                            {"sagan_form", nn::sagan_form_name(c.sagan_form)},
                            {"patch", c.patch},
                            {"d_model", c.d_model},
                            {"nhead", c.nhead},
                            {"layers", c.layers},
                            {"dim_feedforward", c.dim_feedforward},
                            {"positional", c.positional},
                            {"class_token", c.class_token}};
  return j.dump(2);
}

std::pair<ImageModelKind, ImageModelConfig> parse_image_config_json(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail<ValueError>("parse_image_config_json", "not valid JSON: ", e.what());
  }
  ImageModelConfig c;
  try {
    c.channels = j.at("channels"), c.height = j.at("height"), c.width = j.at("width");
    c.classes = j.at("classes"), c.conv1 = j.at("conv1"), c.conv2 = j.at("conv2");
    c.hidden = j.at("hidden"), c.dropout = j.at("dropout");
    c.sagan_form = nn::parse_sagan_form(j.at("sagan_form"));
    c.patch = j.at("patch"), c.d_model = j.at("d_model"), c.nhead = j.at("nhead");
    c.layers = j.at("layers"), c.dim_feedforward = j.at("dim_feedforward");
    c.positional = j.at("positional"), c.class_token = j.at("class_token");
    return {parse_image_model(j.at("model")), c};
  } catch (const nlohmann::json::exception& e) {
    fail<ValueError>("parse_image_config_json",
                     "a field is missing or has the wrong type: ", e.what());
  }
}

}  // namespace attn::examples
