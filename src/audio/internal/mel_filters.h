// SPDX-License-Identifier: MIT
// Mel filter banks stored sparsely: each filter's nonzero weights over a contiguous range of FFT
// bins (a triangle spans a few to a few dozen of the 257 bins), so applying 80 of them costs about
// two multiply-adds per bin instead of 80.
#pragma once

#include <cstdint>
#include <vector>

#include "attn/audio/features.h"
#include "attn/tensor.h"

namespace attn::audio::internal {

class MelFilters {
 public:
  // dense: (num_filters, num_bins); zeros outside each filter's support are dropped.
  explicit MelFilters(const std::vector<std::vector<double>>& dense);
  int num_filters() const { return static_cast<int>(first_.size()); }
  int64_t num_bins() const { return num_bins_; }
  // out[m] = sum_k filter[m][k] · spectrum[k] for every filter m (overwritten).
  void apply(const float* spectrum, float* out) const;
  // The same for a block of n <= kBlock spectra stored bin-major, spectra[k · kBlock + j] for frame
  // j: out[j · out_stride + m] (overwritten). The kBlock frames share each weight, so the inner
  // loop is one SIMD multiply-add across them; the sums run in apply()'s order (with fused
  // multiply-adds where the CPU has them, so they may differ from apply() in the last bit). With
  // log_floor > 0, each value is log(max(sum, log_floor)) instead. lane_min, when not null
  // (kBlock values, 64-byte aligned; overwritten): each frame's smallest sum, before the log.
  static constexpr int kBlock = 16;
  void apply_block(const float* spectra, int n, float* out, int64_t out_stride,
                   float log_floor = 0.0f, float* lane_min = nullptr) const;
  Tensor dense() const;  // (num_filters, num_bins)

 private:
  int64_t num_bins_;
  std::vector<int64_t> first_;   // first nonzero bin of each filter
  std::vector<int64_t> offset_;  // where its weights start in weights_ (num_filters + 1 entries)
  std::vector<float> weights_;   // every filter's nonzero range, one after another
};

// Kaldi's triangular filters on the mel scale 1127 ln(1 + f / 700), for FFT size padded_size; the
// Nyquist bin's weight is zero (as in torchaudio's padded column).
MelFilters kaldi_mel_filters(const char* fn, const FbankOptions& options, int64_t padded_size);

// Slaney-scale, Slaney-normalised filters (librosa's default), from 0 Hz to Nyquist.
MelFilters slaney_mel_filters(const char* fn, int sample_rate, int n_fft, int n_mels);

}  // namespace attn::audio::internal
