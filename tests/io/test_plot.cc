// SPDX-License-Identifier: MIT
// Plots decoded back (stb_image) and looked at by counting pixels: size, a white background, ink in
// the margins where tick labels and axis titles go (the bare plots had none), each series' colour,
// both ends of a heatmap's colour map and its colour bar; and the errors.
#include <cmath>
#include <filesystem>

#include "attn/io/plot.h"
#include "testing/testing.h"

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#include "stb_image.h"

namespace attn::testing {
namespace {

struct Decoded {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  std::array<int, 3> at(int x, int y) const {
    const size_t i =
        3 * (static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x));
    return {rgb[i], rgb[i + 1], rgb[i + 2]};
  }
  // Pixels in [x0, x1) × [y0, y1) within `tol` of colour c.
  int count(int x0, int x1, int y0, int y1, std::array<int, 3> c, int tol = 40) const {
    int n = 0;
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x) {
        const auto p = at(x, y);
        n += std::abs(p[0] - c[0]) <= tol && std::abs(p[1] - c[1]) <= tol &&
             std::abs(p[2] - c[2]) <= tol;
      }
    return n;
  }
};

Decoded decode(const std::string& path) {
  Decoded d;
  int channels = 0;
  unsigned char* px = stbi_load(path.c_str(), &d.width, &d.height, &channels, 3);
  EXPECT_NE(px, nullptr) << path;
  if (px) d.rgb.assign(px, px + 3 * d.width * d.height);
  stbi_image_free(px);
  return d;
}

constexpr std::array<int, 3> kWhite = {255, 255, 255}, kBlack = {0, 0, 0}, kBlue = {31, 119, 180},
                             kOrange = {255, 127, 14};

TEST(Plot, LinePlotHasAxesTitlesLegendAndEachSeriesColour) {
  io::LinePlot p;
  p.title = "Training loss";
  p.x_label = "step";
  p.y_label = "loss";
  p.log_y = true;
  std::vector<double> loss, smooth;
  for (int i = 0; i < 300; ++i) {
    loss.push_back(3.0 * std::exp(-i / 60.0) + 0.05 * (1 + std::sin(i)));
    smooth.push_back(3.0 * std::exp(-i / 60.0) + 0.05);
  }
  loss[10] = std::nan("");  // a gap, not a failure
  p.series = {{"loss", loss, {}}, {"smoothed", smooth, {}}};
  const std::string path = ::testing::TempDir() + "/line.png";
  io::write_line_plot(path, p);
  const Decoded d = decode(path);
  ASSERT_EQ(d.width, p.width);
  ASSERT_EQ(d.height, p.height);
  EXPECT_EQ(d.at(2, 2), kWhite);
  EXPECT_GT(d.count(0, d.width, 0, d.height, kBlue), 300);    // the loss curve
  EXPECT_GT(d.count(0, d.width, 0, d.height, kOrange), 300);  // the smoothed one
  // Ink left of the plot box (y tick labels, y title), below it (x ticks, title) and above (title).
  const int left = d.width / 10, bottom = d.height * 88 / 100, top = d.height * 9 / 100;
  EXPECT_GT(d.count(0, left - 4, 0, d.height, kBlack, 90), 100);
  EXPECT_GT(d.count(0, d.width, bottom + 4, d.height, kBlack, 90), 100);
  EXPECT_GT(d.count(0, d.width, 0, top - 4, kBlack, 90), 50);
}

// Two curves on the same points: the second line covers the first, so a reader sees one curve.
// With markers, each point shows both outlines (a circle inside a square), and the legend shows
// them.
TEST(Plot, MarkersKeepCoincidingCurvesApart) {
  auto blue_pixels = [](bool markers) {
    io::LinePlot p;
    p.title = "accuracy", p.x_label = "images", p.y_label = "accuracy";
    p.log_x = true;
    p.markers = markers;
    const std::vector<double> x = {1000, 2000, 5000, 10000, 30000, 60000},
                              y = {0.83, 0.84, 0.84, 0.85, 0.88, 0.90};
    p.series = {{"cnn", y, x}, {"cnn-sagan", y, x}};
    const std::string path = ::testing::TempDir() + "/markers.png";
    io::write_line_plot(path, p);
    const Decoded d = decode(path);
    return d.count(0, d.width, 0, d.height, kBlue);
  };
  const int without = blue_pixels(false), with = blue_pixels(true);
  EXPECT_GT(with, without + 150) << "without markers " << without << ", with " << with;
}

// A log axis over less than a decade (a short run's loss, 2.4 -> 1.4) holds no power of ten, where
// PLplot's own log axis writes no label at all: tick labels must still stand beside the axis, in
// the strip between the y title and the plot box.
TEST(Plot, LogAxisInsideOneDecadeStillHasTickLabels) {
  io::LinePlot p;
  p.title = "loss", p.x_label = "step", p.y_label = "loss";
  p.log_y = true;
  std::vector<double> loss;
  for (int i = 0; i < 50; ++i) loss.push_back(2.4 - i / 50.0);
  p.series = {{"", loss, {}}};
  const std::string path = ::testing::TempDir() + "/log_one_decade.png";
  io::write_line_plot(path, p);
  const Decoded d = decode(path);
  const int box_left = d.width * 11 / 100;
  EXPECT_GT(d.count(box_left / 2, box_left - 4, d.height / 10, d.height * 85 / 100, kBlack, 90),
            100);
}

// A loss that falls to 1e-10 has tick labels six characters wide ("0.0001", "1e-10"). The y title
// stands beyond the widest (it was placed for five and ran over "0.0001"), inside the image: left
// of the box, the columns with ink form a title band and a label band with blank columns between.
TEST(Plot, LogAxisTitleClearsWideTickLabels) {
  io::LinePlot p;
  p.title = "loss", p.x_label = "step", p.y_label = "cross-entropy loss (log scale)";
  p.log_y = true;
  std::vector<double> loss;
  for (int i = 0; i <= 100; ++i) loss.push_back(std::pow(10.0, -i / 10.0));
  p.series = {{"", loss, {}}};
  const std::string path = ::testing::TempDir() + "/log_wide_labels.png";
  io::write_line_plot(path, p);
  const Decoded d = decode(path);
  const int y0 = d.height * 15 / 100, y1 = d.height * 85 / 100;
  // The box's left edge: the first column dark over most of its height (an edge between two
  // pixel columns is drawn half grey in both: the tolerance takes that in, not the grid's grey).
  int box_left = -1;
  for (int x = 0; x < d.width / 2 && box_left < 0; ++x)
    if (d.count(x, x + 1, y0, y1, kBlack, 150) > (y1 - y0) * 9 / 10) box_left = x;
  ASSERT_GT(box_left, 0);
  std::vector<int> bands;  // the first column of each run of inked columns left of the box
  for (int x = 0, was_ink = 0; x < box_left - 2; ++x) {
    const int ink = d.count(x, x + 1, y0, y1, kBlack, 90) > 0;
    if (ink && !was_ink) bands.push_back(x);
    was_ink = ink;
  }
  EXPECT_EQ(d.count(0, 2, 0, d.height, kBlack, 90), 0) << "the title is cut at the image's edge";
  // The title's band, then the labels' (a label's digits are apart, so it may be several runs).
  ASSERT_GE(bands.size(), 2u) << "the y title runs into the tick labels";
  int title_end = bands[0];
  while (d.count(title_end, title_end + 1, y0, y1, kBlack, 90) > 0) ++title_end;
  // Apart by half a character (16 pixels high here) at least; the old placement left 3 columns.
  EXPECT_GE(bands[1] - title_end, 8)
      << "title ends at column " << title_end << ", the labels start at " << bands[1];
}

// Log-log axes (times against sequence length): a power law is a straight line, so points at
// x = 100 and 1000 sit a fixed width apart whatever the range, and the x ticks are labelled with
// plain numbers under the box.
TEST(Plot, LogXAxisPlacesDecadesEvenlyAndLabelsThem) {
  io::LinePlot p;
  p.title = "time", p.x_label = "T", p.y_label = "ms";
  p.log_x = p.log_y = true;
  p.series = {{"linear", {1.0, 10.0, 100.0}, {100.0, 1000.0, 10000.0}},
              {"quadratic", {0.1, 10.0, 1000.0}, {100.0, 1000.0, 10000.0}}};
  const std::string path = ::testing::TempDir() + "/loglog.png";
  io::write_line_plot(path, p);
  const Decoded d = decode(path);
  // x = 1000 lies halfway across the box, where the two straight lines cross: blue left of it sits
  // above orange (the log axis places 10^k evenly; a linear x axis would put 1000 at a tenth).
  const int box_left = d.width * 11 / 100, box_right = d.width * 96 / 100;
  const int quarter = box_left + (box_right - box_left) / 4, rows = d.height;
  auto first_row = [&](const std::array<int, 3>& colour) {
    for (int y = 0; y < rows; ++y)
      if (d.count(quarter - 1, quarter + 1, y, y + 1, colour) > 0) return y;
    return -1;
  };
  ASSERT_GE(first_row(kBlue), 0);
  ASSERT_GE(first_row(kOrange), 0);
  EXPECT_LT(first_row(kBlue), first_row(kOrange));
  EXPECT_GT(d.count(0, d.width, 0, d.height, kOrange), 300);
  // Tick labels under the box (x) and left of it (y).
  const int bottom = d.height * 88 / 100;
  EXPECT_GT(d.count(box_left, box_right, bottom + 4, d.height * 94 / 100, kBlack, 90), 60);
  p.series = {{"", {1.0}, {-1.0}}};
  EXPECT_THROW(io::write_line_plot(path, p), ValueError);  // no point with x > 0
  p.series = {{"", {1.0}, {2.0}}};
  p.y_min = 5.0, p.y_max = 1.0;
  ATTN_EXPECT_THROW_MSG(io::write_line_plot(path, p), ValueError, "y range [5, 1] is empty");
  p.y_min = 0.0;  // a log axis cannot start at 0
  ATTN_EXPECT_THROW_MSG(io::write_line_plot(path, p), ValueError, "not positive");
}

TEST(Plot, HeatmapPutsTheFirstRowOnTopAndHasAColourBar) {
  Tensor v(Shape{40, 60});
  for (int64_t r = 0; r < 40; ++r)
    for (int64_t c = 0; c < 60; ++c) v(r, c) = r < 20 ? -1.0f : 1.0f;  // top half blue, bottom red
  io::Heatmap p;
  p.values = v.view();
  p.vmin = -1.0, p.vmax = 1.0;
  p.colormap = io::Colormap::kDiverging;
  p.title = "PE", p.x_label = "dimension i", p.y_label = "position", p.value_label = "value";
  const std::string path = ::testing::TempDir() + "/heat.png";
  io::write_heatmap(path, p);
  const Decoded d = decode(path);
  ASSERT_EQ(d.width, p.width);
  const std::array<int, 3> blue = {33, 102, 171}, red = {178, 23, 43};
  const int x_mid = d.width * 45 / 100;
  EXPECT_GT(d.count(x_mid - 20, x_mid + 20, d.height * 15 / 100, d.height * 45 / 100, blue), 2000);
  EXPECT_GT(d.count(x_mid - 20, x_mid + 20, d.height * 55 / 100, d.height * 85 / 100, red), 2000);
  // The colour bar right of the plot holds both ends and white in between.
  const int bar0 = d.width * 86 / 100, bar1 = d.width * 92 / 100;
  EXPECT_GT(d.count(bar0, bar1, 0, d.height, blue, 30), 50);
  EXPECT_GT(d.count(bar0, bar1, 0, d.height, red, 30), 50);
}

// v drawn on the -1 .. 1 diverging map (defaults otherwise) into the test's temporary directory.
Decoded diverging_heatmap(const Tensor& v, const std::string& name) {
  io::Heatmap p;
  p.values = v.view();
  p.vmin = -1.0, p.vmax = 1.0;
  p.colormap = io::Colormap::kDiverging;
  const std::string path = ::testing::TempDir() + "/" + name;
  io::write_heatmap(path, p);
  return decode(path);
}

// More columns than pixels (ten minutes of fbank frames): the columns are averaged down before they
// are drawn (drawing 60 000 of them took seconds), so alternating -1 / +1 columns show as their
// mean, the diverging map's white middle, not as stripes of whichever column was drawn last.
TEST(Plot, HeatmapAveragesColumnsItHasNoPixelsFor) {
  Tensor v(Shape{40, 20000});
  for (int64_t r = 0; r < 40; ++r)
    for (int64_t c = 0; c < 20000; ++c) v(r, c) = r < 20 ? (c % 2 ? 1.0f : -1.0f) : 1.0f;
  const Decoded d = diverging_heatmap(v, "heat_wide.png");
  const std::array<int, 3> light = {247, 247, 247}, red = {178, 23, 43};
  const int x0 = d.width * 20 / 100, x1 = d.width * 80 / 100;
  const int top = d.count(x0, x1, d.height * 15 / 100, d.height * 45 / 100, light, 40);
  EXPECT_GT(top, (x1 - x0) * d.height * 25 / 100) << "the top half should be the mean's white";
  EXPECT_GT(d.count(x0, x1, d.height * 55 / 100, d.height * 85 / 100, red), 2000);
}

// Colours follow vmin and vmax, as the colour bar does, not the matrix's own range: values 0 and
// 0.5 on a -1 .. 1 diverging map are white and a light red (they were drawn blue and dark red, the
// map's two ends).
TEST(Plot, HeatmapColoursFollowVminAndVmaxNotTheData) {
  Tensor v(Shape{40, 60});
  for (int64_t r = 0; r < 40; ++r)
    for (int64_t c = 0; c < 60; ++c) v(r, c) = r < 20 ? 0.0f : 0.5f;
  const Decoded d = diverging_heatmap(v, "heat_range.png");
  const std::array<int, 3> light = {247, 247, 247}, blue = {33, 102, 171}, red = {178, 23, 43};
  const int x0 = d.width * 20 / 100, x1 = d.width * 80 / 100;
  const int y0 = d.height * 15 / 100, y1 = d.height * 85 / 100;
  EXPECT_GT(d.count(x0, x1, y0, d.height * 45 / 100, light, 10), 20000);
  EXPECT_EQ(d.count(x0, x1, y0, y1, blue, 30), 0);
  EXPECT_EQ(d.count(x0, x1, y0, y1, red, 30), 0);
}

TEST(Plot, HeatmapGridLaysPanelsOutWithTheirColourMapsAndMarkers) {
  // A black image panel with a white square, and a viridis panel whose top half is the low end.
  Tensor image(Shape{28, 28}), map(Shape{14, 14});
  for (int64_t r = 10; r < 18; ++r)
    for (int64_t c = 10; c < 18; ++c) image(r, c) = 255.0f;
  for (int64_t r = 7; r < 14; ++r)
    for (int64_t c = 0; c < 14; ++c) map(r, c) = 1.0f;
  io::HeatmapGrid g;
  g.title = "grid";
  g.columns = 2;
  g.panels = {{"image", image.view(), 0.0, 255.0, io::Colormap::kGray, {{14.0, 14.0}}, 1},
              {"map", map.view(), 0.0, 1.0, io::Colormap::kSequential, {}, 2},
              {"again", map.view(), 0.0, 1.0, io::Colormap::kSequential, {}, 3}};
  const std::string path = ::testing::TempDir() + "/grid.png";
  io::write_heatmap_grid(path, g);
  const Decoded d = decode(path);
  ASSERT_EQ(d.width, 2 * g.panel_size);
  ASSERT_EQ(d.height, 2 * g.panel_size + 60);  // two rows of panels and the title
  const int p = g.panel_size;
  EXPECT_GT(d.count(0, p, 60, 60 + p, kBlack, 30), 5000);       // the image's background
  EXPECT_GT(d.count(0, p, 60, 60 + p, kWhite, 30), 1000);       // its square (and the margins)
  EXPECT_GT(d.count(0, p, 60, 60 + p, {214, 39, 40}, 60), 50);  // the red ring of the marker
  const std::array<int, 3> low = {68, 1, 84}, high = {253, 231, 37};  // viridis ends
  EXPECT_GT(d.count(p, 2 * p, 60, 60 + p / 2, low, 40), 2000);
  EXPECT_GT(d.count(p, 2 * p, 60 + p / 2, 60 + p, high, 40), 2000);
  EXPECT_GT(d.count(0, p, 60 + p, 60 + 2 * p, high, 40), 2000);  // the third panel, second row
  g.panels[1].vmin = 2.0;
  ATTN_EXPECT_THROW_MSG(io::write_heatmap_grid(path, g), ValueError, "write_heatmap_grid",
                        "panel 1", "vmin < vmax");
  g.panels.clear();
  ATTN_EXPECT_THROW_MSG(io::write_heatmap_grid(path, g), ValueError, "no panels");
}

TEST(Plot, RejectsBadSpecificationsAndUnwritablePaths) {
  const std::string dir = ::testing::TempDir();
  io::LinePlot p;
  ATTN_EXPECT_THROW_MSG(io::write_line_plot(dir + "/x.png", p), ValueError, "write_line_plot",
                        "no series");
  p.series = {{"a", {1.0, 2.0}, {0.0}}};
  ATTN_EXPECT_THROW_MSG(io::write_line_plot(dir + "/x.png", p), ShapeError, "2 y values but 1 x");
  p.series = {{"a", {-1.0, 0.0}, {}}};
  p.log_y = true;
  ATTN_EXPECT_THROW_MSG(io::write_line_plot(dir + "/x.png", p), ValueError, "log axis");
  p.log_y = false;
  p.width = 10;
  ATTN_EXPECT_THROW_MSG(io::write_line_plot(dir + "/x.png", p), ValueError, "[200, 8000]");
  p.width = 400;
  ATTN_EXPECT_THROW_MSG(io::write_line_plot("/nonexistent/dir/x.png", p), IoError,
                        "write_line_plot", "No such file or directory");
  ATTN_EXPECT_THROW_MSG(io::write_line_plot(dir, p), IoError, "write_line_plot");
  io::Heatmap h;
  ATTN_EXPECT_THROW_MSG(io::write_heatmap(dir + "/h.png", h), ShapeError, "(rows, cols)");
  Tensor v(Shape{2, 2});
  h.values = v.view();
  h.vmin = 1.0, h.vmax = 1.0;
  ATTN_EXPECT_THROW_MSG(io::write_heatmap(dir + "/h.png", h), ValueError, "vmin < vmax");
}

}  // namespace
}  // namespace attn::testing
