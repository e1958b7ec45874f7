// SPDX-License-Identifier: MIT
// Plots as PNG files, drawn by PLplot (its pngcairo device): axes with ticks and titles, a legend
// for line plots, a colour bar for heatmaps. Every plot attn writes (the positional-encoding
// heatmap, loss curves, the experiments' figures) goes through these two calls.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "attn/tensor.h"

namespace attn::io {

// One curve: y over x (x empty: 0, 1, 2, ...). Non-finite points (and, on a log axis, points <= 0)
// leave a gap.
struct PlotSeries {
  std::string label;  // in the legend (none when every label is empty)
  std::vector<double> y, x;
};

struct LinePlot {
  std::string title, x_label, y_label;
  std::vector<PlotSeries> series;   // coloured blue, orange, green, red, purple, brown, in order
  bool log_y = false;               // a log10 y axis (losses)
  bool log_x = false;               // a log10 x axis (times against sequence length)
  double y_min = NAN, y_max = NAN;  // a fixed y range (accuracies: 0 to 1) when both are finite
  // A symbol at each point and a dash pattern, one per series (○ □ △ ◇ ▽ ×; solid, then dashes),
  // in the legend too: curves that coincide (a CNN with and without a SAGAN block) stay apart.
  bool markers = false;
  int width = 900, height = 560;  // pixels, each in [200, 8000]
};

enum class Colormap {
  kDiverging,   // blue (vmin) – white – red (vmax): signed values such as sinusoids
  kSequential,  // dark blue to yellow (viridis-like): probabilities, magnitudes
  kGray         // black (vmin) to white (vmax): images
};

// values (rows, cols) as coloured cells: column c at x = x0 + c·dx, row r at y = y0 + r·dy, the
// first row at the top (as a matrix is printed) or, with y_up, at the bottom (as a spectrogram:
// rows are frequency bins, columns frames dx seconds apart). Values outside [vmin, vmax] take the
// end colours.
struct Heatmap {
  std::string title, x_label, y_label, value_label;  // value_label: beside the colour bar
  ConstTensorView values;
  double vmin = 0.0, vmax = 1.0;
  Colormap colormap = Colormap::kSequential;
  double x0 = 0.0, y0 = 0.0;
  double dx = 1.0, dy = 1.0;  // cell width and height in axis units; > 0
  bool y_up = false;
  int width = 900, height = 700;
};

// Several heatmaps side by side, `columns` per row, each with its own title, colour map and
// optional markers (a numbered ring at cell coordinates (x, y), x the column): e.g. an image and
// where each of its query pixels attends. Non-gray panels get a colour bar.
struct HeatmapPanel {
  std::string title;
  ConstTensorView values;  // (rows, cols)
  double vmin = 0.0, vmax = 1.0;
  Colormap colormap = Colormap::kSequential;
  std::vector<std::pair<double, double>> markers;
  int first_marker_number = 1;  // markers are labelled first, first + 1, ...
};
struct HeatmapGrid {
  std::string title;
  std::vector<HeatmapPanel> panels;
  int columns = 3;
  int panel_size = 330;  // pixels per panel side; the page is columns × rows panels plus the title
};

// Write the plot to `path` (a PNG). Throw ValueError / ShapeError on a bad specification, IoError
// when the file cannot be written (with the OS reason; no partial file is left) or when PLplot's
// pngcairo device is not installed (Debian: plplot-driver-cairo).
void write_line_plot(const std::string& path, const LinePlot& plot);
void write_heatmap(const std::string& path, const Heatmap& plot);
void write_heatmap_grid(const std::string& path, const HeatmapGrid& grid);

}  // namespace attn::io
