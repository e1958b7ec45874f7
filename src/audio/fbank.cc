// SPDX-License-Identifier: MIT
// Kaldi's compute-fbank-feats, step for step as torchaudio.compliance.kaldi.fbank does it: frames
// (snipped or reflected at the edges), dither, DC removal, raw log energy, pre-emphasis, window,
// zero padding to a power of two, FFT, power spectrum, triangular mel filters, log.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numbers>

#include "attn/audio/features.h"
#include "attn/error.h"
#include "audio/internal/fft.h"
#include "audio/internal/frames.h"
#include "audio/internal/mel_filters.h"

namespace attn::audio {
namespace {

constexpr const char* kFn = "audio::fbank";
constexpr float kEpsilon = std::numeric_limits<float>::epsilon();  // Kaldi's log floor

struct FrameGeometry {
  int64_t window_size, window_shift, padded_size;
};

// torchaudio truncates the sample counts (int(rate · ms · 0.001)).
FrameGeometry frame_geometry(const char* fn, const FbankOptions& o) {
  if (!(o.sample_frequency > 0 && std::isfinite(o.sample_frequency)))
    fail<ValueError>(fn, "sample_frequency must be > 0, got ", o.sample_frequency);
  if (!(o.frame_length > 0 && o.frame_shift > 0 && std::isfinite(o.frame_length) &&
        std::isfinite(o.frame_shift)))
    fail<ValueError>(fn, "frame_length and frame_shift must be > 0 ms, got ", o.frame_length, ", ",
                     o.frame_shift);
  FrameGeometry g{};
  g.window_size = static_cast<int64_t>(o.sample_frequency * o.frame_length * 0.001);
  g.window_shift = static_cast<int64_t>(o.sample_frequency * o.frame_shift * 0.001);
  if (g.window_size < 2 || g.window_size > (1 << 20))
    fail<ValueError>(fn, "frame_length ", o.frame_length, " ms is ", g.window_size,
                     " samples; need 2 to 2^20");
  if (g.window_shift < 1)
    fail<ValueError>(fn, "frame_shift ", o.frame_shift, " ms is less than one sample");
  g.padded_size = g.window_size;
  if (o.round_to_power_of_two)
    while (g.padded_size & (g.padded_size - 1)) g.padded_size += g.padded_size & -g.padded_size;
  if (g.padded_size % 2 != 0)
    fail<ValueError>(fn, "the FFT size ", g.padded_size,
                     " must be even: set round_to_power_of_two or change frame_length");
  if (!(o.preemphasis_coefficient >= 0 && o.preemphasis_coefficient <= 1))
    fail<ValueError>(fn, "preemphasis_coefficient must be in [0, 1], got ",
                     o.preemphasis_coefficient);
  if (!(o.dither >= 0 && std::isfinite(o.dither)))
    fail<ValueError>(fn, "dither must be >= 0, got ", o.dither);
  if (!(o.energy_floor >= 0))
    fail<ValueError>(fn, "energy_floor must be >= 0, got ", o.energy_floor);
  return g;
}

std::vector<float> window_function(WindowType type, int64_t size, double blackman_coeff) {
  std::vector<float> w(static_cast<size_t>(size));
  const double a = 2.0 * std::numbers::pi / static_cast<double>(size - 1);
  for (int64_t i = 0; i < size; ++i) {
    const double hann = 0.5 - 0.5 * std::cos(a * static_cast<double>(i));
    double v = 1.0;
    switch (type) {
      case WindowType::kHanning:
        v = hann;
        break;
      case WindowType::kPovey:
        v = std::pow(hann, 0.85);
        break;
      case WindowType::kHamming:
        v = 0.54 - 0.46 * std::cos(a * static_cast<double>(i));
        break;
      case WindowType::kRectangular:
        v = 1.0;
        break;
      case WindowType::kBlackman:
        v = blackman_coeff - 0.5 * std::cos(a * static_cast<double>(i)) +
            (0.5 - blackman_coeff) * std::cos(2.0 * a * static_cast<double>(i));
        break;
    }
    w[static_cast<size_t>(i)] = static_cast<float>(v);
  }
  return w;
}

// Kaldi's reflection at the edges: -1 -> 0, -2 -> 1, N -> N - 1, N + 1 -> N - 2.
int64_t reflect_index(int64_t s, int64_t n) {
  while (s < 0 || s >= n) s = s < 0 ? -s - 1 : 2 * n - 1 - s;
  return s;
}

// Sums in double over eight independent chains: one chain's add latency would cost more than the
// FFT.
template <typename Term>
double sum_of(int64_t n, Term term) {
  double lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lane[l] += term(i + l);
  for (; i < n; ++i) lane[0] += term(i);
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

float log_energy(const float* x, int64_t n, double energy_floor) {
  const double sum =
      sum_of(n, [x](int64_t i) { return static_cast<double>(x[i]) * static_cast<double>(x[i]); });
  float e = std::log(std::max(static_cast<float>(sum), kEpsilon));
  if (energy_floor > 0.0) e = std::max(e, static_cast<float>(std::log(energy_floor)));
  return e;
}

struct FramePlan {
  const FbankOptions& options;
  FrameGeometry geometry;
  std::vector<float> window;
  internal::MelFilters filters;
  internal::RealFft fft;
  int64_t num_samples;
};

// Fills the FFT input with frame f (window_size samples, then zeros) and returns its log energy.
float prepare_frame(const FramePlan& p, const float* x, int64_t stride, int64_t f, float* buf) {
  const FbankOptions& o = p.options;
  const int64_t ws = p.geometry.window_size, shift = p.geometry.window_shift;
  const int64_t start = o.snip_edges ? f * shift : f * shift + shift / 2 - ws / 2;
  if (start >= 0 && start + ws <= p.num_samples) {
    for (int64_t j = 0; j < ws; ++j) buf[j] = x[(start + j) * stride];
  } else {
    for (int64_t j = 0; j < ws; ++j) buf[j] = x[reflect_index(start + j, p.num_samples) * stride];
  }
  if (o.dither > 0.0) {
    Rng rng(o.seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(f + 1)));
    for (int64_t j = 0; j < ws; ++j) buf[j] += static_cast<float>(o.dither * rng.normal());
  }
  if (o.remove_dc_offset) {
    const double sum = sum_of(ws, [buf](int64_t j) { return static_cast<double>(buf[j]); });
    const auto mean = static_cast<float>(sum / static_cast<double>(ws));
    for (int64_t j = 0; j < ws; ++j) buf[j] -= mean;
  }
  float energy = o.raw_energy ? log_energy(buf, ws, o.energy_floor) : 0.0f;
  const auto c = static_cast<float>(o.preemphasis_coefficient);
  if (c != 0.0f) {
    for (int64_t j = ws - 1; j > 0; --j) buf[j] -= c * buf[j - 1];
    buf[0] -= c * buf[0];
  }
  for (int64_t j = 0; j < ws; ++j) buf[j] *= p.window[static_cast<size_t>(j)];
  std::fill(buf + ws, buf + p.geometry.padded_size, 0.0f);
  if (!o.raw_energy) energy = log_energy(buf, p.geometry.padded_size, o.energy_floor);
  return energy;
}

// One output row: the mel energies (logged) and the energy where the options put it.
void frame_features(const FramePlan& p, const internal::FftBuffers& buf, float energy,
                    float* spectrum, float* row) {
  const FbankOptions& o = p.options;
  p.fft.forward(buf);
  const int64_t bins = p.geometry.padded_size / 2 + 1;
  const float* z = buf.output();
  for (int64_t k = 0; k < bins; ++k) {
    const float power = z[2 * k] * z[2 * k] + z[2 * k + 1] * z[2 * k + 1];
    spectrum[k] = o.use_power ? power : std::sqrt(power);
  }
  const bool energy_first = o.use_energy && !o.htk_compat;
  float* mel = row + (energy_first ? 1 : 0);
  p.filters.apply(spectrum, mel);
  if (o.use_log_fbank)
    for (int m = 0; m < o.num_mel_bins; ++m) mel[m] = std::log(std::max(mel[m], kEpsilon));
  if (o.use_energy) row[o.htk_compat ? o.num_mel_bins : 0] = energy;
}

void subtract_column_means(Tensor& features) {
  const int64_t rows = features.dim(0), cols = features.dim(1);
  std::vector<double> mean(static_cast<size_t>(cols), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      mean[static_cast<size_t>(c)] += static_cast<double>(features(r, c));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      features(r, c) -=
          static_cast<float>(mean[static_cast<size_t>(c)] / static_cast<double>(rows));
}

void check_waveform(const char* fn, ConstTensorView waveform) {
  if (!waveform.defined() || waveform.rank() != 1)
    fail<ShapeError>(fn, "waveform must be (N) mono samples, got ",
                     waveform.defined() ? waveform.shape().str() : std::string("none"));
  internal::check_finite_samples(fn, waveform);
}

}  // namespace

WindowType parse_window_type(const std::string& name) {
  if (name == "povey") return WindowType::kPovey;
  if (name == "hanning") return WindowType::kHanning;
  if (name == "hamming") return WindowType::kHamming;
  if (name == "rectangular") return WindowType::kRectangular;
  if (name == "blackman") return WindowType::kBlackman;
  fail<ValueError>("parse_window_type",
                   "window_type must be povey, hanning, hamming, rectangular or "
                   "blackman, got '",
                   name, "'");
}

int64_t fbank_num_frames(int64_t num_samples, const FbankOptions& options) {
  const FrameGeometry g = frame_geometry("audio::fbank_num_frames", options);
  if (num_samples < 0)
    fail<ValueError>("audio::fbank_num_frames", "num_samples < 0: ", num_samples);
  if (options.snip_edges)
    return num_samples < g.window_size ? 0 : 1 + (num_samples - g.window_size) / g.window_shift;
  return (num_samples + g.window_shift / 2) / g.window_shift;
}

Tensor kaldi_mel_banks(const FbankOptions& options) {
  const FrameGeometry g = frame_geometry("audio::kaldi_mel_banks", options);
  return internal::kaldi_mel_filters("audio::kaldi_mel_banks", options, g.padded_size).dense();
}

Tensor fbank(ConstTensorView waveform, const FbankOptions& options, const Context& ctx) {
  check_waveform(kFn, waveform);
  const FrameGeometry g = frame_geometry(kFn, options);
  const int64_t n = waveform.dim(0), frames = fbank_num_frames(n, options);
  const int64_t cols = options.num_mel_bins + (options.use_energy ? 1 : 0);
  const FramePlan plan{options,
                       g,
                       window_function(options.window_type, g.window_size, options.blackman_coeff),
                       internal::kaldi_mel_filters(kFn, options, g.padded_size),
                       internal::RealFft(static_cast<int>(g.padded_size)),
                       n};
  Tensor out = Tensor::uninitialized(Shape{frames, cols});
  const int threads = static_cast<int>(std::clamp<int64_t>(frames / 64, 1, ctx.num_threads()));
  // Buffers are allocated here, not in the parallel region, so that a failed allocation throws.
  std::vector<std::unique_ptr<internal::FftBuffers>> buffers;
  for (int t = 0; t < threads; ++t)
    buffers.push_back(std::make_unique<internal::FftBuffers>(static_cast<int>(g.padded_size)));
  std::vector<float> spectra(static_cast<size_t>(threads * (g.padded_size / 2 + 1)));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t f = 0; f < frames; ++f) {
    const int t = omp_get_thread_num();
    const internal::FftBuffers& buf = *buffers[static_cast<size_t>(t)];
    const float energy = prepare_frame(plan, waveform.data(), waveform.stride(0), f, buf.input());
    frame_features(plan, buf, energy, spectra.data() + t * (g.padded_size / 2 + 1),
                   out.data() + f * cols);
  }
  if (options.subtract_mean && frames > 0) subtract_column_means(out);
  return out;
}


// ------------------------------------------------------------------------------ StreamingFbank

StreamingFbank::StreamingFbank(const FbankOptions& options, const Context& ctx)
    : options_(options), ctx_(ctx) {
  constexpr const char* fn = "audio::StreamingFbank";
  const FrameGeometry g = frame_geometry(fn, options);
  if (!options.snip_edges || options.dither != 0.0 || options.subtract_mean)
    fail<ValueError>(fn, "snip_edges = false, dither and subtract_mean need the whole utterance; "
                         "a stream can use none of them");
  window_ = g.window_size;
  shift_ = g.window_shift;
}

Tensor StreamingFbank::push(std::span<const float> samples) {
  pending_.insert(pending_.end(), samples.begin(), samples.end());
  const auto have = static_cast<int64_t>(pending_.size());
  const int64_t n = fbank_num_frames(have, options_);
  if (n == 0) return Tensor(Shape{0, num_bins()});
  const int64_t used = (n - 1) * shift_ + window_;
  Tensor frames = fbank(ConstTensorView(pending_.data(), Shape{used}), options_, ctx_);
  pending_.erase(pending_.begin(), pending_.begin() + n * shift_);
  return frames;
}

}  // namespace attn::audio
