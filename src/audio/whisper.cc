// SPDX-License-Identifier: MIT
// Whisper's log_mel_spectrogram: torch.stft(center=True, pad_mode="reflect") with a periodic Hann
// window, the last frame dropped, power spectrum, Slaney mel filters, log10 with two clamps.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numbers>

#include "attn/audio/features.h"
#include "attn/error.h"
#include "audio/internal/fft.h"
#include "audio/internal/frames.h"
#include "audio/internal/mel_filters.h"

namespace attn::audio {
namespace {

constexpr const char* kFn = "audio::whisper_log_mel";

// torch's "reflect" padding, which does not repeat the edge sample: -1 -> 1, N -> N - 2.
int64_t reflect_without_edge(int64_t s, int64_t n) {
  if (s < 0) return -s;
  if (s >= n) return 2 * (n - 1) - s;
  return s;
}

void check_options(const WhisperOptions& o) {
  if (o.n_fft < 2 || o.n_fft > (1 << 16) || o.hop_length < 1 || o.n_mels < 1 || o.n_mels > 4096 ||
      o.sample_rate < 1)
    fail<ValueError>(kFn,
                     "need n_fft in [2, 65536], hop_length >= 1, n_mels in [1, 4096] and "
                     "sample_rate >= 1, got ",
                     o.n_fft, ", ", o.hop_length, ", ", o.n_mels, ", ", o.sample_rate);
}

}  // namespace

Tensor slaney_mel_banks(int sample_rate, int n_fft, int n_mels) {
  return internal::slaney_mel_filters("audio::slaney_mel_banks", sample_rate, n_fft, n_mels)
      .dense();
}

Tensor whisper_log_mel(ConstTensorView waveform, const WhisperOptions& o, const Context& ctx) {
  check_options(o);
  if (!waveform.defined() || waveform.rank() != 1)
    fail<ShapeError>(kFn, "waveform must be (N) mono samples, got ",
                     waveform.defined() ? waveform.shape().str() : std::string("none"));
  const int64_t n = waveform.dim(0), frames = n / o.hop_length, half = o.n_fft / 2;
  if (frames > 0 && n <= half)
    fail<ValueError>(kFn, "reflect padding by n_fft / 2 = ", half, " needs more than ", half,
                     " samples, got ", n);
  internal::check_finite_samples(kFn, waveform);
  const internal::MelFilters filters =
      internal::slaney_mel_filters(kFn, o.sample_rate, o.n_fft, o.n_mels);
  const internal::RealFft fft(o.n_fft);
  std::vector<float> window(static_cast<size_t>(o.n_fft));
  for (int j = 0; j < o.n_fft; ++j)
    window[static_cast<size_t>(j)] =
        static_cast<float>(0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * j / o.n_fft));
  Tensor out = Tensor::uninitialized(Shape{frames, o.n_mels});
  const int threads = static_cast<int>(std::clamp<int64_t>(frames / 64, 1, ctx.num_threads()));
  std::vector<std::unique_ptr<internal::FftBuffers>> buffers;
  for (int t = 0; t < threads; ++t)
    buffers.push_back(std::make_unique<internal::FftBuffers>(o.n_fft));
  const int64_t bins = o.n_fft / 2 + 1;
  std::vector<float> spectra(static_cast<size_t>(threads * bins));
  const float* x = waveform.data();
  const int64_t stride = waveform.stride(0);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t f = 0; f < frames; ++f) {
    const int t = omp_get_thread_num();
    const internal::FftBuffers& buf = *buffers[static_cast<size_t>(t)];
    float* in = buf.input();
    for (int64_t j = 0; j < o.n_fft; ++j)
      in[j] = x[reflect_without_edge(f * o.hop_length - half + j, n) * stride] *
              window[static_cast<size_t>(j)];
    fft.forward(buf);
    float* spectrum = spectra.data() + t * bins;
    const float* z = buf.output();
    for (int64_t k = 0; k < bins; ++k)
      spectrum[k] = z[2 * k] * z[2 * k] + z[2 * k + 1] * z[2 * k + 1];
    float* row = out.data() + f * o.n_mels;
    filters.apply(spectrum, row);
    for (int m = 0; m < o.n_mels; ++m) row[m] = std::log10(std::max(row[m], 1e-10f));
  }
  // The second clamp is relative to the loudest value of the whole utterance.
  float peak = -INFINITY;
  for (float v : out.values()) peak = std::max(peak, v);
  for (float& v : out.values()) v = (std::max(v, peak - 8.0f) + 4.0f) / 4.0f;
  return out;
}

}  // namespace attn::audio
