// SPDX-License-Identifier: MIT
#include "attn/train/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "attn/error.h"

namespace attn::train {

ProgressBar::ProgressBar(std::ostream& out, int64_t total_steps, bool enabled,
                         double min_interval_s)
    : out_(out),
      total_(total_steps),
      enabled_(enabled),
      terminal_((&out == &std::cerr && isatty(STDERR_FILENO)) ||
                (&out == &std::cout && isatty(STDOUT_FILENO))),
      min_interval_(min_interval_s),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void ProgressBar::update(int64_t step, double loss, double accuracy) {
  step_ = step;
  loss_ = loss;
  accuracy_ = accuracy;
  if (!terminal_) {
    if (step >= next_line_step_ && step < total_) {
      draw(step);
      next_line_step_ = step + std::max<int64_t>(1, total_ / 10);
    }
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_draw_).count() >= min_interval_) {
    last_draw_ = now;
    draw(step);
  }
}

void ProgressBar::finish() {
  draw(step_);
  if (enabled_ && terminal_) out_ << "\n" << std::flush;
}

void ProgressBar::draw(int64_t step) {
  if (!enabled_) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(step) / elapsed : 0.0;
  const double frac = total_ > 0 ? static_cast<double>(step) / static_cast<double>(total_) : 1.0;
  const int width = 24, filled = static_cast<int>(frac * width);
  char buf[256];
  if (terminal_) {
    std::snprintf(buf, sizeof buf, "\r[%s%s]",
                  std::string(static_cast<size_t>(filled), '#').c_str(),
                  std::string(static_cast<size_t>(width - filled), '.').c_str());
    out_ << buf;
  }
  std::snprintf(buf, sizeof buf, " %6lld/%lld %3.0f%% %8.1f step/s",
                static_cast<long long>(step), static_cast<long long>(total_), 100.0 * frac, rate);
  out_ << buf;
  if (!std::isnan(loss_)) {  // NaN: work without a loss (data generation)
    std::snprintf(buf, sizeof buf, "  loss %.4f", loss_);
    out_ << buf;
  }
  if (accuracy_ >= 0) {
    std::snprintf(buf, sizeof buf, "  acc %.3f", accuracy_);
    out_ << buf;
  }
  if (rate > 0) {
    std::snprintf(buf, sizeof buf, "  ETA %.1fs ", static_cast<double>(total_ - step) / rate);
    out_ << buf;
  }
  if (!terminal_) out_ << "\n";
  out_ << std::flush;
}

CsvLog::CsvLog(const std::string& path, std::vector<std::string> columns, bool append)
    : path_(path), columns_(columns.size()) {
  std::error_code ec;
  const bool has_header = append && std::filesystem::file_size(path, ec) > 0 && !ec;
  f_.open(path, has_header ? std::ios::app : std::ios::trunc);
  if (!f_) fail<IoError>("CsvLog", "cannot open '", path, "' for writing: ", std::strerror(errno));
  if (has_header) return;
  for (size_t i = 0; i < columns.size(); ++i) f_ << (i ? "," : "") << columns[i];
  f_ << "\n";
}

void CsvLog::row(const std::vector<double>& values) {
  if (values.size() != columns_)
    fail<ValueError>("CsvLog::row", "expected ", columns_, " values, got ", values.size());
  char buf[64];
  for (size_t i = 0; i < values.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%.9g", values[i]);
    f_ << (i ? "," : "") << buf;
  }
  f_ << "\n" << std::flush;
  if (!f_) fail<IoError>("CsvLog::row", "cannot write '", path_, "': ", std::strerror(errno));
}

}  // namespace attn::train
