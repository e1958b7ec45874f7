// SPDX-License-Identifier: MIT
// Image batches: normalisation, the crop and flip augmentations (by their definition, on a small
// synthetic data set), balanced subsets, errors, and the real Fashion-MNIST when installed.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "attn/train/image_data.h"
#include "testing/testing.h"

namespace attn::train {
namespace {

// 4 images of 1×3×4 with pixel value 10·i + (3·y + x)... kept below 256, labels i % 2.
ImageDataset tiny() {
  ImageDataset d;
  d.N = 4;
  d.H = 3;
  d.W = 4;
  d.num_classes = 2;
  for (int64_t i = 0; i < d.N; ++i) {
    for (int64_t p = 0; p < d.H * d.W; ++p) d.pixels.push_back(static_cast<uint8_t>(20 * i + p));
    d.labels.push_back(i % 2);
  }
  d.mean = {0.0};
  d.stddev = {1.0 / 255.0};  // batches hold the raw pixel values
  return d;
}

TEST(ImageBatch, NormalisesWithTheDatasetStatistics) {
  ImageDataset d = tiny();
  d.mean = {0.5};
  d.stddev = {0.25};
  const std::vector<int64_t> idx{2};
  const Tensor b = image_batch(d, idx);
  EXPECT_EQ(b.shape(), (Shape{1, 1, 3, 4}));
  EXPECT_NEAR(b(0, 0, 1, 2), (46.0 / 255.0 - 0.5) / 0.25, 1e-6);
}

TEST(ImageBatch, CropShiftsAndFlipMirrorsByTheirDefinition) {
  const ImageDataset d = tiny();
  const std::vector<int64_t> idx{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  const Augmentation aug{.crop_padding = 1, .horizontal_flip = true};
  Rng rng(3);
  const Tensor b = image_batch(d, idx, &aug, &rng);
  int identical = 0, flipped = 0;
  for (int64_t k = 0; k < b.dim(0); ++k) {
    // Every output is the image shifted by (dy, dx) in [-1, 1]², mirrored or not, zero outside.
    bool matched = false;
    for (int64_t dy = -1; dy <= 1 && !matched; ++dy)
      for (int64_t dx = -1; dx <= 1 && !matched; ++dx)
        for (bool flip : {false, true}) {
          bool ok = true;
          for (int64_t y = 0; y < 3 && ok; ++y)
            for (int64_t x = 0; x < 4 && ok; ++x) {
              const int64_t sy = y + dy, sx = (flip ? 3 - x : x) + dx;
              const float want = (sy < 0 || sy >= 3 || sx < 0 || sx >= 4)
                                     ? 0.0f
                                     : static_cast<float>(20 + sy * 4 + sx);
              ok = std::abs(b(k, 0, y, x) - want) < 1e-3f;
            }
          if (ok) {
            matched = true;
            identical += (dy == 0 && dx == 0 && !flip);
            flipped += flip;
            break;
          }
        }
    EXPECT_TRUE(matched) << "batch entry " << k;
  }
  EXPECT_GT(flipped, 0);
  EXPECT_LT(identical, 16);
  Rng again(3);  // the same seed, the same batch
  EXPECT_TRUE(attn::testing::all_close(image_batch(d, idx, &aug, &again), b, 0.0));
}

TEST(ImageBatch, RejectsBadArguments) {
  const ImageDataset d = tiny();
  const std::vector<int64_t> bad{4};
  ATTN_EXPECT_THROW_MSG(image_batch(d, bad), ValueError, "image_batch", "index 4 is out of range");
  ATTN_EXPECT_THROW_MSG(label_batch(d, bad), ValueError, "label_batch");
  const Augmentation aug{.crop_padding = 2};
  const std::vector<int64_t> ok{0};
  ATTN_EXPECT_THROW_MSG(image_batch(d, ok, &aug, nullptr), ValueError, "needs an rng");
  ATTN_EXPECT_THROW_MSG(balanced_subset(d, 5, 1), ValueError, "balanced_subset", "n = 5");
  ATTN_EXPECT_THROW_MSG(load_fashion_mnist("/nonexistent", true), IoError,
                        "install Debian's dataset-fashion-mnist", "ATTN_FASHION_MNIST_DIR");
}

TEST(BalancedSubset, DrawsEveryClassEquallyAndDependsOnTheSeed) {
  ImageDataset d;
  d.N = 100;
  d.num_classes = 4;
  for (int64_t i = 0; i < d.N; ++i) d.labels.push_back((i * 7) % 4);
  const auto a = balanced_subset(d, 20, 1), b = balanced_subset(d, 20, 2);
  std::map<int64_t, int> counts;
  for (int64_t i : a) ++counts[d.labels[static_cast<size_t>(i)]];
  for (auto [label, n] : counts) EXPECT_EQ(n, 5) << "class " << label;
  EXPECT_NE(a, b);
  EXPECT_EQ(a, balanced_subset(d, 20, 1));
}

TEST(FashionMnist, LoadsTheDebianPackage) {
  if (!std::filesystem::exists(fashion_mnist_dir() + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const ImageDataset test = load_fashion_mnist(fashion_mnist_dir(), false, 500);
  EXPECT_EQ(test.N, 500);
  EXPECT_EQ(test.H, 28);
  EXPECT_EQ(test.class_names.at(9), "Ankle boot");
  EXPECT_EQ(test.labels.at(0), 9);  // the first test image is an ankle boot
  // The stored statistics normalise the images to about zero mean and unit variance.
  std::vector<int64_t> idx(500);
  for (int64_t i = 0; i < 500; ++i) idx[static_cast<size_t>(i)] = i;
  const Tensor b = image_batch(test, idx);
  double s = 0, s2 = 0;
  for (float v : b.values()) {
    s += static_cast<double>(v);
    s2 += static_cast<double>(v) * static_cast<double>(v);
  }
  const double n = static_cast<double>(b.numel()), mean = s / n;
  EXPECT_NEAR(mean, 0.0, 0.1);
  EXPECT_NEAR(s2 / n - mean * mean, 1.0, 0.15);
}

}  // namespace
}  // namespace attn::train
