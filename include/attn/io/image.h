// SPDX-License-Identifier: MIT
// PNG output for plots people would rather look at than read: heatmaps of matrices (positional
// encodings, attention maps). Written with stb_image_write.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attn/tensor.h"

namespace attn::io {

// An 8-bit RGB image, row-major, 3 bytes per pixel.
struct RgbImage {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;
};

enum class Colormap {
  kDiverging,  // blue (vmin) – white – red (vmax): signed values such as sinusoids
  kSequential  // dark to bright (viridis-like): probabilities, magnitudes
};

// values: (H, W). Each value becomes a cell×cell block; values are clamped to [vmin, vmax].
RgbImage heatmap(ConstTensorView values, double vmin, double vmax, Colormap colormap, int cell = 1);

// A line chart of one or more series (x = index) on white, with axes, grid lines and the y range
// and the last x printed at the axes' ends. log_y plots log10 of positive values (losses). Series
// colours cycle through blue, orange, green, red. Non-finite points are skipped.
RgbImage line_plot(const std::vector<std::vector<double>>& series, bool log_y = false,
                   int width = 640, int height = 400);

// Throws IoError if the file cannot be written.
void write_png(const std::string& path, const RgbImage& image);

}  // namespace attn::io
