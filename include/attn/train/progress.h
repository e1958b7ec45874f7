// SPDX-License-Identifier: MIT
// What a training loop shows and keeps: a one-line progress bar (steps/s, loss, ETA) and metrics as
// CSV.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

namespace attn::train {

// Redraws one line on `out` (use std::cerr) at most every min_interval_s:
//   [#########.........]  450/1000  45%  312.4 step/s  loss 0.8123  acc 0.731  ETA 1.8s
// On a terminal (std::cerr or std::cout attached to one) the line is redrawn in place with a bar;
// anywhere else (a file, a pipe, a CI log) a plain line is written at each tenth of the run and at
// the end, without carriage returns or bar characters.
class ProgressBar {
 public:
  ProgressBar(std::ostream& out, int64_t total_steps, bool enabled = true,
              double min_interval_s = 0.1);
  // step: completed steps; a NaN loss is not shown (work that has none), nor a negative accuracy.
  void update(int64_t step, double loss, double accuracy = -1.0);
  void finish();                                                   // final redraw and newline

 private:
  void draw(int64_t step);
  std::ostream& out_;
  int64_t total_;
  bool enabled_, terminal_;
  int64_t next_line_step_ = 0;  // plain-lines mode: the step of the next line
  double min_interval_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int64_t step_ = 0;
  double loss_ = 0.0, accuracy_ = -1.0;
};

// A CSV file with a fixed header; every row must have one value per column. append: continue an
// existing file (a resumed run) instead of starting a new one with the header.
class CsvLog {
 public:
  CsvLog(const std::string& path, std::vector<std::string> columns, bool append = false);
  void row(const std::vector<double>& values);

 private:
  std::ofstream f_;
  std::string path_;
  size_t columns_;
};

}  // namespace attn::train
