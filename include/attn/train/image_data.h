// SPDX-License-Identifier: MIT
// Image classification data: Fashion-MNIST from Debian's dataset-fashion-mnist (IDX files, gzip'd),
// kept as bytes, and batches drawn from it as normalised float tensors, optionally augmented with
// PyTorch's RandomCrop(padding) and RandomHorizontalFlip.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::train {

struct ImageDataset {
  int64_t N = 0, C = 1, H = 0, W = 0;
  std::vector<uint8_t> pixels;  // (N, C, H, W) row-major, 0..255
  std::vector<int64_t> labels;  // N entries in [0, num_classes)
  int64_t num_classes = 0;
  std::vector<std::string> class_names;
  // Per-channel mean and standard deviation of pixel/255 over the training set; batches subtract
  // and divide by them.
  std::vector<double> mean, stddev;
};

// Where Fashion-MNIST is read from: $ATTN_FASHION_MNIST_DIR if set, else the Debian package's
// /usr/share/datasets/fashion-mnist.
std::string fashion_mnist_dir();

// The training (60 000 images) or test (10 000) split, its first `limit` images if limit >= 0.
// A missing file is an IoError that says which package to install. Labels are validated.
ImageDataset load_fashion_mnist(const std::string& dir, bool train, int64_t limit = -1);

// Train-time augmentation, applied per image: shift by up to crop_padding pixels (zero-padded
// RandomCrop(H, padding)) and mirror with probability 1/2 when flip.
struct Augmentation {
  int64_t crop_padding = 0;
  bool horizontal_flip = false;
};

// The images of `indices` as (B, C, H, W) floats (pixel/255 − mean)/stddev, augmented with rng
// when augmentation is given (nullptr: as stored). Throws ValueError for an index out of range.
Tensor image_batch(const ImageDataset& data, std::span<const int64_t> indices,
                   const Augmentation* augmentation = nullptr, Rng* rng = nullptr);
std::vector<int64_t> label_batch(const ImageDataset& data, std::span<const int64_t> indices);

// A random subset of n training images with the same number of each class (as far as n allows),
// drawn with seed: the experiment's training-set sizes.
std::vector<int64_t> balanced_subset(const ImageDataset& data, int64_t n, uint64_t seed);

}  // namespace attn::train
