// SPDX-License-Identifier: MIT
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "attn/audio/features.h"
#include "attn/error.h"

namespace attn::audio {

void CmvnStats::accumulate(ConstTensorView features) {
  constexpr const char* fn = "CmvnStats::accumulate";
  if (!features.defined() || features.rank() != 2 || features.dim(1) < 1)
    fail<ShapeError>(fn, "features must be (T, F >= 1), got ",
                     features.defined() ? features.shape().str() : std::string("none"));
  const int64_t rows = features.dim(0), cols = features.dim(1);
  if (sum_.empty()) {
    sum_.assign(static_cast<size_t>(cols), 0.0);
    sum_squares_.assign(static_cast<size_t>(cols), 0.0);
  } else if (cols != dim()) {
    fail<ShapeError>(fn, "features have ", cols, " columns but the statistics have ", dim(), " (",
                     features.shape().str(), ")");
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double v = features(r, c);
      sum_[static_cast<size_t>(c)] += v;
      sum_squares_[static_cast<size_t>(c)] += v * v;
    }
  frames_ += rows;
}

std::vector<double> CmvnStats::mean() const {
  if (frames_ == 0) fail<ValueError>("CmvnStats::mean", "no frames accumulated");
  std::vector<double> m(sum_.size());
  for (size_t c = 0; c < m.size(); ++c) m[c] = sum_[c] / static_cast<double>(frames_);
  return m;
}

std::vector<double> CmvnStats::inv_std(double floor) const {
  const std::vector<double> m = mean();
  std::vector<double> out(m.size());
  for (size_t c = 0; c < m.size(); ++c) {
    const double var = sum_squares_[c] / static_cast<double>(frames_) - m[c] * m[c];
    out[c] = 1.0 / std::sqrt(std::max(var, floor));
  }
  return out;
}

void CmvnStats::apply(TensorView features) const {
  if (!features.defined() || features.rank() != 2 || features.dim(1) != dim())
    fail<ShapeError>("CmvnStats::apply", "features must be (T, ", dim(), "), got ",
                     features.defined() ? features.shape().str() : std::string("none"));
  const std::vector<double> m = mean(), s = inv_std();
  for (int64_t r = 0; r < features.dim(0); ++r)
    for (int64_t c = 0; c < features.dim(1); ++c)
      features(r, c) =
          static_cast<float>((static_cast<double>(features(r, c)) - m[static_cast<size_t>(c)]) *
                             s[static_cast<size_t>(c)]);
}

void CmvnStats::save(const std::string& path) const {
  const nlohmann::json j = {
      {"mean_stat", sum_}, {"var_stat", sum_squares_}, {"frame_num", frames_}};
  std::ofstream out(path);
  out << j.dump() << "\n";
  if (!out) fail<IoError>("CmvnStats::save", path, ": cannot write");
}

CmvnStats CmvnStats::load(const std::string& path) {
  constexpr const char* fn = "CmvnStats::load";
  std::ifstream in(path);
  if (!in) fail<IoError>(fn, path, ": cannot open");
  CmvnStats s;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    s.sum_ = j.at("mean_stat").get<std::vector<double>>();
    s.sum_squares_ = j.at("var_stat").get<std::vector<double>>();
    s.frames_ = j.at("frame_num").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    fail<IoError>(fn, path, ": not a global_cmvn JSON file (", e.what(), ")");
  }
  if (s.sum_.empty() || s.sum_.size() != s.sum_squares_.size() || s.frames_ <= 0)
    fail<IoError>(fn, path,
                  ": mean_stat and var_stat must be non-empty and equally long, frame_num > 0");
  return s;
}

}  // namespace attn::audio
