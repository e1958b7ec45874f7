// SPDX-License-Identifier: MIT
#include "audio/internal/mel_filters.h"

#include "audio/internal/feature_kernels.h"

#include <algorithm>
#include <cmath>

#include "attn/error.h"

namespace attn::audio::internal {

MelFilters::MelFilters(const std::vector<std::vector<double>>& dense)
    : num_bins_(dense.empty() ? 0 : static_cast<int64_t>(dense[0].size())) {
  for (const auto& filter : dense) {
    int64_t lo = 0, hi = static_cast<int64_t>(filter.size());
    while (lo < hi && filter[static_cast<size_t>(lo)] == 0.0) ++lo;
    while (hi > lo && filter[static_cast<size_t>(hi - 1)] == 0.0) --hi;
    first_.push_back(lo);
    offset_.push_back(static_cast<int64_t>(weights_.size()));
    for (int64_t k = lo; k < hi; ++k)
      weights_.push_back(static_cast<float>(filter[static_cast<size_t>(k)]));
  }
  offset_.push_back(static_cast<int64_t>(weights_.size()));
}

void MelFilters::apply(const float* spectrum, float* out) const {
  const float* w = weights_.data();
  for (size_t m = 0; m < first_.size(); ++m) {
    const float* s = spectrum + first_[m];
    const int64_t begin = offset_[m], length = offset_[m + 1] - begin;
    float sum = 0.0f;
    for (int64_t k = 0; k < length; ++k) sum += w[begin + k] * s[k];
    out[m] = sum;
  }
}

void MelFilters::apply_block(const float* spectra, int n, float* out, int64_t out_stride,
                             float log_floor, float* lane_min) const {
  mel_block(weights_.data(), first_.data(), offset_.data(), num_filters(), spectra, kBlock, n,
            log_floor, out, out_stride, lane_min);
}

Tensor MelFilters::dense() const {
  Tensor out = Tensor::zeros(Shape{num_filters(), num_bins_});
  for (int m = 0; m < num_filters(); ++m) {
    const auto mu = static_cast<size_t>(m);
    for (int64_t k = 0; k < offset_[mu + 1] - offset_[mu]; ++k)
      out(m, first_[mu] + k) = weights_[static_cast<size_t>(offset_[mu] + k)];
  }
  return out;
}

namespace {

double kaldi_mel(double hz) { return 1127.0 * std::log(1.0 + hz / 700.0); }

// Slaney's scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above.
constexpr double kSlaneyHzPerMel = 200.0 / 3.0, kSlaneyBreakHz = 1000.0, kSlaneyBreakMel = 15.0;
double slaney_logstep() { return std::log(6.4) / 27.0; }
double slaney_mel(double hz) {
  if (hz < kSlaneyBreakHz) return hz / kSlaneyHzPerMel;
  return kSlaneyBreakMel + std::log(hz / kSlaneyBreakHz) / slaney_logstep();
}
double slaney_hz(double mel) {
  if (mel < kSlaneyBreakMel) return mel * kSlaneyHzPerMel;
  return kSlaneyBreakHz * std::exp(slaney_logstep() * (mel - kSlaneyBreakMel));
}

}  // namespace

MelFilters kaldi_mel_filters(const char* fn, const FbankOptions& o, int64_t padded_size) {
  if (o.num_mel_bins <= 3 || o.num_mel_bins > 4096)
    fail<ValueError>(fn, "num_mel_bins must be in [4, 4096], got ", o.num_mel_bins);
  const double nyquist = 0.5 * o.sample_frequency;
  const double high = o.high_freq <= 0.0 ? o.high_freq + nyquist : o.high_freq;
  if (!(o.low_freq >= 0.0 && o.low_freq < nyquist && high > 0.0 && high <= nyquist &&
        o.low_freq < high))
    fail<ValueError>(fn, "need 0 <= low_freq < high_freq <= Nyquist (", nyquist,
                     " Hz), got low_freq ", o.low_freq, ", high_freq ", o.high_freq, " (", high,
                     " Hz)");
  const double bin_width = o.sample_frequency / static_cast<double>(padded_size);
  const double mel_low = kaldi_mel(o.low_freq), mel_high = kaldi_mel(high);
  const double delta = (mel_high - mel_low) / (o.num_mel_bins + 1);
  const int64_t fft_bins = padded_size / 2;  // the Nyquist bin (index fft_bins) gets no weight
  std::vector<std::vector<double>> dense(
      static_cast<size_t>(o.num_mel_bins),
      std::vector<double>(static_cast<size_t>(fft_bins + 1), 0.0));
  std::vector<double> bin_mel(static_cast<size_t>(fft_bins));
  for (int64_t k = 0; k < fft_bins; ++k)
    bin_mel[static_cast<size_t>(k)] = kaldi_mel(bin_width * static_cast<double>(k));
  for (int m = 0; m < o.num_mel_bins; ++m) {
    const double left = mel_low + m * delta, center = left + delta, right = center + delta;
    for (int64_t k = 0; k < fft_bins; ++k) {
      const double mel = bin_mel[static_cast<size_t>(k)];
      const double up = (mel - left) / (center - left), down = (right - mel) / (right - center);
      dense[static_cast<size_t>(m)][static_cast<size_t>(k)] = std::max(0.0, std::min(up, down));
    }
  }
  return MelFilters(dense);
}

MelFilters slaney_mel_filters(const char* fn, int sample_rate, int n_fft, int n_mels) {
  if (sample_rate < 1 || n_fft < 2 || n_fft > (1 << 20) || n_mels < 1 || n_mels > 4096)
    fail<ValueError>(fn, "need sample_rate >= 1, n_fft in [2, 2^20], n_mels in [1, 4096], got ",
                     sample_rate, ", ", n_fft, ", ", n_mels);
  const int64_t freqs = n_fft / 2 + 1;
  const double top =
      static_cast<double>(sample_rate / 2);  // torchaudio: linspace(0, sr // 2, freqs)
  const double mel_max = slaney_mel(0.5 * sample_rate);
  std::vector<double> f_pts(static_cast<size_t>(n_mels + 2));
  for (int i = 0; i < n_mels + 2; ++i)
    f_pts[static_cast<size_t>(i)] = slaney_hz(mel_max * i / (n_mels + 1));
  std::vector<std::vector<double>> dense(static_cast<size_t>(n_mels),
                                         std::vector<double>(static_cast<size_t>(freqs), 0.0));
  for (int m = 0; m < n_mels; ++m) {
    const double lo = f_pts[static_cast<size_t>(m)], mid = f_pts[static_cast<size_t>(m + 1)],
                 hi = f_pts[static_cast<size_t>(m + 2)];
    const double norm = 2.0 / (hi - lo);  // Slaney normalisation: each filter has unit area
    for (int64_t k = 0; k < freqs; ++k) {
      const double f =
          freqs == 1 ? 0.0 : top * static_cast<double>(k) / static_cast<double>(freqs - 1);
      const double up = (f - lo) / (mid - lo), down = (hi - f) / (hi - mid);
      dense[static_cast<size_t>(m)][static_cast<size_t>(k)] =
          norm * std::max(0.0, std::min(up, down));
    }
  }
  return MelFilters(dense);
}

}  // namespace attn::audio::internal
