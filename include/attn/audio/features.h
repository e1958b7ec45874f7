// SPDX-License-Identifier: MIT
// Speech features: Kaldi's log-mel filterbank (compute-fbank-feats, as
// torchaudio.compliance.kaldi.fbank computes it) and Whisper's log-mel spectrogram, plus global
// CMVN statistics. Frames are computed in parallel over the context's threads and do not depend on
// how many there are.
//
// Both return (T, F): T frames (one per 10 ms at the defaults), F features per frame.
#pragma once

#include <cstdint>
#include <string>
#include <span>
#include <vector>

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::audio {

enum class WindowType { kPovey, kHanning, kHamming, kRectangular, kBlackman };
// "povey", "hanning", "hamming", "rectangular", "blackman" (ValueError otherwise).
WindowType parse_window_type(const std::string& name);

// torchaudio.compliance.kaldi.fbank's options, with its names and defaults (num_mel_bins 23 as
// there; speech models use 80). VTLN warping is not supported.
struct FbankOptions {
  double sample_frequency = 16000.0;  // Hz; must be the waveform's rate
  double frame_length = 25.0;         // ms
  double frame_shift = 10.0;          // ms
  int num_mel_bins = 23;              // > 3
  double low_freq = 20.0;             // Hz
  double high_freq = 0.0;             // Hz; <= 0: offset from Nyquist
  double preemphasis_coefficient = 0.97;
  bool remove_dc_offset = true;
  WindowType window_type = WindowType::kPovey;
  double blackman_coeff = 0.42;
  bool round_to_power_of_two = true;  // zero-pad each frame to a power of two for the FFT
  bool snip_edges = true;  // only whole frames; false: reflect at the edges, T = round(N / shift)
  double dither = 0.0;     // Gaussian noise of this standard deviation, drawn from `seed`
  uint64_t seed = 0;
  bool use_energy = false;    // add the log energy as feature 0 (last with htk_compat)
  bool raw_energy = true;     // energy before pre-emphasis and windowing
  double energy_floor = 1.0;  // floor of the energy (absolute); 0: none
  bool htk_compat = false;
  bool use_log_fbank = true;
  bool use_power = true;       // power spectrum (else magnitude)
  bool subtract_mean = false;  // subtract each feature's mean over the utterance
};

// The number of frames fbank gives for `num_samples` samples.
int64_t fbank_num_frames(int64_t num_samples, const FbankOptions& options);

// Kaldi log-mel filterbank of a mono waveform (N) -> (T, num_mel_bins + use_energy). Samples are
// used at the scale given: Kaldi and WeNet feed int16 values (multiply [-1, 1] audio by 32768).
// Fewer samples than one frame (with snip_edges) give T = 0. Overwrites nothing; allocates the
// output.
Tensor fbank(ConstTensorView waveform, const FbankOptions& options = {},
             const Context& ctx = thread_context());

// fbank over a stream: push samples in pieces of any size, get the frames they complete, and
// flush() at the end. The frames are fbank() of the whole waveform, bit for bit (each frame reads
// only its own window), so options that need the whole utterance are rejected (ValueError):
// snip_edges = false, dither, subtract_mean. Holds at most one window and one shift of samples
// between calls.
class StreamingFbank {
 public:
  explicit StreamingFbank(const FbankOptions& options = {}, const Context& ctx = thread_context());
  // -> (n, num_mel_bins + use_energy), n >= 0 and even: the frames complete so far, but an odd
  // last one, which waits for the next push (frames are computed in pairs; see fbank.cc).
  Tensor push(std::span<const float> samples);
  // The end of the stream: the frame push held back, if any (n = 0 or 1); then the stream is
  // empty, as after reset().
  Tensor flush();
  void reset() { pending_.clear(); }
  int64_t num_bins() const { return options_.num_mel_bins + (options_.use_energy ? 1 : 0); }

 private:
  Tensor emit(int64_t n);  // the next n frames of pending_, which lose their samples

  FbankOptions options_;
  const Context& ctx_;
  int64_t window_, shift_;
  std::vector<float> pending_;
};

// The SIMD target fbank's and StreamingFbank's kernels dispatch to: ops::simd_target() (which
// ops::set_simd_target lowers for them too), except on CPUs that lower their clock while 512-bit
// vectors run (Intel's AVX-512 cores before Sapphire Rapids: Skylake-SP to Ice Lake), where they
// stop at AVX2: the features are a few microseconds of vector work between FFTW's 256-bit
// transforms, and the slower clock cost the whole call ~20% (docs/speech.md, run 15).
const char* feature_simd_target();

// Overrides that rule for the whole process: kAllow lets the features use 512-bit vectors
// everywhere, kAvoid stops them at AVX2 everywhere (as a benchmark compares the two), kAutomatic
// restores the rule. The features' values may differ in their last bits between targets.
enum class WideVectors { kAutomatic, kAllow, kAvoid };
void set_feature_wide_vectors(WideVectors policy);
// "auto", "allow", "avoid" (ValueError naming `fn` otherwise).
WideVectors parse_wide_vectors(const std::string& name,
                               const char* fn = "audio::parse_wide_vectors");

// The triangular mel filters fbank applies: (num_mel_bins, padded_window_size / 2 + 1), as
// torchaudio's get_mel_banks with its zero column for the Nyquist bin.
Tensor kaldi_mel_banks(const FbankOptions& options);

// Whisper's log-mel spectrogram (openai/whisper audio.log_mel_spectrogram): periodic Hann window,
// centred frames with reflect padding, power spectrum, Slaney-scale Slaney-normalised mel filters
// from 0 Hz to Nyquist, log10 clamped at 1e-10, then at (max over the utterance) - 8, then (x + 4)
// / 4.
struct WhisperOptions {
  int n_fft = 400;
  int hop_length = 160;
  int n_mels = 80;
  int sample_rate = 16000;
};
// (N) samples in [-1, 1] -> (N / hop_length, n_mels): the transpose of Whisper's (n_mels, frames).
// N must exceed n_fft / 2 (the reflect padding) unless N < hop_length (then T = 0).
Tensor whisper_log_mel(ConstTensorView waveform, const WhisperOptions& options = {},
                       const Context& ctx = thread_context());

// Slaney mel filters as librosa.filters.mel(norm="slaney") and torchaudio's melscale_fbanks(norm=
// "slaney", mel_scale="slaney"): (n_mels, n_fft / 2 + 1).
Tensor slaney_mel_banks(int sample_rate, int n_fft, int n_mels);

// Global cepstral mean and variance normalisation: per-feature sums over a set of utterances, then
// (x - mean) / std. The JSON form is WeNet's global_cmvn file: {"mean_stat", "var_stat",
// "frame_num"}.
class CmvnStats {
 public:
  void accumulate(ConstTensorView features);  // (T, F); F fixed by the first call
  int64_t frames() const { return frames_; }
  int64_t dim() const { return static_cast<int64_t>(sum_.size()); }
  std::vector<double> mean() const;
  std::vector<double> inv_std(double floor = 1e-20) const;  // 1 / sqrt(max(var, floor))
  void apply(TensorView features) const;                    // in place, (T, F)
  void save(const std::string& path) const;
  static CmvnStats load(const std::string& path);

 private:
  std::vector<double> sum_, sum_squares_;
  int64_t frames_ = 0;
};

}  // namespace attn::audio
