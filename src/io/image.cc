// SPDX-License-Identifier: MIT
#include "attn/io/image.h"

#include <stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace attn::io {

namespace {

using Rgb = std::array<double, 3>;

Rgb lerp(const Rgb& a, const Rgb& b, double t) {
  return {a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t};
}

// Piecewise-linear colormaps through a few anchor colours.
Rgb color_at(double u, Colormap cm) {
  static const std::array<Rgb, 3> kDiverging = {{{0.23, 0.30, 0.75}, {0.97, 0.97, 0.97}, {0.71, 0.02, 0.15}}};
  static const std::array<Rgb, 5> kSequential = {
      {{0.27, 0.00, 0.33}, {0.23, 0.32, 0.55}, {0.13, 0.57, 0.55}, {0.37, 0.79, 0.38}, {0.99, 0.91, 0.14}}};
  auto sample = [u](const auto& anchors) {
    const double x = u * static_cast<double>(anchors.size() - 1);
    const auto i = std::min(static_cast<size_t>(x), anchors.size() - 2);
    return lerp(anchors[i], anchors[i + 1], x - static_cast<double>(i));
  };
  return cm == Colormap::kDiverging ? sample(kDiverging) : sample(kSequential);
}

}  // namespace

RgbImage heatmap(ConstTensorView values, double vmin, double vmax, Colormap colormap, int cell) {
  if (!values.defined() || values.rank() != 2)
    fail<ShapeError>("heatmap", "values must have rank 2 (H, W), got ",
                     values.defined() ? values.shape().str() : std::string("undefined"));
  if (!(vmax > vmin) || !std::isfinite(vmin) || !std::isfinite(vmax))
    fail<ValueError>("heatmap", "need finite vmin < vmax, got ", vmin, ", ", vmax);
  if (cell < 1 || cell > 64) fail<ValueError>("heatmap", "cell must be in [1, 64], got ", cell);
  RgbImage img;
  img.height = values.dim(0) * cell;
  img.width = values.dim(1) * cell;
  if (img.width > 32768 || img.height > 32768)
    fail<ValueError>("heatmap", "image of ", img.width, "x", img.height, " pixels is too large");
  img.pixels.resize(static_cast<size_t>(img.width * img.height * 3));
  for (int64_t r = 0; r < values.dim(0); ++r)
    for (int64_t c = 0; c < values.dim(1); ++c) {
      const double v = static_cast<double>(values(r, c));
      const double u = std::isnan(v) ? 0.0 : std::clamp((v - vmin) / (vmax - vmin), 0.0, 1.0);
      const Rgb rgb = color_at(u, colormap);
      for (int64_t y = r * cell; y < (r + 1) * cell; ++y)
        for (int64_t x = c * cell; x < (c + 1) * cell; ++x)
          for (size_t ch = 0; ch < 3; ++ch)
            img.pixels[static_cast<size_t>((y * img.width + x) * 3) + ch] =
                static_cast<uint8_t>(std::lround(rgb[ch] * 255.0));
    }
  return img;
}

void write_png(const std::string& path, const RgbImage& image) {
  if (image.width < 1 || image.height < 1 ||
      image.pixels.size() != static_cast<size_t>(image.width * image.height * 3))
    fail<ValueError>("write_png", "image of ", image.width, "x", image.height, " has ", image.pixels.size(),
                     " bytes");
  const int ok = stbi_write_png(path.c_str(), static_cast<int>(image.width), static_cast<int>(image.height), 3,
                                image.pixels.data(), static_cast<int>(image.width * 3));
  if (!ok) fail<IoError>("write_png", "cannot write '", path, "'");
}

}  // namespace attn::io
