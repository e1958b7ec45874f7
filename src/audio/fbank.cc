// SPDX-License-Identifier: MIT
// Kaldi's compute-fbank-feats, step for step as torchaudio.compliance.kaldi.fbank does it: frames
// (snipped or reflected at the edges), dither, DC removal, raw log energy, pre-emphasis, window,
// zero padding to a power of two, FFT, power spectrum, triangular mel filters, log.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>
#include <numeric>
#include <tuple>
#include <type_traits>

#include "attn/audio/features.h"
#include "attn/error.h"
#include "audio/internal/feature_kernels.h"
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

// Rounded to float (torchaudio's window is a float32 tensor), kept as double for the double frame
// pass; 64-byte aligned, as the frame pass reads it in whole vectors (a load split over two cache
// lines costs two).
TensorD window_function(WindowType type, int64_t size, double blackman_coeff) {
  TensorD w = TensorD::uninitialized(Shape{size});
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
    w.data()[i] = static_cast<double>(static_cast<float>(v));
  }
  return w;
}

// Kaldi's reflection at the edges: -1 -> 0, -2 -> 1, N -> N - 1, N + 1 -> N - 2.
int64_t reflect_index(int64_t s, int64_t n) {
  while (s < 0 || s >= n) s = s < 0 ? -s - 1 : 2 * n - 1 - s;
  return s;
}

// log(max(sum_squares, ε)), floored at log(energy_floor) when that is > 0 (Kaldi's energy).
float floored_log_energy(double sum_squares, double energy_floor) {
  float e = std::log(std::max(static_cast<float>(sum_squares), kEpsilon));
  if (energy_floor > 0.0) e = std::max(e, static_cast<float>(std::log(energy_floor)));
  return e;
}

// The window and the mel filters of an option set: built once per process and option set (a
// program uses a few), since building them cost 3.5% of a 10 s fbank.
struct FrameTables {
  TensorD window;
  Tensor window_float;  // the same values (floats already), for the float32 frame pass
  internal::MelFilters filters;
};

std::shared_ptr<const FrameTables> frame_tables(const FbankOptions& o, const FrameGeometry& g) {
  using Key = std::tuple<int, int64_t, double, int, double, double, double, int64_t>;
  const Key key{static_cast<int>(o.window_type),
                g.window_size,
                o.blackman_coeff,
                o.num_mel_bins,
                o.low_freq,
                o.high_freq,
                o.sample_frequency,
                g.padded_size};
  static std::mutex mutex;
  static auto* cache = new std::map<Key, std::shared_ptr<const FrameTables>>();  // never destroyed
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = cache->find(key); it != cache->end()) return it->second;
  TensorD window = window_function(o.window_type, g.window_size, o.blackman_coeff);
  Tensor window_float = Tensor::uninitialized(Shape{g.window_size});
  std::copy_n(window.data(), g.window_size, window_float.data());
  auto tables = std::make_shared<const FrameTables>(
      FrameTables{std::move(window), std::move(window_float),
                  internal::kaldi_mel_filters(kFn, o, g.padded_size)});
  if (cache->size() >= 64) cache->clear();  // bounded, for programs that sweep options
  cache->emplace(key, tables);
  return tables;
}

// The power spectra come from a float32 FFT, and a pair of frames goes again through the double
// one when either frame's smallest mel energy is under kRedoBelow times the pair's energy
// (Σ_k |Z_k|² = n · Σ (a² + b²)). A float32 FFT's rounding is proportional to the energy of what
// it transforms, so it moves a mel energy m by about ε32 · sqrt(E / m) relatively; the bins that
// suffer are the near-empty ones (the band above a codec's cut-off, silence beside speech in the
// same pair). On the five LibriVox clips (bench/probes/fbank_float32_fft.py), 1e-9 sends 0.73% of
// the frames back and leaves at most 3.4e-4 of float32 error in the log-mel energies, against
// 1.2e-3 with no redo; the features stay 4.5e-4 from torchaudio's float64 (as in double
// throughout). The float32 transform takes 0.6 of the double one's time (FFTW, 512 points, two
// frames). Only the power spectrum takes this path (use_power, the default); magnitudes keep the
// double FFT.
constexpr double kRedoBelow = 1e-9;

struct FramePlan {
  const FbankOptions& options;
  FrameGeometry geometry;
  std::shared_ptr<const FrameTables> tables;
  internal::ComplexFftD fft;   // two frames per transform (internal/fft.h)
  internal::ComplexFftF fftf;  // the same in float32, when float32()
  int64_t num_samples;
  // With DC removal on snipped, in-place frames: the waveform's sums over blocks of `block`
  // samples (a divisor of the shift and the window), so that a frame's mean costs ws / block adds
  // instead of ws; each sample is summed once per call instead of ws / shift times. Empty (block
  // 0) otherwise.
  int64_t block = 0;
  std::vector<double> block_sums;
  // The window in T, for the frame pass that feeds the T transform.
  template <typename T>
  const T* window() const {
    if constexpr (std::is_same_v<T, float>)
      return tables->window_float.data();
    else
      return tables->window.data();
  }
  bool float32() const { return options.use_power; }  // kRedoBelow: the power spectrum only
  const internal::MelFilters& filters() const { return tables->filters; }
};

// Frame f's window_size samples: the waveform in place when it can be (interior, contiguous, no
// dither), else a copy in `scratch` (reflected at the edges, dithered).
const float* frame_samples(const FramePlan& p, ConstTensorView x, int64_t f, float* scratch) {
  const FbankOptions& o = p.options;
  const int64_t ws = p.geometry.window_size, shift = p.geometry.window_shift;
  const int64_t start = o.snip_edges ? f * shift : f * shift + shift / 2 - ws / 2;
  const bool interior = start >= 0 && start + ws <= p.num_samples;
  const int64_t stride = x.stride(0);
  if (interior && stride == 1 && o.dither == 0.0) return x.data() + start;
  for (int64_t j = 0; j < ws; ++j)
    scratch[j] =
        x.data()[(interior ? start + j : reflect_index(start + j, p.num_samples)) * stride];
  if (o.dither > 0.0) {
    Rng rng(o.seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(f + 1)));
    for (int64_t j = 0; j < ws; ++j) scratch[j] += static_cast<float>(o.dither * rng.normal());
  }
  return scratch;
}

// The mean that DC removal subtracts from frame f (its samples `raw`); 0 without DC removal.
double dc_offset(const FramePlan& p, int64_t f, const float* raw) {
  const int64_t ws = p.geometry.window_size;
  if (!p.options.remove_dc_offset) return 0.0;
  if (p.block == 0) return internal::frame_mean(raw, ws);
  const int64_t first = f * p.geometry.window_shift / p.block;
  double sum = 0.0;
  for (int64_t b = first; b < first + ws / p.block; ++b)
    sum += p.block_sums[static_cast<size_t>(b)];
  return sum / static_cast<double>(ws);
}

// Per-thread buffers of the frame loop.
struct BlockScratch {
  explicit BlockScratch(const FrameGeometry& g)
      : fft(static_cast<int>(g.padded_size)),
        fftf(static_cast<int>(g.padded_size)),
        fftf2(static_cast<int>(g.padded_size)),
        spectra(
            Tensor::uninitialized(Shape{(g.padded_size / 2 + 1) * internal::MelFilters::kBlock})),
        samples(2 * static_cast<size_t>(g.window_size)),
        silence(static_cast<size_t>(g.window_size), 0.0f) {
    // The zero padding past the frames, once: the frame pass writes only the frames' values, and
    // the transforms leave their input as it was.
    std::fill_n(fft.input(), 2 * g.padded_size, 0.0);
    std::fill_n(fftf.input(), 2 * g.padded_size, 0.0f);
    std::fill_n(fftf2.input(), 2 * g.padded_size, 0.0f);
  }
  internal::ComplexFftBuffersD fft;
  internal::ComplexFftBuffersF fftf, fftf2;  // float32: two pairs at a time
  // Bin-major: spectra[k · kBlock + j] for frame j of the block; 64-byte aligned, as the mel
  // filters read its rows in whole vectors.
  Tensor spectra;
  std::vector<float> samples;  // two frames' copies, when not read in place
  std::vector<float> silence;  // the partner of an odd block's last frame
};

// Frames f and f + 1 (silence when `two` is false) into the complex FFT input z (T: float or
// double; computed in T), the first in the real parts, the second in the imaginary ones (z's zero
// padding is BlockScratch's); their log energies into energy[0, 2) (0 unless use_energy) and
// their windowed Σ z² into windowed[0, 2) (the float32 redo test's energy).
template <typename T>
void prepare_pair(const FramePlan& p, ConstTensorView x, int64_t f, bool two, BlockScratch& s, T* z,
                  float* energy, double* windowed) {
  const FbankOptions& o = p.options;
  const int64_t ws = p.geometry.window_size;
  const float* raw[2] = {
      frame_samples(p, x, f, s.samples.data()),
      two ? frame_samples(p, x, f + 1, s.samples.data() + ws) : s.silence.data()};
  const double mean[2] = {dc_offset(p, f, raw[0]), two ? dc_offset(p, f + 1, raw[1]) : 0.0};
  double sum_squares[2];
  const bool raw_energy = o.use_energy && o.raw_energy;
  // DC removal, pre-emphasis and the window in one SIMD pass.
  internal::prepare_pair_rows(raw, ws, mean, o.preemphasis_coefficient, p.window<T>(), z,
                              raw_energy ? sum_squares : nullptr, windowed);
  for (int i = 0; i < 2; ++i)  // Kaldi's energy: raw, or the windowed frame's
    energy[i] = !o.use_energy ? 0.0f
                              : floored_log_energy(o.raw_energy ? sum_squares[i] : windowed[i],
                                                   o.energy_floor);
}

// Frames f0 + j and f0 + j + 1 (silence past n) into lanes j, j + 1 of the block's spectra.
void double_pair(const FramePlan& p, ConstTensorView waveform, int64_t f0, int j, int n,
                 BlockScratch& s, float* energy, double* windowed) {
  prepare_pair(p, waveform, f0 + j, j + 1 < n, s, s.fft.input(), energy + j, windowed + j);
  p.fft.forward(s.fft);
  internal::power_pair_lanes(s.fft.output(), p.geometry.padded_size, p.options.use_power,
                             s.spectra.data() + j, internal::MelFilters::kBlock);
}

void float_pair(const FramePlan& p, ConstTensorView waveform, int64_t f0, int j, int n,
                BlockScratch& s, float* energy, double* windowed) {
  prepare_pair(p, waveform, f0 + j, j + 1 < n, s, s.fftf.input(), energy + j, windowed + j);
  p.fftf.forward(s.fftf);
  internal::power_pair_lanes_float(s.fftf.output(), p.geometry.padded_size, s.spectra.data() + j,
                                   internal::MelFilters::kBlock);
}

// Frames f0 + j .. f0 + j + 3 (all < n) through two float32 transforms, their spectra stored
// together (power_quad_lanes_float: one store a bin for the four).
void float_quad(const FramePlan& p, ConstTensorView waveform, int64_t f0, int j, BlockScratch& s,
                float* energy, double* windowed) {
  prepare_pair(p, waveform, f0 + j, true, s, s.fftf.input(), energy + j, windowed + j);
  p.fftf.forward(s.fftf);
  prepare_pair(p, waveform, f0 + j + 2, true, s, s.fftf2.input(), energy + j + 2, windowed + j + 2);
  p.fftf.forward(s.fftf2);
  internal::power_quad_lanes_float(s.fftf.output(), s.fftf2.output(), p.geometry.padded_size,
                                   s.spectra.data() + j, internal::MelFilters::kBlock);
}

// The pairs of a float32 block whose smallest mel energy (least[j], per frame) is under
// kRedoBelow times their energy, again through the double FFT. True if any was.
bool redo_faint_pairs(const FramePlan& p, ConstTensorView waveform, int64_t f0, int n,
                      BlockScratch& s, float* energy, double* windowed, const float* least) {
  const auto scale = static_cast<double>(p.geometry.padded_size) * kRedoBelow;
  bool any = false;
  for (int j = 0; j < n; j += 2) {
    const float pair_least = j + 1 < n ? std::min(least[j], least[j + 1]) : least[j];
    if (static_cast<double>(pair_least) < scale * (windowed[j] + windowed[j + 1])) {
      double_pair(p, waveform, f0, j, n, s, energy, windowed);
      any = true;
    }
  }
  return any;
}

// The lanes of a short last block hold another block's spectra: zeros instead (their mel values
// are computed with the rest and never stored).
void zero_unused_lanes(BlockScratch& s, int n, int64_t bins) {
  constexpr int kBlock = internal::MelFilters::kBlock;
  if (n < kBlock)
    for (int64_t k = 0; k < bins; ++k)
      std::fill_n(s.spectra.data() + k * kBlock + n, kBlock - n, 0.0f);
}

// Frames [f0, f0 + n), n <= kBlock, into rows f0.. of out: FFT them two at a time into the
// block's bin-major power spectra, then the mel filters and the log across the block at once.
void block_features(const FramePlan& p, ConstTensorView waveform, int64_t f0, int n,
                    BlockScratch& s, float* out, int64_t cols) {
  constexpr int kBlock = internal::MelFilters::kBlock;
  static_assert(kBlock % 2 == 0, "frames go in pairs");
  const FbankOptions& o = p.options;
  const int64_t bins = p.geometry.padded_size / 2 + 1;
  float energy[kBlock] = {};
  double windowed[kBlock] = {};  // each frame's windowed Σ z²
  // The block's output rows, for writing: the filters store them 16 bytes at a time across 16
  // rows, an order the hardware prefetcher does not follow, and a fresh output's lines are
  // rarely cached (after another library's call, a third of fbank's time went to waiting for them).
  for (const char *line = reinterpret_cast<const char*>(out + f0 * cols),
                  *end = reinterpret_cast<const char*>(out + (f0 + n) * cols);
       line < end; line += 64)
    __builtin_prefetch(line, 1);
  // Pairs of frames, two pairs at a time in float32; an odd block's last frame goes with silence
  // (lane j + 1 unused).
  int j = 0;
  if (p.float32())
    for (; j + 4 <= n; j += 4) float_quad(p, waveform, f0, j, s, energy, windowed);
  for (; j < n; j += 2) {
    if (p.float32())
      float_pair(p, waveform, f0, j, n, s, energy, windowed);
    else
      double_pair(p, waveform, f0, j, n, s, energy, windowed);
  }
  zero_unused_lanes(s, n, bins);
  const bool energy_first = o.use_energy && !o.htk_compat;
  float* mel = out + f0 * cols + (energy_first ? 1 : 0);
  const float log_floor = o.use_log_fbank ? kEpsilon : 0.0f;
  alignas(64) float least[kBlock];
  p.filters().apply_block(s.spectra.data(), n, mel, cols, log_floor, p.float32() ? least : nullptr);
  if (p.float32() && redo_faint_pairs(p, waveform, f0, n, s, energy, windowed, least)) {
    zero_unused_lanes(s, n, bins);
    p.filters().apply_block(s.spectra.data(), n, mel, cols, log_floor);
  }
  if (o.use_energy)
    for (int i = 0; i < n; ++i)
      out[(f0 + i) * cols + (o.htk_compat ? o.num_mel_bins : 0)] = energy[i];
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

void check_rank(const char* fn, ConstTensorView waveform) {
  if (!waveform.defined() || waveform.rank() != 1)
    fail<ShapeError>(fn, "waveform must be (N) mono samples, got ",
                     waveform.defined() ? waveform.shape().str() : std::string("none"));
}

// The block sums of FramePlan when they apply (else nothing), and the waveform's finiteness check
// (ValueError naming the first NaN or Inf sample): a sum of finite floats in double cannot
// overflow, so finite sums clear every sample of the blocks without a scan of its own.
void sum_blocks_and_check(FramePlan& p, ConstTensorView waveform) {
  const FbankOptions& o = p.options;
  const int64_t block = std::gcd(p.geometry.window_shift, p.geometry.window_size);
  if (o.remove_dc_offset && o.snip_edges && o.dither == 0.0 && waveform.stride(0) == 1 &&
      block >= 16) {
    p.block = block;
    p.block_sums.resize(static_cast<size_t>(p.num_samples / block));
    if (internal::block_sums(waveform.data(), p.num_samples, block, p.block_sums.data())) return;
  }
  internal::check_finite_samples(kFn, waveform);
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
  check_rank(kFn, waveform);
  const FrameGeometry g = frame_geometry(kFn, options);
  const int64_t n = waveform.dim(0), frames = fbank_num_frames(n, options);
  const int64_t cols = options.num_mel_bins + (options.use_energy ? 1 : 0);
  FramePlan plan{options,
                 g,
                 frame_tables(options, g),
                 internal::ComplexFftD(static_cast<int>(g.padded_size)),
                 internal::ComplexFftF(static_cast<int>(g.padded_size)),
                 n,
                 0,
                 {}};
  sum_blocks_and_check(plan, waveform);
  Tensor out = Tensor::uninitialized(Shape{frames, cols});
  constexpr int kBlock = internal::MelFilters::kBlock;
  const int64_t blocks = (frames + kBlock - 1) / kBlock;
  const int threads = static_cast<int>(std::clamp<int64_t>(frames / 64, 1, ctx.num_threads()));
  // Buffers are allocated here, not in the parallel region, so that a failed allocation throws.
  std::vector<std::unique_ptr<BlockScratch>> scratch;
  for (int t = 0; t < threads; ++t) scratch.push_back(std::make_unique<BlockScratch>(g));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t f0 = b * kBlock;
    const int count = static_cast<int>(std::min<int64_t>(kBlock, frames - f0));
    block_features(plan, waveform, f0, count, *scratch[static_cast<size_t>(omp_get_thread_num())],
                   out.data(), cols);
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
    fail<ValueError>(fn,
                     "snip_edges = false, dither and subtract_mean need the whole utterance; "
                     "a stream can use none of them");
  window_ = g.window_size;
  shift_ = g.window_shift;
}

// Frames go through the FFT in pairs counted from the start of the waveform (and the float32
// transform's rounding follows the pair), so a push emits an even number of frames: every push then
// starts on a pair, as fbank of the whole waveform does, and the frames are its bits. An odd last
// frame waits for its partner, or for flush().
Tensor StreamingFbank::push(std::span<const float> samples) {
  pending_.insert(pending_.end(), samples.begin(), samples.end());
  return emit(fbank_num_frames(static_cast<int64_t>(pending_.size()), options_) / 2 * 2);
}

Tensor StreamingFbank::flush() {
  Tensor last = emit(fbank_num_frames(static_cast<int64_t>(pending_.size()), options_));
  pending_.clear();
  return last;
}

Tensor StreamingFbank::emit(int64_t n) {
  if (n == 0) return Tensor(Shape{0, num_bins()});
  const int64_t used = (n - 1) * shift_ + window_;
  Tensor frames = fbank(ConstTensorView(pending_.data(), Shape{used}), options_, ctx_);
  pending_.erase(pending_.begin(), pending_.begin() + n * shift_);
  return frames;
}

}  // namespace attn::audio
