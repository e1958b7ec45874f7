// SPDX-License-Identifier: MIT
// Audio in: WAV round trips, mixing down, resampling from the rates speech arrives at, and clean
// errors for files that are not audio. Features: frame counts, edge cases and thread determinism.
// The comparison with torchaudio on real recordings is python/tests/test_audio.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numbers>
#include <span>
#include <vector>

#include "attn/audio/audio.h"
#include "attn/audio/features.h"
#include "attn/error.h"
#include "attn/ops/attention.h"  // set_simd_target switches every Highway kernel, the audio ones too
#include "audio/internal/feature_kernels.h"
#include "audio/internal/fft.h"

namespace attn::audio {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("attn_test_audio_" + name)).string();
}

Tensor sine(int64_t channels, int64_t frames, double hz, double rate, float amplitude = 0.5f) {
  Tensor t = Tensor::zeros(Shape{channels, frames});
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < frames; ++i)
      t(c, i) = amplitude * static_cast<float>(std::sin(
                                2.0 * std::numbers::pi * hz * double(i) / rate + 0.3 * double(c)));
  return t;
}

TEST(Audio, WavRoundTripPcm16AndFloat) {
  const Tensor s = sine(2, 1000, 440.0, 8000.0);
  for (SampleFormat format : {SampleFormat::kPcm16, SampleFormat::kFloat32}) {
    const std::string path = temp_path("roundtrip.wav");
    write_wav(path, s, 8000, format);
    const Audio a = read(path);
    ASSERT_EQ(a.sample_rate, 8000);
    ASSERT_EQ(a.channels(), 2);
    ASSERT_EQ(a.frames(), 1000);
    const float tol = format == SampleFormat::kPcm16 ? 1.0f / 16000.0f : 0.0f;
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t i = 0; i < 1000; ++i)
        ASSERT_NEAR(a.samples(c, i), s(c, i), tol) << c << "," << i;
    std::filesystem::remove(path);
  }
}

TEST(Audio, LoadMixesStereoDownAndResamplesFromCommonRates) {
  for (int rate : {8000, 22050, 44100, 48000}) {
    const int64_t frames = rate / 2;  // 0.5 s
    const Tensor s = sine(2, frames, 440.0, rate);
    const std::string path = temp_path("rate.wav");
    write_wav(path, s, rate, SampleFormat::kFloat32);
    const Audio a = load(path);
    std::filesystem::remove(path);
    ASSERT_EQ(a.sample_rate, 16000);
    ASSERT_EQ(a.channels(), 1);
    ASSERT_EQ(a.frames(), 8000) << rate;
    // The mean of the two phases is a sine of amplitude 0.5 cos(0.15) and phase 0.15.
    double max_error = 0.0;
    for (int64_t i = 400; i < 7600; ++i) {
      const double expected = 0.5 * std::cos(0.15) *
                              std::sin(2.0 * std::numbers::pi * 440.0 * double(i) / 16000.0 + 0.15);
      max_error = std::max(max_error, std::abs(double(a.samples(0, i)) - expected));
    }
    EXPECT_LT(max_error, 2e-3) << "from " << rate << " Hz";
  }
}

TEST(Audio, RejectsFilesThatAreNotAudio) {
  EXPECT_THROW(read(temp_path("does-not-exist.wav")), IoError);
  std::vector<std::byte> junk(100, std::byte{0x42});
  EXPECT_THROW(decode(junk, "junk"), IoError);
  EXPECT_THROW(decode({}, "empty"), IoError);
  // A valid WAV header with no frames.
  const std::string path = temp_path("empty.wav");
  write_wav(path, Tensor::zeros(Shape{1, 0}), 16000);
  try {
    read(path);
    FAIL() << "an empty file was accepted";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
  EXPECT_THROW(resample(Tensor::zeros(Shape{1, 10}), 0.0, 16000.0), ValueError);
  EXPECT_THROW(to_mono(Tensor::zeros(Shape{10})), ShapeError);
}

Tensor noise(int64_t n, uint64_t seed) {
  Rng rng(seed);
  Tensor t = Tensor::zeros(Shape{n});
  for (int64_t i = 0; i < n; ++i) t(i) = static_cast<float>(3000.0 * rng.normal());
  return t;
}

TEST(Fbank, FrameCountsAndEdgeCases) {
  FbankOptions o;
  o.num_mel_bins = 80;
  EXPECT_EQ(fbank(noise(399, 1), o).dim(0), 0);  // shorter than one frame
  EXPECT_EQ(fbank(noise(400, 1), o).dim(0), 1);  // exactly one
  EXPECT_EQ(fbank(noise(16000, 1), o).dim(0), 98);
  o.snip_edges = false;
  EXPECT_EQ(fbank(noise(16000, 1), o).dim(0), 100);
  EXPECT_EQ(fbank(noise(100, 1), o).dim(0), 1);  // reflected on both sides
  // Silence: every mel energy is zero, so every feature is the log floor, not -inf.
  o.snip_edges = true;
  const Tensor silent = fbank(Tensor::zeros(Shape{1600}), o);
  for (float v : silent.values())
    EXPECT_FLOAT_EQ(v, std::log(std::numeric_limits<float>::epsilon()));
  // A full-scale square wave stays finite.
  Tensor square = Tensor::zeros(Shape{1600});
  for (int64_t i = 0; i < 1600; ++i) square(i) = (i / 20) % 2 ? 32767.0f : -32768.0f;
  const Tensor loud = fbank(square, o);
  for (float v : loud.values()) EXPECT_TRUE(std::isfinite(v));
  o.use_energy = true;
  EXPECT_EQ(fbank(noise(16000, 1), o).dim(1), 81);
}

TEST(Fbank, SameBitsForOneAndTwoThreadsAndStridedInput) {
  const Tensor x = noise(32000, 7);
  FbankOptions o;
  o.num_mel_bins = 80;
  o.dither = 1.0;
  o.seed = 5;
  const Tensor one = fbank(x, o, Context(ContextOptions{1}));
  const Tensor two = fbank(x, o, Context(ContextOptions{2}));
  ASSERT_EQ(one.shape(), two.shape());
  for (int64_t i = 0; i < one.numel(); ++i)
    ASSERT_EQ(one.values()[size_t(i)], two.values()[size_t(i)]) << i;
  Tensor wide = Tensor::zeros(Shape{32000, 2});
  for (int64_t i = 0; i < 32000; ++i) wide(i, 0) = x(i);
  const Tensor strided = fbank(wide.view().select(1, 0), o, Context(ContextOptions{1}));
  for (int64_t i = 0; i < one.numel(); ++i)
    ASSERT_EQ(one.values()[size_t(i)], strided.values()[size_t(i)]) << i;
}

// The SIMD rows' last, partial vectors (23 bins after an energy column; a waveform whose length is
// no multiple of any vector): the log row equals log(max(x, ε)) of the plain filter bank, and a NaN
// in the waveform's very last sample is still found.
TEST(Fbank, PartialVectorsAtTheEndOfRows) {
  const Tensor x = noise(8003, 9);
  FbankOptions o;
  o.num_mel_bins = 23;
  o.use_energy = true;
  const Tensor logged = fbank(x, o);
  o.use_log_fbank = false;
  const Tensor plain = fbank(x, o);
  ASSERT_EQ(logged.shape(), plain.shape());
  for (int64_t f = 0; f < logged.dim(0); ++f)
    for (int64_t m = 1; m < logged.dim(1); ++m)  // column 0: the energy, logged in both
      ASSERT_NEAR(logged(f, m), std::log(std::max(plain(f, m), 1.1920929e-07f)), 1e-5)
          << "frame " << f << " bin " << m;
  Tensor bad = Tensor::copy_of(x.view());
  bad(8002) = std::nanf("");
  EXPECT_THROW(fbank(bad, o), ValueError);
}

// Kaldi's fbank written out plainly (torchaudio's steps, a direct DFT in double, the dense mel
// banks), against the fast path: blocks of frames, bin-major spectra, grouped filters, SIMD rows.
std::vector<double> plain_fbank_frame(ConstTensorView x, int64_t f, int bins) {
  const int64_t ws = 400, n = 512;
  std::vector<double> y(size_t(n), 0.0);
  double mean = 0.0;
  for (int64_t j = 0; j < ws; ++j) mean += double(x(f * 160 + j));
  mean /= double(ws);
  for (int64_t j = ws - 1; j >= 0; --j) {
    const double cur = double(x(f * 160 + j)) - mean,
                 prev = j ? double(x(f * 160 + j - 1)) - mean : cur;
    const double hann = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * double(j) / double(ws - 1));
    y[size_t(j)] = double(float(std::pow(hann, 0.85))) * (cur - 0.97 * prev);
  }
  FbankOptions o;
  o.num_mel_bins = bins;
  const Tensor banks = kaldi_mel_banks(o);
  std::vector<double> out(size_t(bins), 0.0);
  for (int64_t k = 0; k <= n / 2; ++k) {
    double re = 0.0, im = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      const double a = -2.0 * std::numbers::pi * double(j * k % n) / double(n);
      re += y[size_t(j)] * std::cos(a), im += y[size_t(j)] * std::sin(a);
    }
    for (int m = 0; m < bins; ++m) out[size_t(m)] += double(banks(m, k)) * (re * re + im * im);
  }
  for (double& v : out) v = std::log(std::max(v, 1.1920928955078125e-07));
  return out;
}

TEST(Fbank, MatchesPlainDftAndDenseMelBanks) {
  const Tensor x = noise(400 + 33 * 160, 23);  // 34 frames: two blocks of 16 and one of 2
  FbankOptions o;
  o.num_mel_bins = 37;  // groups of 4 filters and a remainder of 1
  const Tensor got = fbank(x, o);
  ASSERT_EQ(got.dim(0), 34);
  for (int64_t f = 0; f < got.dim(0); ++f) {
    const std::vector<double> want = plain_fbank_frame(x, f, o.num_mel_bins);
    for (int m = 0; m < o.num_mel_bins; ++m)  // log-energies of ~1e10: float rounding ~1e-7
      ASSERT_NEAR(got(f, m), want[size_t(m)], 1e-4) << "frame " << f << " bin " << m;
  }
}

// fbank writes a transform's zero padding once per call and only the frames' values for each pair:
// the complex transforms must leave their input as it was (FFTW's default out of place), and
// their output is the plain DFT.
template <typename T>
void check_complex_fft_keeps_its_input(double tolerance) {
  constexpr int n = 48;  // 16 · 3: more than one radix
  internal::BasicComplexFft<T> fft(n);
  internal::BasicComplexFftBuffers<T> buffers(n);
  std::vector<T> input(2 * n);
  for (int i = 0; i < 2 * n; ++i) input[size_t(i)] = static_cast<T>(std::sin(0.37 * i * i + 1.0));
  std::copy(input.begin(), input.end(), buffers.input());
  fft.forward(buffers);
  for (int i = 0; i < 2 * n; ++i) ASSERT_EQ(buffers.input()[i], input[size_t(i)]) << "value " << i;
  for (int k = 0; k < n; ++k) {
    double re = 0.0, im = 0.0;
    for (int j = 0; j < n; ++j) {
      const double a = -2.0 * std::numbers::pi * double(j * k % n) / n;
      const double xr = input[size_t(2 * j)], xi = input[size_t(2 * j + 1)];
      re += xr * std::cos(a) - xi * std::sin(a);
      im += xr * std::sin(a) + xi * std::cos(a);
    }
    ASSERT_NEAR(buffers.output()[2 * k], re, tolerance) << "bin " << k;
    ASSERT_NEAR(buffers.output()[2 * k + 1], im, tolerance) << "bin " << k;
  }
}

TEST(ComplexFft, LeavesItsInputAsItWasAndIsThePlainDft) {
  check_complex_fft_keeps_its_input<double>(1e-12);
  check_complex_fft_keeps_its_input<float>(1e-4);  // sums of 48 values of ~1: float32 ~1e-6
}

// fbank's log (mel energies, floored at FLT_EPSILON; the energy column keeps std::log): every
// binade of the normal floats, 4099 values each (an odd count, for the vector loop's tail) with
// the reduction's edges (1, sqrt(1/2), their neighbours) among them, against a double log
// rounded to float: at most 2 ulp apart.
TEST(Fbank, LogOfNormalFloatsIsWithinTwoUlp) {
  std::vector<float> x;
  for (int e = -126; e <= 127; ++e) {
    const float base = std::ldexp(1.0f, e);
    for (int i = 0; i < 4096; ++i) x.push_back(base * (1.0f + float(i) / 4096.0f));
    const float edge = std::ldexp(0.70710678f, e + 1);
    for (float v : {std::nextafter(edge, 0.0f), edge, std::nextafter(edge, 1e38f)})
      if (std::isnormal(v)) x.push_back(v);
  }
  x.push_back(std::numeric_limits<float>::max());
  std::vector<float> got(x.size());
  internal::log_of_normal_floats(x.data(), int64_t(x.size()), got.data());
  int64_t worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const auto want = float(std::log(double(x[i])));
    int64_t ulps = 0;
    for (float v = want; v != got[i] && ulps <= 2; ++ulps) v = std::nextafter(v, got[i]);
    worst = std::max(worst, ulps);
    ASSERT_LE(ulps, 2) << "ln(" << x[i] << "): " << got[i] << ", want " << want;
  }
  EXPECT_GE(worst, 1);  // the polynomial is not exact: the comparison above can fail
}

// fbank's FFT is float32, two frames per transform, and a pair whose smallest mel energy is faint
// beside the pair's energy goes again through the double one. Faint noise throughout and one loud
// burst in samples [3200, 3360), the part of frame 20 that its partner, frame 21, does not see:
// frame 21's energies are ~1e-11 of the pair's, where float32 rounding alone moves their logs by
// up to 0.06 (0.0585 with the redo taken out). Every frame within 1e-4 of a plain double DFT.
TEST(Fbank, FaintFrameBesideALoudPartnerKeepsDoublePrecision) {
  const int64_t n = 400 + 39 * 160;  // 40 frames
  Tensor x = noise(n, 41);
  for (int64_t i = 0; i < n; ++i) {
    x(i) = 1e-5f * x(i);  // noise() is ~3000: 0.03
    if (i >= 3200 && i < 3360)
      x(i) += static_cast<float>(15000.0 * std::sin(0.12 * double(i)) +
                                 9000.0 * std::sin(0.29 * double(i)));
  }
  FbankOptions o;
  o.num_mel_bins = 40;
  const Tensor got = fbank(x, o);
  ASSERT_EQ(got.dim(0), 40);
  for (int64_t f = 0; f < got.dim(0); ++f) {
    const std::vector<double> want = plain_fbank_frame(x, f, o.num_mel_bins);
    for (int m = 0; m < o.num_mel_bins; ++m)
      ASSERT_NEAR(got(f, m), want[size_t(m)], 1e-4) << "frame " << f << " bin " << m;
  }
}

// DC removal takes a frame's mean from sums over blocks of gcd(shift, window) = 80 samples when
// frames are read in place, and from the frame's own samples otherwise (a strided waveform): both
// against the plain mean on a waveform far off zero. A NaN or Inf inside a block, or in the tail
// after the last whole block, is named by its index.
TEST(Fbank, DcOffsetFromBlockSumsAndFromFrameSamples) {
  const int64_t n = 400 + 20 * 160 + 37;  // 21 frames; 3637 = 45 blocks of 80 and 37 more
  Tensor x = noise(n, 31);
  for (int64_t i = 0; i < n; ++i) x(i) = 0.1f * x(i) + 12000.0f + 0.5f * float(i % 7);
  Tensor wide = Tensor::zeros(Shape{n, 2});
  for (int64_t i = 0; i < n; ++i) wide(i, 0) = x(i);
  FbankOptions o;
  o.num_mel_bins = 37;
  const Tensor in_place = fbank(x, o), strided = fbank(wide.view().select(1, 0), o);
  ASSERT_EQ(in_place.dim(0), 21);
  for (int64_t f = 0; f < in_place.dim(0); ++f) {
    const std::vector<double> want = plain_fbank_frame(x, f, o.num_mel_bins);
    for (int m = 0; m < o.num_mel_bins; ++m) {
      ASSERT_NEAR(in_place(f, m), want[size_t(m)], 1e-4) << "frame " << f << " bin " << m;
      ASSERT_NEAR(strided(f, m), want[size_t(m)], 1e-4) << "frame " << f << " bin " << m;
    }
  }
  for (int64_t at : {int64_t{1234}, n - 5}) {
    for (float bad : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
      Tensor y = Tensor::copy_of(x.view());
      y(at) = bad;
      try {
        fbank(y, o);
        ADD_FAILURE() << "no error for sample " << at;
      } catch (const ValueError& e) {
        EXPECT_NE(std::string(e.what()).find("non-finite sample at " + std::to_string(at)),
                  std::string::npos)
            << e.what();
      }
    }
  }
}

// Every SIMD target on a waveform one float off alignment, with rows (23 bins after the energy
// column), FFT sizes (257 and 193 bins: the bin-major transpose's partial block of 4) and blocks
// (50 frames: three of 16 and one of 2) that all end in partial vectors. The targets round
// differently (FMA or not), so they agree to a tolerance, not to the bit.
TEST(Fbank, EveryRunnableSimdTargetAgreesAtOddOffsets) {
  const Tensor storage = noise(8246, 21);
  const ConstTensorView x = storage.view().slice(0, 1, 8246);
  FbankOptions plain, odd;
  plain.num_mel_bins = 23, plain.use_energy = true;
  odd.num_mel_bins = 40, odd.round_to_power_of_two = false, odd.frame_length = 24.0;
  odd.use_power = false;
  const std::vector<std::string> targets = ops::available_simd_targets();
  set_feature_wide_vectors(WideVectors::kAllow);  // each target as named, AVX-512 ones too
  for (const FbankOptions& o : {plain, odd}) {
    const Tensor best = fbank(x, o);
    ASSERT_EQ(best.dim(0), 50);
    for (const std::string& target : targets) {
      SCOPED_TRACE(target);
      ops::set_simd_target(target);
      ASSERT_EQ(std::string(feature_simd_target()), target);
      const Tensor got = fbank(x, o);
      ASSERT_EQ(got.shape(), best.shape());
      for (int64_t i = 0; i < best.numel(); ++i)
        ASSERT_NEAR(got.values()[size_t(i)], best.values()[size_t(i)], 1e-4) << "value " << i;
    }
    ops::set_simd_target("");
  }
  set_feature_wide_vectors(WideVectors::kAutomatic);
}

// The features' target is the kernels' one, capped at AVX2 where wide vectors are avoided (on an
// AVX2-only machine the cap changes nothing, so only an AVX-512 machine can fail the middle part).
TEST(Fbank, WideVectorPolicyCapsTheFeaturesAtAvx2) {
  const auto is_avx512 = [](const std::string& t) { return t.rfind("AVX3", 0) == 0; };
  const Tensor storage = noise(4000, 5);
  FbankOptions o;
  o.num_mel_bins = 40;
  set_feature_wide_vectors(WideVectors::kAllow);
  EXPECT_EQ(std::string(feature_simd_target()), std::string(ops::simd_target()));
  const Tensor wide = fbank(storage.view(), o);
  set_feature_wide_vectors(WideVectors::kAvoid);
  const std::string capped = feature_simd_target();
  EXPECT_FALSE(is_avx512(capped)) << capped;
  if (is_avx512(ops::simd_target())) {
    EXPECT_EQ(capped, "AVX2");
  }
  const Tensor narrow = fbank(storage.view(), o);
  ASSERT_EQ(narrow.shape(), wide.shape());
  for (int64_t i = 0; i < wide.numel(); ++i)
    ASSERT_NEAR(narrow.values()[size_t(i)], wide.values()[size_t(i)], 1e-4) << "value " << i;
  const std::vector<std::string> targets = ops::available_simd_targets();
  if (std::find(targets.begin(), targets.end(), "SSE4") != targets.end()) {
    ops::set_simd_target("SSE4");  // a lower target stays lower under any policy
    EXPECT_EQ(std::string(feature_simd_target()), "SSE4");
    ops::set_simd_target("");
  }
  set_feature_wide_vectors(WideVectors::kAutomatic);
  EXPECT_NE(std::string(feature_simd_target()), "");
}

TEST(StreamingFbank, PiecesOfAnySizeGiveTheWholeWaveformsFrames) {
  const Tensor x = noise(16000 + 123, 9);
  FbankOptions o;
  o.num_mel_bins = 80;
  o.use_energy = true;
  const Tensor whole = fbank(x, o);
  for (int64_t piece : {1, 37, 160, 401, 20000}) {
    StreamingFbank s(o);
    std::vector<float> got;
    for (int64_t i = 0; i < x.dim(0); i += piece) {
      const int64_t n = std::min(piece, x.dim(0) - i);
      const Tensor f = s.push(std::span<const float>(x.data() + i, size_t(n)));
      ASSERT_EQ(f.rank(), 2);
      ASSERT_EQ(f.dim(1), 81);
      ASSERT_EQ(f.dim(0) % 2, 0) << "frames go in pairs";
      got.insert(got.end(), f.values().begin(), f.values().end());
    }
    const Tensor last = s.flush();  // 16123 samples: 99 frames, the last one held back
    ASSERT_EQ(last.dim(0), 1) << "piece " << piece;
    got.insert(got.end(), last.values().begin(), last.values().end());
    ASSERT_EQ(got.size(), size_t(whole.numel())) << "piece " << piece;
    EXPECT_EQ(s.flush().dim(0), 0);
    EXPECT_EQ(s.push(std::span<const float>(x.data(), 400 + 160)).dim(0), 2) << "flushed: empty";
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(got[i], whole.values()[i]) << "piece " << piece << " value " << i;
  }
  FbankOptions dither = o;
  dither.dither = 1.0;
  EXPECT_THROW(StreamingFbank{dither}, ValueError);
  FbankOptions centred = o;
  centred.snip_edges = false;
  EXPECT_THROW(StreamingFbank{centred}, ValueError);
}

TEST(Fbank, MelFiltersAreKaldis) {
  FbankOptions o;
  o.num_mel_bins = 23;
  const Tensor banks = kaldi_mel_banks(o);
  ASSERT_EQ(banks.shape(), (Shape{23, 257}));
  for (int64_t m = 0; m < 23; ++m) {
    float peak = 0.0f;
    for (int64_t k = 0; k < 257; ++k) peak = std::max(peak, banks(m, k));
    EXPECT_GT(peak, 0.5f) << m;  // each triangle reaches near 1 at a bin close to its centre
    EXPECT_LE(peak, 1.0f) << m;
    EXPECT_EQ(banks(m, 256), 0.0f);  // the Nyquist bin
  }
  const Tensor slaney = slaney_mel_banks(16000, 400, 80);
  ASSERT_EQ(slaney.shape(), (Shape{80, 201}));
}

TEST(Fbank, RejectsBadArguments) {
  FbankOptions o;
  EXPECT_THROW(fbank(Tensor::zeros(Shape{2, 400}), o), ShapeError);
  Tensor x = noise(1000, 1);
  x(500) = NAN;
  EXPECT_THROW(fbank(x, o), ValueError);
  o.num_mel_bins = 3;
  EXPECT_THROW(fbank(noise(1000, 1), o), ValueError);
  o = {};
  o.high_freq = 9000.0;
  EXPECT_THROW(fbank(noise(1000, 1), o), ValueError);
  o = {};
  o.frame_shift = 0.0;
  EXPECT_THROW(fbank(noise(1000, 1), o), ValueError);
  EXPECT_THROW(parse_window_type("gauss"), ValueError);
  EXPECT_THROW(whisper_log_mel(noise(180, 1)), ValueError);  // too short to reflect-pad by 200
  EXPECT_EQ(whisper_log_mel(noise(100, 1)).dim(0), 0);
  EXPECT_EQ(whisper_log_mel(noise(16000, 1)).shape(), (Shape{100, 80}));
}

TEST(Cmvn, NormalisesToZeroMeanUnitVarianceAndRoundTrips) {
  Tensor f = Tensor::zeros(Shape{100, 3});
  for (int64_t r = 0; r < 100; ++r)
    for (int64_t c = 0; c < 3; ++c) f(r, c) = float(r % 7) * float(c + 1) + float(c);
  CmvnStats stats;
  stats.accumulate(f);
  const std::string path = temp_path("cmvn.json");
  stats.save(path);
  const CmvnStats loaded = CmvnStats::load(path);
  std::filesystem::remove(path);
  EXPECT_EQ(loaded.frames(), 100);
  loaded.apply(f);
  for (int64_t c = 0; c < 3; ++c) {
    double sum = 0.0, sq = 0.0;
    for (int64_t r = 0; r < 100; ++r) {
      sum += double(f(r, c));
      sq += double(f(r, c)) * double(f(r, c));
    }
    EXPECT_NEAR(sum / 100.0, 0.0, 1e-5);
    EXPECT_NEAR(sq / 100.0, 1.0, 1e-4);
  }
  EXPECT_THROW(stats.accumulate(Tensor::zeros(Shape{4, 5})), ShapeError);
  EXPECT_THROW(CmvnStats::load(temp_path("missing.json")), IoError);
}

}  // namespace
}  // namespace attn::audio
