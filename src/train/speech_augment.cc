// SPDX-License-Identifier: MIT
// Speech augmentation (include/attn/train/speech_augment.h).
#include "attn/train/speech_augment.h"

#include <algorithm>
#include <cmath>

#include "attn/audio/audio.h"
#include "attn/error.h"

namespace attn::train {

Tensor add_noise(ConstTensorView samples, double snr_db, Rng& rng) {
  constexpr const char* fn = "train::add_noise";
  if (samples.rank() != 1) fail<ShapeError>(fn, "samples must be (N), got ", samples.shape().str());
  if (!std::isfinite(snr_db)) fail<ValueError>(fn, "snr_db must be finite, got ", snr_db);
  const int64_t n = samples.dim(0);
  double power = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const auto x = static_cast<double>(samples(i));
    power += x * x;
  }
  power = n > 0 ? power / static_cast<double>(n) : 0.0;
  const double sigma = std::sqrt(power * std::pow(10.0, -snr_db / 10.0));
  Tensor out(Shape{n});
  for (int64_t i = 0; i < n; ++i)
    out.data()[i] = static_cast<float>(static_cast<double>(samples(i)) + sigma * rng.normal());
  return out;
}

SynthesizedSpeech speed_perturb(const SynthesizedSpeech& speech, double factor) {
  constexpr const char* fn = "train::speed_perturb";
  if (!(factor >= 0.5 && factor <= 2.0))
    fail<ValueError>(fn, "factor must be in [0.5, 2], got ", factor);
  if (speech.samples.rank() != 1)
    fail<ShapeError>(fn, "samples must be (N), got ", speech.samples.shape().str());
  SynthesizedSpeech out;
  out.phonemes = speech.phonemes;
  for (double ms : speech.phoneme_start_ms) out.phoneme_start_ms.push_back(ms / factor);
  if (speech.samples.numel() == 0 || factor == 1.0) {
    out.samples = Tensor::copy_of(speech.samples.view());
    return out;
  }
  const double rate = audio::kSpeechSampleRate;
  out.samples = Tensor::copy_of(
      audio::resample(speech.samples.view().unsqueeze(0), rate * factor, rate).view().select(0, 0));
  return out;
}

void spec_augment(TensorView feats, const SpecAugmentOptions& o, Rng& rng) {
  constexpr const char* fn = "train::spec_augment";
  if (feats.rank() != 2) fail<ShapeError>(fn, "feats must be (T, F), got ", feats.shape().str());
  if (o.time_masks < 0 || o.max_time_width < 0 || o.freq_masks < 0 || o.max_freq_width < 0)
    fail<ValueError>(fn, "mask counts and widths must be >= 0, got ", o.time_masks, ", ",
                     o.max_time_width, ", ", o.freq_masks, ", ", o.max_freq_width);
  const int64_t T = feats.dim(0), F = feats.dim(1);
  if (T == 0 || F == 0) return;
  for (int64_t m = 0; m < o.time_masks; ++m) {
    const int64_t w = std::min(T, rng.uniform_int(0, o.max_time_width));
    const int64_t t0 = rng.uniform_int(0, T - w);
    for (int64_t t = t0; t < t0 + w; ++t)
      for (int64_t f = 0; f < F; ++f) feats(t, f) = o.fill;
  }
  for (int64_t m = 0; m < o.freq_masks; ++m) {
    const int64_t w = std::min(F, rng.uniform_int(0, o.max_freq_width));
    const int64_t f0 = rng.uniform_int(0, F - w);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t f = f0; f < f0 + w; ++f) feats(t, f) = o.fill;
  }
}

}  // namespace attn::train
