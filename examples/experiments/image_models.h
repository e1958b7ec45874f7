// SPDX-License-Identifier: MIT
// The lecture's three ways to classify an image, built from attn's parts (issue: CNN vs
// self-attention on Fashion-MNIST):
//   CNN        two conv blocks (3×3 conv, BatchNorm, 2×2 max pool, ReLU: 28 → 14 → 7) and an MLP
//              head. Self-attention restricted to a 3×3 receptive field, in the lecture's words.
//   ViT        the image as a sequence of 7×7 = 49 patch vectors (a 4×4 stride-4 Conv2d), a 2-D
//              positional encoding (learned, or the lecture's sinusoidal one per axis), a class
//              token or mean pooling, a pre-norm transformer encoder and a linear head. Attention
//              with a learned receptive field: every patch sees every patch from the first layer.
//   CNN+SAGAN  the CNN with a SelfAttention2d block after its first conv block (14×14 = 196
//              positions of 32 channels), as SAGAN adds attention to a convolutional network.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "attn/attn.h"

namespace attn::examples {

enum class ImageModelKind { kCNN, kViT, kCNNSagan };
const char* image_model_name(ImageModelKind kind);          // "cnn" / "vit" / "cnn-sagan"
ImageModelKind parse_image_model(const std::string& name);  // throws ValueError listing the names

struct ImageModelConfig {
  int64_t channels = 1, height = 28, width = 28, classes = 10;  // the input and the labels
  // CNN (and CNN+SAGAN): conv widths of the two blocks, the hidden width of the head.
  int64_t conv1 = 32, conv2 = 64, hidden = 128;
  double dropout = 0.25;  // before the CNN's last linear layer; in the ViT's encoder (0.1 of it)
  nn::SaganForm sagan_form = nn::SaganForm::kPaper;
  // ViT
  int64_t patch = 4, d_model = 64, nhead = 4, layers = 4, dim_feedforward = 128;
  std::string positional = "learned";  // or "sinusoidal" (2-D: half the channels per axis)
  bool class_token = false;            // false: mean pooling over the patches
};

class ImageModel : public nn::Module {
 public:
  // x (B, C, H, W) -> logits (B, classes). train: training mode (batch statistics, dropout) and the
  // caches backward needs.
  virtual Tensor forward(ConstTensorView x, bool train, const Context& ctx) = 0;
  virtual void backward(ConstTensorView dlogits, const Context& ctx) = 0;
  // The SAGAN block's attention map for x (B, N, S) in evaluation mode; undefined for models
  // without one.
  virtual Tensor attention_map(ConstTensorView x, const Context& ctx);
  // Side of the grid the attention map's positions lie on (14 for the CNN+SAGAN block).
  virtual int64_t attention_grid() const { return 0; }
};

std::unique_ptr<ImageModel> make_image_model(ImageModelKind kind, const ImageModelConfig& c,
                                             Rng& rng);

// The configuration as JSON (saved beside checkpoints, so a saved model can be rebuilt) and back.
std::string image_config_json(ImageModelKind kind, const ImageModelConfig& c);
std::pair<ImageModelKind, ImageModelConfig> parse_image_config_json(const std::string& json);

}  // namespace attn::examples
