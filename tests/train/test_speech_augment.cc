// SPDX-License-Identifier: MIT
// Speech augmentation: noise at the SNR asked for, speed perturbation that keeps the labels on the
// audio, SpecAugment masks of bounded size, and clean errors.
#include <gtest/gtest.h>

#include <cmath>

#include "attn/attn.h"

namespace attn::train {
namespace {

Tensor tone(int64_t n, double amplitude) {
  Tensor t(Shape{n});
  for (int64_t i = 0; i < n; ++i)
    t.data()[i] = static_cast<float>(amplitude * std::sin(0.05 * static_cast<double>(i)));
  return t;
}

double power(ConstTensorView x) {
  double p = 0;
  for (int64_t i = 0; i < x.dim(0); ++i) p += double(x(i)) * double(x(i));
  return p / double(x.dim(0));
}

TEST(SpeechAugment, NoiseHasTheRequestedSnr) {
  const Tensor clean = tone(200000, 0.3);
  for (double snr : {0.0, 10.0, 25.0}) {
    Rng rng(1);
    const Tensor noisy = add_noise(clean.view(), snr, rng);
    Tensor noise(Shape{clean.dim(0)});
    for (int64_t i = 0; i < clean.dim(0); ++i) noise.data()[i] = noisy(i) - clean(i);
    const double measured = 10.0 * std::log10(power(clean.view()) / power(noise.view()));
    EXPECT_NEAR(measured, snr, 0.1) << snr;
  }
  Rng rng(2);
  const Tensor silent = add_noise(Tensor::zeros(Shape{100}).view(), 10.0, rng);
  EXPECT_EQ(power(silent.view()), 0.0);
  EXPECT_THROW(add_noise(clean.view(), std::nan(""), rng), ValueError);
  EXPECT_THROW(add_noise(Tensor::zeros(Shape{2, 3}).view(), 10.0, rng), ShapeError);
}

TEST(SpeechAugment, SpeedPerturbationScalesAudioAndPhonemeTimesTogether) {
  const SynthesizedSpeech s = synthesize("seven cats", {"en-us", 175, 50});
  for (double factor : {0.9, 1.25}) {
    const SynthesizedSpeech f = speed_perturb(s, factor);
    EXPECT_NEAR(double(f.samples.dim(0)), double(s.samples.dim(0)) / factor,
                0.01 * double(s.samples.dim(0)));
    ASSERT_EQ(f.phonemes, s.phonemes);
    for (size_t i = 0; i < s.phonemes.size(); ++i)
      EXPECT_DOUBLE_EQ(f.phoneme_start_ms[i], s.phoneme_start_ms[i] / factor);
    // The faster speech's frame labels are the original's, resampled in time.
    const int64_t frames = audio::fbank_num_frames(f.samples.dim(0), {});
    const auto fast = frame_phonemes(f, frames), slow = frame_phonemes(s, 100000);
    int64_t agree = 0;
    for (int64_t j = 0; j < frames; ++j) {
      const double centre_ms = (12.5 + 10.0 * double(j)) * factor;
      const auto k = static_cast<size_t>(std::lround((centre_ms - 12.5) / 10.0));
      agree += fast[size_t(j)] == slow[k];
    }
    EXPECT_GT(double(agree), 0.85 * double(frames)) << factor;
  }
  EXPECT_THROW(speed_perturb(s, 3.0), ValueError);
  EXPECT_THROW(speed_perturb(s, std::nan("")), ValueError);
}

TEST(SpeechAugment, SpecAugmentMasksAtMostTheWidthsAsked) {
  SpecAugmentOptions o{
      .time_masks = 2, .max_time_width = 5, .freq_masks = 1, .max_freq_width = 3, .fill = -7.0f};
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Tensor x = Tensor::full(Shape{50, 20}, 1.0f);
    Rng rng(seed);
    spec_augment(x.view(), o, rng);
    int64_t rows = 0, cols = 0;
    for (int64_t t = 0; t < 50; ++t) {
      bool all = true;
      for (int64_t f = 0; f < 20; ++f) all &= x(t, f) == -7.0f;
      rows += all;
    }
    for (int64_t f = 0; f < 20; ++f) {
      bool all = true;
      for (int64_t t = 0; t < 50; ++t) all &= x(t, f) == -7.0f;
      cols += all;
    }
    EXPECT_LE(rows, 10);
    EXPECT_LE(cols, 3);
    for (int64_t t = 0; t < 50; ++t)
      for (int64_t f = 0; f < 20; ++f) EXPECT_TRUE(x(t, f) == 1.0f || x(t, f) == -7.0f);
  }
  // Some seed masks something; zero widths mask nothing.
  Tensor x = Tensor::full(Shape{50, 20}, 1.0f);
  Rng rng(3);
  for (int i = 0; i < 10; ++i) spec_augment(x.view(), o, rng);
  int64_t masked = 0;
  for (float v : x.values()) masked += v == -7.0f;
  EXPECT_GT(masked, 100);
  Tensor y = Tensor::full(Shape{50, 20}, 1.0f);
  spec_augment(y.view(), {.max_time_width = 0, .max_freq_width = 0}, rng);
  for (float v : y.values()) EXPECT_EQ(v, 1.0f);
  EXPECT_THROW(spec_augment(y.view(), {.time_masks = -1}, rng), ValueError);
  EXPECT_THROW(spec_augment(Tensor::zeros(Shape{3}).view(), o, rng), ShapeError);
}

}  // namespace
}  // namespace attn::train
