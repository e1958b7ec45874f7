// SPDX-License-Identifier: MIT
// Audio in and out: files libsndfile reads (WAV, FLAC, OGG/Vorbis, AIFF, ...), decoded to float
// samples in [-1, 1] as torchaudio.load gives them, mixed down to mono and resampled by libsoxr.
// Every unreadable, empty or absurd file raises IoError naming the file and libsndfile's reason.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "attn/tensor.h"

namespace attn::audio {

// The audio resampled to (or recorded at) this rate is what the speech features expect.
inline constexpr int kSpeechSampleRate = 16000;

struct Audio {
  Tensor samples;       // (channels, frames); float in [-1, 1] (int16 s maps to s / 32768)
  int sample_rate = 0;  // Hz
  int64_t channels() const { return samples.defined() ? samples.dim(0) : 0; }
  int64_t frames() const { return samples.defined() ? samples.dim(1) : 0; }
  double seconds() const { return sample_rate > 0 ? double(frames()) / sample_rate : 0.0; }
};

// Decodes a whole file held in memory; `name` is used in error messages. Files with no channels,
// more than 64 channels, a rate outside [1, 1 MHz] or more than 2^31 samples in all are IoErrors;
// a file with zero frames is an IoError too (there is nothing to compute features of).
Audio decode(std::span<const std::byte> bytes, const std::string& name = "<memory>");
// Reads the file at `path` as decode() does.
Audio read(const std::string& path);

struct LoadOptions {
  int sample_rate = kSpeechSampleRate;  // resample to this rate; 0 keeps the file's rate
  bool mono = true;                     // mix the channels down to one (their mean)
};
// read() followed by to_mono() and resample(), as a speech front end wants its input.
Audio load(const std::string& path, const LoadOptions& options = {});

// The mean of the channels: (channels, frames) -> (1, frames).
Tensor to_mono(ConstTensorView samples);

// Resamples every channel of `samples` (channels, frames) from `from_rate` to `to_rate` Hz with
// libsoxr's high-quality filter (passband to 91% of the lower Nyquist frequency, linear phase, its
// delay removed). The output has round(frames · to_rate / from_rate) frames. Same rate: a copy.
Tensor resample(ConstTensorView samples, double from_rate, double to_rate);

enum class SampleFormat { kPcm16, kFloat32 };
// Writes `samples` (channels, frames) as a WAV file; PCM16 clips to [-1, 1].
void write_wav(const std::string& path, ConstTensorView samples, int sample_rate,
               SampleFormat format = SampleFormat::kPcm16);

}  // namespace attn::audio
