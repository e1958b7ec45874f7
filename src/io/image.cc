// SPDX-License-Identifier: MIT
#include "attn/io/image.h"

#include "io/internal/file_bytes.h"

#include <stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

namespace attn::io {

namespace {

using Rgb = std::array<double, 3>;

Rgb lerp(const Rgb& a, const Rgb& b, double t) {
  return {a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t};
}

// Piecewise-linear colormaps through a few anchor colours.
Rgb color_at(double u, Colormap cm) {
  static const std::array<Rgb, 3> kDiverging = {
      {{0.23, 0.30, 0.75}, {0.97, 0.97, 0.97}, {0.71, 0.02, 0.15}}};
  static const std::array<Rgb, 5> kSequential = {{{0.27, 0.00, 0.33},
                                                  {0.23, 0.32, 0.55},
                                                  {0.13, 0.57, 0.55},
                                                  {0.37, 0.79, 0.38},
                                                  {0.99, 0.91, 0.14}}};
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

namespace {

// 3×5 pixel glyphs for axis labels: digits, '.', '-', 'e', '+'. Each row is 3 bits, MSB on the
// left.
const uint8_t* glyph(char c) {
  static const uint8_t kDigits[10][5] = {
      {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
      {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}};
  static const uint8_t kDot[5] = {0, 0, 0, 0, 2}, kMinus[5] = {0, 0, 7, 0, 0},
                       kE[5] = {7, 4, 7, 4, 7}, kPlus[5] = {0, 2, 7, 2, 0},
                       kBlank[5] = {0, 0, 0, 0, 0};
  if (c >= '0' && c <= '9') return kDigits[c - '0'];
  if (c == '.') return kDot;
  if (c == '-') return kMinus;
  if (c == 'e') return kE;
  if (c == '+') return kPlus;
  return kBlank;
}

struct Canvas {
  RgbImage& img;
  void set(int64_t x, int64_t y, const uint8_t* rgb) const {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
    std::copy_n(rgb, 3, &img.pixels[static_cast<size_t>((y * img.width + x) * 3)]);
  }
  void line(double x0, double y0, double x1, double y1, const uint8_t* rgb) const {
    const int64_t n = static_cast<int64_t>(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
    for (int64_t i = 0; i <= n; ++i) {
      const double t = static_cast<double>(i) / static_cast<double>(n);
      const auto x = static_cast<int64_t>(std::lround(x0 + t * (x1 - x0)));
      const auto y = static_cast<int64_t>(std::lround(y0 + t * (y1 - y0)));
      set(x, y, rgb);
      set(x, y + 1, rgb);  // 2 px wide
    }
  }
  void text(int64_t x, int64_t y, const std::string& s,
            const uint8_t* rgb) const {  // 2× scaled glyphs
    for (char c : s) {
      const uint8_t* g = glyph(c);
      for (int r = 0; r < 5; ++r)
        for (int b = 0; b < 3; ++b)
          if (g[r] & (4 >> b))
            for (int dy = 0; dy < 2; ++dy)
              for (int dx = 0; dx < 2; ++dx) set(x + b * 2 + dx, y + r * 2 + dy, rgb);
      x += 8;
    }
  }
};

std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

RgbImage line_plot(const std::vector<std::vector<double>>& series, bool log_y, int width,
                   int height) {
  if (width < 64 || height < 48)
    fail<ValueError>("line_plot", "image must be at least 64x48, got ", width, "x", height);
  RgbImage img{
      width, height,
      std::vector<uint8_t>(static_cast<size_t>(width) * static_cast<size_t>(height) * 3, 255)};
  const Canvas c{img};
  auto value = [&](double v) { return log_y ? (v > 0 ? std::log10(v) : std::nan("")) : v; };
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  size_t n = 0;
  for (const auto& s : series) {
    n = std::max(n, s.size());
    for (double v : s)
      if (std::isfinite(value(v))) {
        lo = std::min(lo, value(v));
        hi = std::max(hi, value(v));
      }
  }
  if (!(lo <= hi)) lo = 0, hi = 1;
  if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
  const int64_t left = 60, right = width - 12, top = 12, bottom = height - 28;
  static const uint8_t kAxis[3] = {60, 60, 60}, kGrid[3] = {225, 225, 225};
  static const uint8_t kColors[4][3] = {
      {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}};
  for (int i = 1; i < 4; ++i) {
    const double y = static_cast<double>(top) + static_cast<double>(bottom - top) * i / 4.0;
    c.line(static_cast<double>(left), y, static_cast<double>(right), y, kGrid);
  }
  c.line(static_cast<double>(left), static_cast<double>(top), static_cast<double>(left),
         static_cast<double>(bottom), kAxis);
  c.line(static_cast<double>(left), static_cast<double>(bottom), static_cast<double>(right),
         static_cast<double>(bottom), kAxis);
  auto px = [&](size_t i) {
    return static_cast<double>(left) + static_cast<double>(right - left) * static_cast<double>(i) /
                                           static_cast<double>(std::max<size_t>(n, 2) - 1);
  };
  auto py = [&](double v) {
    return static_cast<double>(bottom) - (v - lo) / (hi - lo) * static_cast<double>(bottom - top);
  };
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    bool have_prev = false;
    double x0 = 0, y0 = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const double v = value(s[i]);
      if (!std::isfinite(v)) {
        have_prev = false;
        continue;
      }
      if (have_prev) c.line(x0, y0, px(i), py(v), kColors[k % 4]);
      x0 = px(i), y0 = py(v), have_prev = true;
    }
  }
  auto label = [&](double v) { return short_number(log_y ? std::pow(10.0, v) : v); };
  c.text(4, top, label(hi), kAxis);
  c.text(4, bottom - 10, label(lo), kAxis);
  c.text(left, bottom + 8, "0", kAxis);
  const std::string last = std::to_string(n > 0 ? n - 1 : 0);
  c.text(right - static_cast<int64_t>(last.size()) * 8, bottom + 8, last, kAxis);
  return img;
}

void write_png(const std::string& path, const RgbImage& image) {
  if (image.width < 1 || image.height < 1 ||
      image.pixels.size() != static_cast<size_t>(image.width * image.height * 3))
    fail<ValueError>("write_png", "image of ", image.width, "x", image.height, " has ",
                     image.pixels.size(), " bytes");
  // Encoded in memory, then written like every other file (checked, atomically replaced).
  std::vector<std::byte> png;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<std::byte>*>(context);
    const auto* bytes = static_cast<const std::byte*>(data);
    out->insert(out->end(), bytes, bytes + size);
  };
  const int ok = stbi_write_png_to_func(append, &png, static_cast<int>(image.width),
                                        static_cast<int>(image.height), 3, image.pixels.data(),
                                        static_cast<int>(image.width * 3));
  if (!ok) fail<IoError>("write_png", "cannot encode '", path, "'");
  internal::write_file_bytes("write_png", path, png);
}

}  // namespace attn::io
