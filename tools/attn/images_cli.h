// SPDX-License-Identifier: MIT
// What the image subcommands share (train fashion-mnist, experiment images, image attention-map):
// the model and training flags, their checks, the output folder and the curves plot.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "image_training.h"

namespace attn::cli {

struct ImageModelFlags {
  examples::ImageTrainOptions train;
  std::string sagan_form = "paper", positional = "learned";
  bool class_token = false, no_augment = false, quiet = false;
  int threads = 0;
};
void add_image_model_options(CLI::App* sub, ImageModelFlags& flags);
examples::ImageModelConfig image_model_config(const ImageModelFlags& flags);
examples::ImageTrainOptions image_train_options(const ImageModelFlags& flags);
void make_out_dir(const std::string& dir);
void write_curves_plot(const std::string& path, const std::string& title,
                       const examples::ImageTrainResult& result, int64_t eval_images);

}  // namespace attn::cli
