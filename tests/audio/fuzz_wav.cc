// SPDX-License-Identifier: MIT
// Fuzz target for audio decoding (libsndfile from memory, then attn's checks): any input must
// either decode or raise attn::IoError; never crash, read out of bounds, or throw anything else.
// Driven by io/fuzz_smoke_main.cc over the WAV seeds in every build; a libFuzzer binary with
// ATTN_FUZZ (clang).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "attn/audio/audio.h"
#include "attn/audio/features.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const attn::audio::Audio a =
        attn::audio::decode(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz");
    // Touch every sample so that sanitizers see any bad read, and run the front end on it.
    volatile float sink = 0.0f;
    for (float x : a.samples.values()) sink = sink + x;
    const attn::Tensor mono = attn::audio::to_mono(a.samples.view());
    attn::audio::FbankOptions o;
    o.sample_frequency = a.sample_rate;
    if (a.sample_rate >= 8000) (void)attn::audio::fbank(mono.view().select(0, 0), o);
  } catch (const attn::IoError&) {
  }
  return 0;
}
