// SPDX-License-Identifier: MIT
// Plots through PLplot's pngcairo device. PLplot keeps global state (streams) and is not
// thread-safe, so every plot runs under one mutex on a fresh stream. It also exits the process on
// some errors (plexit), so everything that can fail is checked before PLplot sees it: the
// specification, the device, and a temporary file it can write. The PNG is then moved into place
// with write_file_bytes (temporary name + rename, OS reason on failure).
#include "attn/io/plot.h"

#include <plplot.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string_view>
#include <vector>

#include "io/internal/file_bytes.h"

namespace attn::io {

namespace {

std::mutex& plplot_mutex() {
  static std::mutex m;
  return m;
}

// Colour map 0 as attn uses it: 0 the (white) background, 1 axes and text, 2-7 the series, 8 grid.
// PLplot's defaults draw on black with index 15 white, so both ends are remapped (white on white
// otherwise).
constexpr int kInk = 1, kFirstSeries = 2, kSeriesColours = 6, kGrid = 8;
void set_palette() {
  plscmap0n(16);
  plscol0(0, 255, 255, 255);
  plscol0(kInk, 0, 0, 0);
  const std::array<std::array<int, 3>, kSeriesColours> series = {{{31, 119, 180},
                                                                  {255, 127, 14},
                                                                  {44, 160, 44},
                                                                  {214, 39, 40},
                                                                  {148, 103, 189},
                                                                  {140, 86, 75}}};
  for (int i = 0; i < kSeriesColours; ++i)
    plscol0(kFirstSeries + i, series[static_cast<size_t>(i)][0], series[static_cast<size_t>(i)][1],
            series[static_cast<size_t>(i)][2]);
  plscol0(kGrid, 215, 215, 215);
  plscol0(15, 0, 0, 0);
}

bool pngcairo_available() {
  std::array<const char*, 128> menus{}, names{};
  const char** m = menus.data();
  const char** n = names.data();
  int count = static_cast<int>(names.size());
  plgDevs(&m, &n, &count);
  for (int i = 0; i < count; ++i)
    if (names[static_cast<size_t>(i)] &&
        std::string_view(names[static_cast<size_t>(i)]) == "pngcairo")
      return true;
  return false;
}

void check_size(const char* fn, int width, int height) {
  if (width < 200 || width > 8000 || height < 200 || height > 8000)
    fail<ValueError>(fn, "width and height must be in [200, 8000] pixels, got ", width, " x ",
                     height);
}

// A PNG drawn by `draw` between plinit and plend1 on a fresh pngcairo stream of the given size,
// returned as the file's bytes.
template <typename Draw>
std::vector<std::byte> render(const char* fn, int width, int height, Draw&& draw) {
  std::lock_guard<std::mutex> lock(plplot_mutex());
  if (!pngcairo_available())
    fail<IoError>(fn, "PLplot's pngcairo device is not installed (Debian: plplot-driver-cairo)");
  // A temporary file PLplot can open (it would exit the process if it could not).
  std::string tmp = (std::filesystem::temp_directory_path() / "attn-plot-XXXXXX").string();
  const int fd = mkstemp(tmp.data());
  if (fd < 0)
    fail<IoError>(fn, "cannot create a temporary file in ",
                  std::filesystem::temp_directory_path().string(), ": ", std::strerror(errno));
  ::close(fd);
  PLINT previous = 0, stream = 0;
  plgstrm(&previous);
  plmkstrm(&stream);
  plsdev("pngcairo");
  plsfnam(tmp.c_str());
  plspage(0.0, 0.0, width, height, 0, 0);
  set_palette();
  plinit();
  pladv(0);
  draw();
  plend1();
  plsstrm(previous);
  std::vector<std::byte> bytes;
  try {
    bytes = internal::read_file_bytes(fn, tmp);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  std::remove(tmp.c_str());
  if (bytes.size() < 8) fail<IoError>(fn, "PLplot wrote no image");
  return bytes;
}

// [lo, hi] widened by 4% on each side (or by 1 if it is a single value).
std::pair<double, double> padded(double lo, double hi) {
  if (hi <= lo) return {lo - 1.0, hi + 1.0};
  const double pad = 0.04 * (hi - lo);
  return {lo - pad, hi + pad};
}

// The y value plotted for y (log10 on a log axis); NaN where there is nothing to draw.
double plotted(double y, bool log_y) {
  if (!std::isfinite(y) || (log_y && y <= 0.0)) return std::nan("");
  return log_y ? std::log10(y) : y;
}

// The x value plotted for point i of s (log10 on a log axis); NaN where there is nothing to draw.
double plotted_x(const PlotSeries& s, size_t i, bool log_x) {
  return plotted(s.x.empty() ? static_cast<double>(i) : s.x[i], log_x);
}

// Series i's marker (LinePlot::markers): outlines, so that one drawn on another leaves both seen.
const char* marker_glyph(size_t i) {
  static constexpr std::array<const char*, 6> kGlyphs = {"○", "□", "△", "◇", "▽", "×"};
  return kGlyphs[i % kGlyphs.size()];
}

// Series i's PLplot line style with markers: solid, then dashes of three lengths, so that a line
// drawn over another shows the one below in its gaps.
PLINT line_style(size_t i, bool markers) { return markers ? static_cast<PLINT>(1 + i % 4) : 1; }

// marker: the glyph drawn at each point, or nullptr for the line alone.
void draw_series(const PlotSeries& s, bool log_x, bool log_y, int colour, const char* marker,
                 PLINT style) {
  plcol0(colour);
  plwidth(2.0);
  pllsty(style);
  std::vector<PLFLT> xs, ys;
  auto flush = [&] {
    if (xs.size() == 1 && marker == nullptr) plpoin(1, xs.data(), ys.data(), 1);
    if (xs.size() > 1) plline(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
    if (marker != nullptr && !xs.empty()) {
      plschr(0.0, 1.6);
      plstring(static_cast<PLINT>(xs.size()), xs.data(), ys.data(), marker);
      plschr(0.0, 1.1);
    }
    xs.clear(), ys.clear();
  };
  for (size_t i = 0; i < s.y.size(); ++i) {
    const double x = plotted_x(s, i, log_x), y = plotted(s.y[i], log_y);
    if (std::isnan(x) || std::isnan(y)) {
      flush();
      continue;
    }
    xs.push_back(x), ys.push_back(y);
  }
  flush();
  plwidth(1.0);
  pllsty(1);
}

// The corner of the plot box (PL_POSITION_* flags) whose quarter holds the fewest points, so that
// the legend hides as little as possible. (x0, x1, y0, y1): the window.
PLINT emptiest_corner(const LinePlot& p, double x0, double x1, double y0, double y1) {
  std::array<int64_t, 4> counts{};  // top-right, top-left, bottom-left, bottom-right
  for (const PlotSeries& s : p.series)
    for (size_t i = 0; i < s.y.size(); ++i) {
      const double x = plotted_x(s, i, p.log_x), y = plotted(s.y[i], p.log_y);
      if (std::isnan(x) || std::isnan(y)) continue;
      const double fx = (x - x0) / (x1 - x0), fy = (y - y0) / (y1 - y0);
      const bool right = fx > 0.55, left = fx<0.45, top = fy> 0.6, bottom = fy < 0.4;
      counts[0] += top && right, counts[1] += top && left;
      counts[2] += bottom && left, counts[3] += bottom && right;
    }
  const std::array<PLINT, 4> corners = {
      PL_POSITION_TOP | PL_POSITION_RIGHT, PL_POSITION_TOP | PL_POSITION_LEFT,
      PL_POSITION_BOTTOM | PL_POSITION_LEFT, PL_POSITION_BOTTOM | PL_POSITION_RIGHT};
  return corners[static_cast<size_t>(std::min_element(counts.begin(), counts.end()) -
                                     counts.begin())];
}

void draw_legend(const LinePlot& p, PLINT corner) {
  const PLINT n = static_cast<PLINT>(p.series.size());
  const auto count = static_cast<size_t>(n);
  std::vector<PLINT> opts(count, p.markers ? PL_LEGEND_LINE | PL_LEGEND_SYMBOL : PL_LEGEND_LINE),
      colours(count), styles(count), text_colours(count, kInk), symbol_numbers(count, 1);
  std::vector<PLFLT> widths(count, 2.5), symbol_scales(count, 1.4);
  std::vector<const char*> text(count), symbols(count);
  for (size_t i = 0; i < count; ++i) {
    colours[i] = kFirstSeries + static_cast<PLINT>(i) % kSeriesColours;
    text[i] = p.series[i].label.c_str();
    symbols[i] = marker_glyph(i);
    styles[i] = line_style(i, p.markers);
  }
  PLFLT w = 0, h = 0;
  pllegend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, corner | PL_POSITION_INSIDE, 0.02,
           0.02, 0.08, 0, kInk, 1, 0, 0, n, opts.data(), 1.0, 0.9, 2.0, 0.0, text_colours.data(),
           text.data(), nullptr, nullptr, nullptr, nullptr, colours.data(), styles.data(),
           widths.data(), colours.data(), symbol_scales.data(), symbol_numbers.data(),
           symbols.data());
}

// Tick values for a log10 axis showing [10^y0, 10^y1]: decades when at least three fit, else 1-2-5
// steps when at least three fit, else evenly spaced round values (a range inside one decade, where
// PLplot's own log axis labels nothing: no decade falls in it).
std::vector<double> log_axis_ticks(double y0, double y1) {
  auto in_range = [&](double v) { return std::log10(v) >= y0 && std::log10(v) <= y1; };
  for (const auto& mantissas : {std::vector<double>{1.0}, std::vector<double>{1.0, 2.0, 5.0}}) {
    std::vector<double> ticks;
    for (int e = static_cast<int>(std::floor(y0)); e <= static_cast<int>(std::ceil(y1)); ++e)
      for (double m : mantissas)
        if (in_range(m * std::pow(10.0, e))) ticks.push_back(m * std::pow(10.0, e));
    if (ticks.size() >= 3) return ticks;
  }
  const double lo = std::pow(10.0, y0), hi = std::pow(10.0, y1), raw = (hi - lo) / 5.0;
  const double mag = std::pow(10.0, std::floor(std::log10(raw))), f = raw / mag;
  const double step = mag * (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0);
  std::vector<double> ticks;
  for (double k = std::ceil(lo / step); k * step <= hi; k += 1.0) ticks.push_back(k * step);
  return ticks;
}

// A log axis's tick label as a plain number: "0.05", "1.6", "200", "3000" (never "3e+03").
void format_tick(char* out, size_t size, double v) {
  if (std::abs(v) >= 1000 && std::abs(v) < 1e9 && v == std::round(v))
    std::snprintf(out, size, "%.0f", v);
  else
    std::snprintf(out, size, "%.3g", v);
}

// The most characters in a tick label of the log axis over [lo, hi] (log10 units).
size_t widest_log_tick_label(double lo, double hi) {
  size_t widest = 0;
  for (double v : log_axis_ticks(lo, hi)) {
    char label[32];
    format_tick(label, sizeof label, v);
    widest = std::max(widest, std::strlen(label));
  }
  return widest;
}

// A tick label's digit, point or sign in the plots' font, in character heights (plmtex's unit).
constexpr double kDigitWidth = 0.8;

// The left edge of the viewport (a fraction of the page) that leaves `disp` character heights, and
// one more for the glyphs beyond plmtex's reference point; 0 when disp is 0.
double left_margin_for(double disp) {
  if (disp <= 0.0) return 0.0;
  PLFLT default_mm = 0, height_mm = 0, x0_mm = 0, x1_mm = 0, y0_mm = 0, y1_mm = 0;
  plgchr(&default_mm, &height_mm);
  plgspa(&x0_mm, &x1_mm, &y0_mm, &y1_mm);
  return x1_mm > x0_mm ? (disp + 1.0) * height_mm / (x1_mm - x0_mm) : 0.0;
}

enum class Axis { kX, kY };

// A log axis (its window range in log10 units): grid lines, ticks on both sides and labels at
// log_axis_ticks, written as plain numbers ("0.05", "1.6", "200"); y labels left of the box, x
// labels under it.
void draw_log_axis(Axis axis, double x0, double x1, double y0, double y1) {
  const bool y_axis = axis == Axis::kY;
  const double lo = y_axis ? y0 : x0, hi = y_axis ? y1 : x1;
  const double tick = y_axis ? 0.012 * (x1 - x0) : 0.015 * (y1 - y0);
  // A segment across the box at position v of this axis, from `from` to `to` on the other one.
  auto across = [&](double v, double from, double to) {
    if (y_axis)
      pljoin(from, v, to, v);
    else
      pljoin(v, from, v, to);
  };
  const double a0 = y_axis ? x0 : y0, a1 = y_axis ? x1 : y1;  // the other axis's range
  for (double v : log_axis_ticks(lo, hi)) {
    const double p = std::log10(v);
    plcol0(kGrid);
    across(p, a0, a1);
    plcol0(kInk);
    across(p, a0, a0 + tick);
    across(p, a1 - tick, a1);
    char label[32];
    format_tick(label, sizeof label, v);
    if (y_axis)
      plmtex("lv", 0.6, (p - lo) / (hi - lo), 1.0, label);
    else
      plmtex("b", 1.5, (p - lo) / (hi - lo), 0.5, label);
  }
}

void check_line_plot(const char* fn, const LinePlot& p) {
  check_size(fn, p.width, p.height);
  if (std::isfinite(p.y_min) && std::isfinite(p.y_max) &&
      (!(p.y_min < p.y_max) || std::isnan(plotted(p.y_min, p.log_y))))
    fail<ValueError>(fn, "y range [", p.y_min, ", ", p.y_max, "] is empty",
                     p.log_y ? " or not positive (a log axis)" : "");
  if (p.series.empty()) fail<ValueError>(fn, "no series to plot");
  bool any = false;
  for (size_t i = 0; i < p.series.size(); ++i) {
    const PlotSeries& s = p.series[i];
    if (!s.x.empty() && s.x.size() != s.y.size())
      fail<ShapeError>(fn, "series ", i, " ('", s.label, "') has ", s.y.size(), " y values but ",
                       s.x.size(), " x values");
    for (size_t j = 0; j < s.y.size() && !any; ++j)
      any = !std::isnan(plotted(s.y[j], p.log_y)) && !std::isnan(plotted_x(s, j, p.log_x));
  }
  if (!any)
    fail<ValueError>(fn, "no finite point to plot",
                     p.log_y || p.log_x ? " (a log axis needs values > 0)" : "");
}

}  // namespace

void write_line_plot(const std::string& path, const LinePlot& p) {
  constexpr const char* fn = "write_line_plot";
  check_line_plot(fn, p);
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  bool labels = false;
  for (const PlotSeries& s : p.series) {
    labels = labels || !s.label.empty();
    for (size_t i = 0; i < s.y.size(); ++i) {
      const double x = plotted_x(s, i, p.log_x), y = plotted(s.y[i], p.log_y);
      if (std::isnan(x) || std::isnan(y)) continue;
      x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
    }
  }
  // Plain variables, not structured bindings: the lambda below uses them, and clang before 16
  // (the fuzz build's) cannot capture a structured binding.
  const auto x_range = padded(x_lo, x_hi);
  const bool fixed_y = std::isfinite(p.y_min) && std::isfinite(p.y_max);
  const auto y_range =
      fixed_y ? padded(plotted(p.y_min, p.log_y), plotted(p.y_max, p.log_y)) : padded(y_lo, y_hi);
  const double x0 = x_range.first, x1 = x_range.second, y0 = y_range.first, y1 = y_range.second;
  const auto bytes = render(fn, p.width, p.height, [&] {
    plschr(0.0, 1.1);
    // A log y axis's labels are plain numbers ("0.0001", "1e-10"): its title goes beyond the
    // widest, and the box moves right when the labels and title need more than the usual left
    // margin.
    const double title_disp =
        p.log_y ? 0.6 + kDigitWidth * static_cast<double>(widest_log_tick_label(y0, y1)) + 1.4
                : 0.0;
    plvpor(std::max(0.11, left_margin_for(title_disp)), 0.96, 0.12, 0.91);
    plwind(x0, x1, y0, y1);
    plcol0(kGrid);
    plbox(p.log_x ? "" : "g", 0.0, 0, p.log_y ? "" : "g", 0.0, 0);
    plcol0(kInk);
    plbox(p.log_x ? "bc" : "bcnst", 0.0, 0, p.log_y ? "bc" : "bcnstv", 0.0, 0);
    if (p.log_y) draw_log_axis(Axis::kY, x0, x1, y0, y1);
    if (p.log_x) draw_log_axis(Axis::kX, x0, x1, y0, y1);
    pllab(p.x_label.c_str(), p.log_y ? "" : p.y_label.c_str(), p.title.c_str());
    if (p.log_y) plmtex("l", title_disp, 0.5, 0.5, p.y_label.c_str());
    for (size_t i = 0; i < p.series.size(); ++i)
      draw_series(p.series[i], p.log_x, p.log_y,
                  kFirstSeries + static_cast<int>(i) % kSeriesColours,
                  p.markers ? marker_glyph(i) : nullptr, line_style(i, p.markers));
    if (labels) draw_legend(p, emptiest_corner(p, x0, x1, y0, y1));
  });
  internal::write_file_bytes(fn, path, bytes);
}

namespace {

void set_colormap(Colormap c) {
  if (c == Colormap::kDiverging) {
    const std::array<PLFLT, 3> at = {0.0, 0.5, 1.0}, r = {0.13, 1.0, 0.70}, g = {0.40, 1.0, 0.09},
                               b = {0.67, 1.0, 0.17};
    plscmap1l(1, 3, at.data(), r.data(), g.data(), b.data(), nullptr);
  } else if (c == Colormap::kGray) {
    const std::array<PLFLT, 2> at = {0.0, 1.0}, v = {0.0, 1.0};
    plscmap1l(1, 2, at.data(), v.data(), v.data(), v.data(), nullptr);
  } else {  // viridis at five stops
    const std::array<PLFLT, 5> at = {0.0, 0.25, 0.5, 0.75, 1.0},
                               r = {0.267, 0.231, 0.128, 0.369, 0.993},
                               g = {0.005, 0.322, 0.567, 0.789, 0.906},
                               b = {0.329, 0.546, 0.551, 0.383, 0.144};
    plscmap1l(1, 5, at.data(), r.data(), g.data(), b.data(), nullptr);
  }
  plscmap1n(256);
}

// A matrix as plimage takes it: columns of cells, cells[c][r], from its ymin (the top row: the
// callers' world y axes run downwards). NaN shows as vmin; values are clamped to [vmin, vmax].
// A matrix with more rows or columns than max_rows / max_cols (about twice the pixels it lands on)
// is averaged down to that many first, over equal runs of its rows and columns: plimage draws
// every cell, and the 60 000 × 80 fbank of ten minutes of audio took 2.5 s.
class Cells {
 public:
  Cells(ConstTensorView values, double vmin, double vmax, int64_t max_rows, int64_t max_cols)
      : rows_(std::min(values.dim(0), max_rows)),
        cols_(std::min(values.dim(1), max_cols)),
        storage_(static_cast<size_t>(rows_ * cols_), 0.0) {
    const int64_t R = values.dim(0), C = values.dim(1);
    // Output row r averages input rows [r·R / rows, (r + 1)·R / rows): at least one each.
    auto first = [](int64_t i, int64_t in, int64_t out) { return i * in / out; };
    for (int64_t c = 0; c < cols_; ++c) {
      PLFLT* column = storage_.data() + c * rows_;
      columns_.push_back(column);
      const int64_t c0 = first(c, C, cols_), c1 = first(c + 1, C, cols_);
      for (int64_t r = 0; r < rows_; ++r) {
        const int64_t r0 = first(r, R, rows_), r1 = first(r + 1, R, rows_);
        double sum = 0.0;
        for (int64_t i = r0; i < r1; ++i)
          for (int64_t j = c0; j < c1; ++j) {
            const double v = static_cast<double>(values(i, j));
            sum += std::isnan(v) ? vmin : std::clamp(v, vmin, vmax);
          }
        column[r] = sum / static_cast<double>((r1 - r0) * (c1 - c0));
      }
    }
  }
  const PLFLT* const* columns() const { return columns_.data(); }
  PLINT rows() const { return static_cast<PLINT>(rows_); }
  PLINT cols() const { return static_cast<PLINT>(cols_); }

 private:
  int64_t rows_, cols_;
  std::vector<PLFLT> storage_;
  std::vector<PLFLT*> columns_;
};

// The cells over [x0, x1] × [y_top, y_bottom], vmin the colour map's first colour and vmax its
// last, as the colour bar says. (plimage scaled the colours to the cells' own range instead, so a
// matrix that did not reach vmin and vmax was drawn with colours the bar gives other values.)
void draw_cells(const Cells& cells, double x0, double x1, double y_top, double y_bottom,
                double vmin, double vmax) {
  plimagefr(cells.columns(), cells.cols(), cells.rows(), x0, x1, y_top, y_bottom, vmin, vmax, vmin,
            vmax, nullptr, nullptr);
}

void draw_colorbar(double vmin, double vmax, const std::string& label) {
  const std::array<PLINT, 1> label_opts = {PL_COLORBAR_LABEL_RIGHT}, sub_ticks = {0},
                             n_values = {2};
  const std::array<const char*, 1> labels = {label.c_str()}, axis_opts = {"bcvtm"};
  const std::array<PLFLT, 1> ticks = {0.0};
  const std::array<PLFLT, 2> range = {vmin, vmax};
  const PLFLT* values[] = {range.data()};
  PLFLT w = 0, h = 0;
  plcol0(kInk);
  plcolorbar(&w, &h, PL_COLORBAR_GRADIENT,
             PL_POSITION_RIGHT | PL_POSITION_VIEWPORT | PL_POSITION_OUTSIDE, 0.03, 0.0, 0.035, 1.0,
             0, kInk, 1, 0.0, 0.0, 0, 0.0, 1, label_opts.data(), labels.data(), 1, axis_opts.data(),
             ticks.data(), sub_ticks.data(), n_values.data(), values);
}

}  // namespace

void write_heatmap(const std::string& path, const Heatmap& p) {
  constexpr const char* fn = "write_heatmap";
  check_size(fn, p.width, p.height);
  if (!p.values.defined() || p.values.rank() != 2 || p.values.numel() == 0)
    fail<ShapeError>(fn, "values must be a non-empty (rows, cols) matrix, got ",
                     p.values.defined() ? p.values.shape().str() : std::string("none"));
  if (!(std::isfinite(p.vmin) && std::isfinite(p.vmax) && p.vmin < p.vmax))
    fail<ValueError>(fn, "need finite vmin < vmax, got ", p.vmin, ", ", p.vmax);
  if (!(p.dx > 0 && std::isfinite(p.dx) && p.dy > 0 && std::isfinite(p.dy)))
    fail<ValueError>(fn, "need finite dx, dy > 0, got ", p.dx, ", ", p.dy);
  const int64_t rows = p.values.dim(0), cols = p.values.dim(1);
  const Cells cells(p.values, p.vmin, p.vmax, 2 * p.height, 2 * p.width);
  const double x0 = p.x0 - 0.5 * p.dx, x1 = p.x0 + (static_cast<double>(cols) - 0.5) * p.dx;
  const double y_top = p.y0 - 0.5 * p.dy, y_bottom = p.y0 + (static_cast<double>(rows) - 0.5) * p.dy;
  const auto bytes = render(fn, p.width, p.height, [&] {
    set_colormap(p.colormap);
    plschr(0.0, 1.1);
    // At least 95 pixels below the axes for the tick labels and the x label.
    plvpor(0.12, 0.84, std::max(0.11, 95.0 / p.height), 0.91);
    // Row y0 at the top: the world y axis runs downwards (unless y_up).
    if (p.y_up)
      plwind(x0, x1, y_top, y_bottom);
    else
      plwind(x0, x1, y_bottom, y_top);
    draw_cells(cells, x0, x1, y_top, y_bottom, p.vmin, p.vmax);
    plcol0(kInk);
    plbox("bcnst", 0.0, 0, "bcnstv", 0.0, 0);
    pllab(p.x_label.c_str(), p.y_label.c_str(), p.title.c_str());
    draw_colorbar(p.vmin, p.vmax, p.value_label);
  });
  internal::write_file_bytes(fn, path, bytes);
}

}  // namespace attn::io

namespace attn::io {

namespace {

void check_panel(const char* fn, size_t i, const HeatmapPanel& p) {
  if (!p.values.defined() || p.values.rank() != 2 || p.values.numel() == 0)
    fail<ShapeError>(fn, "panel ", i, ": values must be a non-empty (rows, cols) matrix, got ",
                     p.values.defined() ? p.values.shape().str() : std::string("none"));
  if (!(std::isfinite(p.vmin) && std::isfinite(p.vmax) && p.vmin < p.vmax))
    fail<ValueError>(fn, "panel ", i, ": need finite vmin < vmax, got ", p.vmin, ", ", p.vmax);
}

// One panel in the viewport [vx0, vx1] × [vy0, vy1] (normalised page coordinates).
void draw_panel(const HeatmapPanel& p, int panel_size, double vx0, double vx1, double vy0,
                double vy1) {
  const int64_t rows = p.values.dim(0), cols = p.values.dim(1);
  const Cells cells(p.values, p.vmin, p.vmax, 2 * panel_size, 2 * panel_size);
  set_colormap(p.colormap);
  plvpor(vx0, vx1, vy0, vy1);
  const double x0 = -0.5, x1 = static_cast<double>(cols) - 0.5;
  const double y_top = -0.5, y_bottom = static_cast<double>(rows) - 0.5;
  plwind(x0, x1, y_bottom, y_top);
  draw_cells(cells, x0, x1, y_top, y_bottom, p.vmin, p.vmax);
  plcol0(kInk);
  plbox("bc", 0.0, 0, "bc", 0.0, 0);
  plmtex("t", 0.8, 0.5, 0.5, p.title.c_str());
  for (size_t m = 0; m < p.markers.size(); ++m) {
    PLFLT x = p.markers[m].first, y = p.markers[m].second;
    plcol0(kFirstSeries + 3);  // red rings, white numbers beside them
    plwidth(3.0);
    plssym(0.0, 2.2);
    plpoin(1, &x, &y, 4);  // a circle
    plwidth(1.0);
    plcol0(0);
    const std::string label = std::to_string(p.first_marker_number + static_cast<int>(m));
    plptex(x + 0.06 * static_cast<double>(cols), y - 0.06 * static_cast<double>(rows), 1.0, 0.0,
           0.0, label.c_str());
  }
  plssym(0.0, 1.0);
  if (p.colormap != Colormap::kGray) {
    plschr(0.0, 0.7);
    draw_colorbar(p.vmin, p.vmax, "");
    plschr(0.0, 0.85);
  }
}

}  // namespace

void write_heatmap_grid(const std::string& path, const HeatmapGrid& g) {
  constexpr const char* fn = "write_heatmap_grid";
  if (g.panels.empty()) fail<ValueError>(fn, "no panels");
  if (g.columns < 1) fail<ValueError>(fn, "columns must be >= 1, got ", g.columns);
  for (size_t i = 0; i < g.panels.size(); ++i) check_panel(fn, i, g.panels[i]);
  const int cols = std::min<int>(g.columns, static_cast<int>(g.panels.size()));
  const int rows = static_cast<int>((g.panels.size() + static_cast<size_t>(cols) - 1) /
                                    static_cast<size_t>(cols));
  const int title_px = 60, width = cols * g.panel_size, height = rows * g.panel_size + title_px;
  check_size(fn, width, height);
  const auto bytes = render(fn, width, height, [&] {
    plschr(0.0, 1.1);
    plvpor(0.0, 1.0, 0.0, 1.0);
    plwind(0.0, 1.0, 0.0, 1.0);
    plcol0(kInk);
    plmtex("t", -1.6, 0.5, 0.5, g.title.c_str());
    plschr(0.0, 0.85);
    const double ph = static_cast<double>(g.panel_size) / height, pw = 1.0 / cols;
    for (size_t i = 0; i < g.panels.size(); ++i) {
      const int r = static_cast<int>(i) / cols, c = static_cast<int>(i) % cols;
      const double top = 1.0 - static_cast<double>(title_px) / height - r * ph;
      // Room for the panel title above, the colour bar and its exponent to the right, and the
      // colour bar's end below.
      draw_panel(g.panels[i], g.panel_size, c * pw + 0.06 * pw, c * pw + 0.70 * pw, top - 0.86 * ph,
                 top - 0.12 * ph);
    }
  });
  internal::write_file_bytes(fn, path, bytes);
}

}  // namespace attn::io
