// SPDX-License-Identifier: MIT
// Training and evaluating an image model on Fashion-MNIST with train::fit: the loop behind
// `attn train fashion-mnist` and `attn experiment images`.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "attn/attn.h"
#include "image_models.h"

namespace attn::examples {

struct ImageTrainOptions {
  // The budget: max(epochs · n, min_examples) training examples for a training set of n images,
  // in batches of `batch` (so a small set is seen for more epochs, up to the same minimum number of
  // optimiser steps for every model and size).
  int64_t epochs = 10, min_examples = 0, batch = 128;
  double lr = 2e-3, min_lr = 1e-5, weight_decay = 0.01, clip = 5.0;
  double warmup_fraction = 0.03;  // of the steps
  double label_smoothing = 0.1;   // of the cross-entropy targets, as torch's label_smoothing
  train::Augmentation augmentation{.crop_padding = 2, .horizontal_flip = true};
  bool augment = true;
  int64_t evaluations = 10;    // held-out evaluations spread over the run (the curve)
  int64_t eval_images = 2000;  // test images each of them uses (the final test uses all)
  uint64_t seed = 0;
  bool progress = true;
  std::string csv_path, checkpoint_path;  // "" = none
};

struct ImageTrainResult {
  double test_accuracy = 0.0;  // on the whole test set, after training
  int64_t parameters = 0, steps = 0, examples = 0, train_size = 0;
  double train_seconds = 0.0;  // training steps only (no evaluation)
  std::vector<double> losses;
  std::vector<int64_t> eval_steps;
  std::vector<double> eval_accuracy;
};

// The steps the budget gives a training set of n images.
int64_t image_train_steps(const ImageTrainOptions& o, int64_t n);

// Trains `model` on the training images `subset` and tests it on all of `test`.
ImageTrainResult train_image_model(ImageModel& model, const train::ImageDataset& train_set,
                                   std::span<const int64_t> subset, const train::ImageDataset& test,
                                   const ImageTrainOptions& o, const Context& ctx);

// Accuracy on the first `limit` images of `data` (all if limit < 0), in evaluation mode.
double image_accuracy(ImageModel& model, const train::ImageDataset& data, int64_t limit,
                      const Context& ctx);

// Saves the model for `attn image attention-map`: DIR/config.json and DIR/model.safetensors.
void save_image_model(const std::string& dir, ImageModelKind kind, const ImageModelConfig& c,
                      const ImageModel& model);
// Loads what save_image_model wrote.
struct LoadedImageModel {
  ImageModelKind kind;
  ImageModelConfig config;
  std::unique_ptr<ImageModel> model;
};
LoadedImageModel load_image_model(const std::string& dir);

}  // namespace attn::examples
