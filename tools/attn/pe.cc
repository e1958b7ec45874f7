// SPDX-License-Identifier: MIT
// attn pe: print or plot the sinusoidal positional encoding.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "attn/attn.h"
#include "commands.h"

namespace attn::cli {

namespace {

struct PeOptions {
  int64_t pos = 0;
  CLI::Option* pos_opt = nullptr;  // given or not: any value of --pos is a request to print
  int64_t dim = 512;
  int64_t positions = 0;
  std::string png;
  double base = 10000.0;
};

// Python's repr(round(x, 4)): at most 4 decimals, trailing zeros dropped, at least one decimal
// digit.
std::string python_round4(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", x);
  std::string s(buf);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.push_back('0');
  return s;
}

void run_pe(const PeOptions& o) {
  if (o.dim < 1) usage_fail("--dim", "must be >= 1, got ", o.dim);
  const bool print = o.pos_opt->count() > 0;
  if (print && o.pos < 0) usage_fail("--pos", "must be >= 0, got ", o.pos);
  if (!print && o.png.empty())
    usage_fail("--pos/--png", "give --pos P to print, or --positions N --png FILE to plot");
  if (print) {
    TensorD row(Shape{1, o.dim});
    ops::sinusoidal_encoding(row.view(), o.pos, o.base);
    std::string line = "[";
    for (int64_t c = 0; c < o.dim; ++c) line += (c ? ", " : "") + python_round4(row(0, c));
    std::cout << line << "]\n";
  }
  if (!o.png.empty()) {
    if (o.positions < 1) usage_fail("--png", "needs --positions N with N >= 1");
    Tensor table(Shape{o.positions, o.dim});
    ops::sinusoidal_encoding(table.view(), 0, o.base);
    io::Heatmap plot;
    plot.title = "Sinusoidal positional encoding, d = " + std::to_string(o.dim) +
                 " (even columns sin, odd cos)";
    plot.x_label = "dimension i";
    plot.y_label = "position";
    plot.value_label = "PE(position, i)";
    plot.values = table.view();
    plot.vmin = -1.0, plot.vmax = 1.0;
    plot.colormap = io::Colormap::kDiverging;
    io::write_heatmap(o.png, plot);
    std::cerr << "wrote " << o.png << ": " << o.positions << " positions (rows) x " << o.dim
              << " dimensions (columns), blue -1 .. red +1\n";
  }
}

}  // namespace

void add_pe_command(CLI::App& app) {
  auto o = std::make_shared<PeOptions>();
  CLI::App* sub = app.add_subcommand(
      "pe", "Sinusoidal positional encoding: print one position or plot a table");
  o->pos_opt = sub->add_option("--pos", o->pos,
                               "Print PE(pos, ·) as a Python-style list rounded to 4 decimals");
  sub->add_option("--dim", o->dim, "Model dimension d (number of values per position)")
      ->capture_default_str();
  sub->add_option("--positions", o->positions, "Number of positions (rows) to plot with --png");
  sub->add_option("--png", o->png, "Write a heatmap (positions x dimensions) to this PNG file");
  sub->add_option("--base", o->base, "Frequency base (10000 in the paper)")->capture_default_str();
  sub->callback([o] { run_pe(*o); });
}

}  // namespace attn::cli
