// SPDX-License-Identifier: MIT
// Fuzz target for the .npy reader: any input must either parse or raise attn::IoError; never crash,
// read out of bounds, or throw anything else. Built as a libFuzzer binary with ATTN_FUZZ (clang),
// and driven by fuzz_smoke_main.cc in every build.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attn/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto array =
        attn::io::parse_npy(std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz");
    // Touch every converted value so that sanitizers see any bad read.
    const auto t = array.to_double();
    volatile double sink = 0.0;
    for (double x : t.values()) sink = sink + x;
    (void)attn::io::serialize_npy(array);
  } catch (const attn::IoError&) {
  }
  return 0;
}
