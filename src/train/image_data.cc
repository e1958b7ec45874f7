// SPDX-License-Identifier: MIT
// Fashion-MNIST loading (io::read_idx) and batch assembly with augmentation.
#include "attn/train/image_data.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "attn/error.h"
#include "attn/io/idx.h"

namespace attn::train {
namespace {

// The statistics of pixel/255 over the 60 000 training images (computed once with
// `attn train fashion-mnist`'s loader; the usual published values).
constexpr double kFashionMean = 0.2860, kFashionStd = 0.3530;

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

std::string fashion_mnist_dir() {
  const char* env = std::getenv("ATTN_FASHION_MNIST_DIR");
  return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

ImageDataset load_fashion_mnist(const std::string& dir, bool train, int64_t limit) {
  const char* fn = "load_fashion_mnist";
  const std::string prefix = dir + "/" + (train ? "train" : "t10k");
  const std::string images_path = prefix + "-images-idx3-ubyte.gz",
                    labels_path = prefix + "-labels-idx1-ubyte.gz";
  for (const std::string& p : {images_path, labels_path})
    if (!is_file(p))
      fail<IoError>(
          fn, "Fashion-MNIST is not at '", p, "': install Debian's dataset-fashion-mnist ",
          "(apt-get install dataset-fashion-mnist, or scripts/install-deps.sh), or point ",
          "ATTN_FASHION_MNIST_DIR at a folder holding the four .gz files");
  io::IdxArray images = io::read_idx(images_path);
  const io::IdxArray labels = io::read_idx(labels_path);
  if (images.shape.rank() != 3 || labels.shape.rank() != 1 || images.shape[0] != labels.shape[0])
    fail<IoError>(fn, "'", images_path, "' has shape ", images.shape.str(), " and '", labels_path,
                  "' ", labels.shape.str(), ": expected (N, H, W) images and N labels");
  ImageDataset d;
  d.N = limit >= 0 ? std::min(limit, images.shape[0]) : images.shape[0];
  d.H = images.shape[1];
  d.W = images.shape[2];
  d.num_classes = 10;
  d.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  images.data.resize(static_cast<size_t>(d.N * d.H * d.W));
  d.pixels = std::move(images.data);
  for (int64_t i = 0; i < d.N; ++i) {
    const int64_t y = labels.data[static_cast<size_t>(i)];
    if (y >= d.num_classes)
      fail<IoError>(fn, "'", labels_path, "': label ", y, " of image ", i, " is not in [0, 10)");
    d.labels.push_back(y);
  }
  d.mean = {kFashionMean};
  d.stddev = {kFashionStd};
  return d;
}

Tensor image_batch(const ImageDataset& data, std::span<const int64_t> indices,
                   const Augmentation* augmentation, Rng* rng) {
  const char* fn = "image_batch";
  if (augmentation && !rng) fail<ValueError>(fn, "augmentation needs an rng");
  const auto B = static_cast<int64_t>(indices.size());
  Tensor out = Tensor::uninitialized(Shape{B, data.C, data.H, data.W});
  const int64_t plane = data.H * data.W;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t i = indices[static_cast<size_t>(b)];
    if (i < 0 || i >= data.N)
      fail<ValueError>(fn, "index ", i, " is out of range for ", data.N, " images");
    int64_t dy = 0, dx = 0;
    bool flip = false;
    if (augmentation) {
      const int64_t p = augmentation->crop_padding;
      if (p > 0) {  // the crop's top-left corner in the padded image, minus the padding
        dy = rng->uniform_int(-p, p);
        dx = rng->uniform_int(-p, p);
      }
      flip = augmentation->horizontal_flip && rng->uniform() < 0.5;
    }
    for (int64_t c = 0; c < data.C; ++c) {
      const uint8_t* src = data.pixels.data() + (i * data.C + c) * plane;
      float* dst = out.data() + (b * data.C + c) * plane;
      const auto mean = static_cast<float>(data.mean[static_cast<size_t>(c)]);
      const auto inv = static_cast<float>(1.0 / data.stddev[static_cast<size_t>(c)]);
      for (int64_t y = 0; y < data.H; ++y)
        for (int64_t x = 0; x < data.W; ++x) {
          // Crop, then mirror the crop: output column x reads crop column W−1−x.
          const int64_t sy = y + dy, sx = (flip ? data.W - 1 - x : x) + dx;
          const bool inside = sy >= 0 && sy < data.H && sx >= 0 && sx < data.W;
          const float v = inside ? static_cast<float>(src[sy * data.W + sx]) / 255.0f : 0.0f;
          dst[y * data.W + x] = (v - mean) * inv;
        }
    }
  }
  return out;
}

std::vector<int64_t> label_batch(const ImageDataset& data, std::span<const int64_t> indices) {
  std::vector<int64_t> y;
  for (int64_t i : indices) {
    if (i < 0 || i >= data.N)
      fail<ValueError>("label_batch", "index ", i, " is out of range for ", data.N, " images");
    y.push_back(data.labels[static_cast<size_t>(i)]);
  }
  return y;
}

std::vector<int64_t> balanced_subset(const ImageDataset& data, int64_t n, uint64_t seed) {
  if (n < 0 || n > data.N)
    fail<ValueError>("balanced_subset", "n = ", n, " must be in [0, ", data.N, "]");
  Rng rng(seed);
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(data.num_classes));
  for (int64_t i = 0; i < data.N; ++i)
    by_class[static_cast<size_t>(data.labels[static_cast<size_t>(i)])].push_back(i);
  for (auto& v : by_class)  // Fisher-Yates with the given seed
    for (size_t i = v.size(); i > 1; --i)
      std::swap(v[i - 1], v[static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(i) - 1))]);
  std::vector<int64_t> picked;
  for (size_t k = 0; static_cast<int64_t>(picked.size()) < n; ++k)  // round robin over classes
    for (auto& v : by_class)
      if (k < v.size() && static_cast<int64_t>(picked.size()) < n) picked.push_back(v[k]);
  std::sort(picked.begin(), picked.end());
  return picked;
}

}  // namespace attn::train
