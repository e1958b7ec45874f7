// SPDX-License-Identifier: MIT
// libsndfile decodes (from a path, or from memory through its virtual I/O), libsoxr resamples.
#include "attn/audio/audio.h"

#include <sndfile.h>
#include <soxr.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "attn/error.h"

namespace attn::audio {
namespace {

constexpr int kMaxChannels = 64;
constexpr int kMaxSampleRate = 1'000'000;
constexpr int64_t kMaxSamples = int64_t{1} << 31;

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

// A read-only file in memory for sf_open_virtual.
struct MemoryFile {
  std::span<const std::byte> bytes;
  sf_count_t position = 0;
};

sf_count_t memory_length(void* user) {
  return static_cast<sf_count_t>(static_cast<MemoryFile*>(user)->bytes.size());
}
sf_count_t memory_seek(sf_count_t offset, int whence, void* user) {
  auto* f = static_cast<MemoryFile*>(user);
  const auto size = static_cast<sf_count_t>(f->bytes.size());
  sf_count_t target = offset;
  if (whence == SEEK_CUR) target = f->position + offset;
  if (whence == SEEK_END) target = size + offset;
  if (target < 0 || target > size) return -1;
  f->position = target;
  return f->position;
}
sf_count_t memory_read(void* out, sf_count_t count, void* user) {
  auto* f = static_cast<MemoryFile*>(user);
  const auto size = static_cast<sf_count_t>(f->bytes.size());
  const sf_count_t n = std::clamp<sf_count_t>(count, 0, size - f->position);
  if (n > 0) std::memcpy(out, f->bytes.data() + f->position, static_cast<size_t>(n));
  f->position += n;
  return n;
}
sf_count_t memory_write(const void*, sf_count_t, void*) { return 0; }
sf_count_t memory_tell(void* user) { return static_cast<MemoryFile*>(user)->position; }

// Checks the header's claims, then reads and de-interleaves every frame into (channels, frames).
Audio read_all(const char* fn, SNDFILE* file, const SF_INFO& info, const std::string& name) {
  if (info.channels < 1 || info.channels > kMaxChannels)
    fail<IoError>(fn, name, ": ", info.channels, " channels (need 1 to ", kMaxChannels, ")");
  if (info.samplerate < 1 || info.samplerate > kMaxSampleRate)
    fail<IoError>(fn, name, ": sample rate ", info.samplerate, " Hz is out of range");
  if (info.frames <= 0) fail<IoError>(fn, name, ": no audio frames");
  if (info.frames > kMaxSamples / info.channels)
    fail<IoError>(fn, name, ": ", info.frames, " frames × ", info.channels,
                  " channels is more than attn reads (2^31 samples)");
  const int64_t channels = info.channels, frames = info.frames;
  std::vector<float> interleaved(static_cast<size_t>(channels * frames));
  // Headers may claim more frames than the data holds: keep what was read.
  const sf_count_t got = sf_readf_float(file, interleaved.data(), frames);
  if (got <= 0)
    fail<IoError>(fn, name, ": no audio frames could be decoded (", sf_strerror(file), ")");
  Audio audio;
  audio.sample_rate = info.samplerate;
  audio.samples = Tensor::uninitialized(Shape{channels, got});
  float* out = audio.samples.data();
  for (int64_t t = 0; t < got; ++t)
    for (int64_t c = 0; c < channels; ++c) {
      const float s = interleaved[static_cast<size_t>(t * channels + c)];
      if (!std::isfinite(s)) fail<IoError>(fn, name, ": non-finite sample at frame ", t);
      out[c * got + t] = s;
    }
  return audio;
}

}  // namespace

Audio decode(std::span<const std::byte> bytes, const std::string& name) {
  constexpr const char* fn = "audio::decode";
  MemoryFile memory{bytes};
  SF_VIRTUAL_IO io{memory_length, memory_seek, memory_read, memory_write, memory_tell};
  SF_INFO info{};
  SndfilePtr file(sf_open_virtual(&io, SFM_READ, &info, &memory));
  if (!file)
    fail<IoError>(fn, name, ": not an audio file libsndfile reads (", sf_strerror(nullptr), ")");
  return read_all(fn, file.get(), info, name);
}

Audio read(const std::string& path) {
  constexpr const char* fn = "audio::read";
  SF_INFO info{};
  SndfilePtr file(sf_open(path.c_str(), SFM_READ, &info));
  if (!file) fail<IoError>(fn, path, ": cannot read (", sf_strerror(nullptr), ")");
  return read_all(fn, file.get(), info, path);
}

Audio load(const std::string& path, const LoadOptions& options) {
  if (options.sample_rate < 0)
    fail<ValueError>("audio::load", "sample_rate must be >= 0 (0 keeps the file's), got ",
                     options.sample_rate);
  Audio audio = read(path);
  if (options.mono && audio.channels() > 1) audio.samples = to_mono(audio.samples);
  if (options.sample_rate > 0 && options.sample_rate != audio.sample_rate) {
    audio.samples = resample(audio.samples, audio.sample_rate, options.sample_rate);
    audio.sample_rate = options.sample_rate;
  }
  return audio;
}

Tensor to_mono(ConstTensorView samples) {
  if (!samples.defined() || samples.rank() != 2 || samples.dim(0) < 1)
    fail<ShapeError>("audio::to_mono", "samples must be (channels >= 1, frames), got ",
                     samples.defined() ? samples.shape().str() : std::string("none"));
  const int64_t channels = samples.dim(0), frames = samples.dim(1);
  Tensor mono = Tensor::zeros(Shape{1, frames});
  float* out = mono.data();
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t t = 0; t < frames; ++t) out[t] += samples(c, t);
  const float inv = 1.0f / static_cast<float>(channels);
  for (int64_t t = 0; t < frames; ++t) out[t] *= inv;
  return mono;
}

Tensor resample(ConstTensorView samples, double from_rate, double to_rate) {
  constexpr const char* fn = "audio::resample";
  if (!samples.defined() || samples.rank() != 2 || samples.dim(0) < 1)
    fail<ShapeError>(fn, "samples must be (channels >= 1, frames), got ",
                     samples.defined() ? samples.shape().str() : std::string("none"));
  if (!(from_rate >= 1 && from_rate <= kMaxSampleRate && to_rate >= 1 && to_rate <= kMaxSampleRate))
    fail<ValueError>(fn, "rates must be in [1, ", kMaxSampleRate, "] Hz, got ", from_rate, " -> ",
                     to_rate);
  Tensor in = Tensor::copy_of(samples);  // contiguous rows for soxr's split-channel input
  const int64_t channels = in.dim(0), frames = in.dim(1);
  if (from_rate == to_rate) return in;
  const auto out_frames = static_cast<int64_t>(std::llround(double(frames) * to_rate / from_rate));
  Tensor out = Tensor::zeros(Shape{channels, out_frames});
  if (out_frames == 0) return out;
  std::vector<const float*> in_rows;
  std::vector<float*> out_rows;
  for (int64_t c = 0; c < channels; ++c) {
    in_rows.push_back(in.data() + c * frames);
    out_rows.push_back(out.data() + c * out_frames);
  }
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_S, SOXR_FLOAT32_S);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
  size_t done_in = 0, done_out = 0;
  const soxr_error_t error =
      soxr_oneshot(from_rate, to_rate, static_cast<unsigned>(channels), in_rows.data(),
                   static_cast<size_t>(frames), &done_in, out_rows.data(),
                   static_cast<size_t>(out_frames), &done_out, &io, &quality, &runtime);
  if (error) fail<ValueError>(fn, "libsoxr failed: ", error);
  return out;  // any frames soxr did not fill (at most one, from rounding) stay zero
}

void write_wav(const std::string& path, ConstTensorView samples, int sample_rate,
               SampleFormat format) {
  constexpr const char* fn = "audio::write_wav";
  if (!samples.defined() || samples.rank() != 2 || samples.dim(0) < 1 ||
      samples.dim(0) > kMaxChannels)
    fail<ShapeError>(fn, "samples must be (channels in [1, ", kMaxChannels, "], frames), got ",
                     samples.defined() ? samples.shape().str() : std::string("none"));
  if (sample_rate < 1 || sample_rate > kMaxSampleRate)
    fail<ValueError>(fn, "sample_rate must be in [1, ", kMaxSampleRate, "], got ", sample_rate);
  const int64_t channels = samples.dim(0), frames = samples.dim(1);
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = static_cast<int>(channels);
  info.format =
      SF_FORMAT_WAV | (format == SampleFormat::kPcm16 ? SF_FORMAT_PCM_16 : SF_FORMAT_FLOAT);
  SndfilePtr file(sf_open(path.c_str(), SFM_WRITE, &info));
  if (!file) fail<IoError>(fn, path, ": cannot write (", sf_strerror(nullptr), ")");
  // libsndfile scales float to PCM16 by 32767 and would wrap values beyond ±1 without clipping on.
  sf_command(file.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
  std::vector<float> interleaved(static_cast<size_t>(channels * frames));
  for (int64_t t = 0; t < frames; ++t)
    for (int64_t c = 0; c < channels; ++c)
      interleaved[static_cast<size_t>(t * channels + c)] = samples(c, t);
  if (sf_writef_float(file.get(), interleaved.data(), frames) != frames)
    fail<IoError>(fn, path, ": write failed (", sf_strerror(file.get()), ")");
}

}  // namespace attn::audio
