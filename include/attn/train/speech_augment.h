// SPDX-License-Identifier: MIT
// Augmentation for speech training, as speech recipes do it (Kaldi/WeNet/ESPnet):
//   - additive noise at a signal-to-noise ratio (white Gaussian noise here: no noise corpus ships);
//   - speed perturbation: resampling that changes tempo and pitch together (sox's `speed`), with
//   the
//     phoneme times scaled so the frame labels still line up;
//   - SpecAugment-style time and frequency masks on the features (Park et al., 2019), without time
//     warping.
#pragma once

#include <cstdint>

#include "attn/context.h"
#include "attn/tensor.h"
#include "attn/train/speech_synth.h"

namespace attn::train {

// samples (N) -> samples + noise, the noise's power snr_db below the samples' mean power (a silent
// input stays silent). snr_db must be finite.
Tensor add_noise(ConstTensorView samples, double snr_db, Rng& rng);

// The speech played `factor` times faster (factor in [0.5, 2]; 1.1 makes it 10% shorter and
// higher): the samples resampled from 16000·factor Hz to 16000 Hz and the phoneme starts divided by
// factor.
SynthesizedSpeech speed_perturb(const SynthesizedSpeech& speech, double factor);

struct SpecAugmentOptions {
  int64_t time_masks = 2, max_time_width = 10;  // masks of [0, max] frames each
  int64_t freq_masks = 2, max_freq_width = 8;   // masks of [0, max] bins each
  float fill = 0.0f;  // what masked cells become (0: the mean of mean-normalised features)
};

// feats (T, F), OVERWRITTEN in place: each mask's start and width drawn uniformly (widths clipped
// to the axis).
void spec_augment(TensorView feats, const SpecAugmentOptions& options, Rng& rng);

struct SpeechAugmentOptions {
  bool enabled = false;
  double noise_probability = 0.5, min_snr_db = 10.0, max_snr_db = 30.0;
  double speed_probability = 0.5, min_speed = 0.9, max_speed = 1.1;
  bool spec_augment = true;
  SpecAugmentOptions spec;
};

}  // namespace attn::train
