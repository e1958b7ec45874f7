// SPDX-License-Identifier: MIT
// Fuzz target for the IDX reader and the gzip inflater: any input must either parse or raise
// attn::IoError; never crash, read out of bounds, or throw anything else. Built as a libFuzzer
// binary with ATTN_FUZZ (clang), and driven by fuzz_smoke_main.cc in every build.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attn/io/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
    std::vector<std::byte> inflated;
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
      inflated = attn::io::gunzip(bytes, "fuzz", size_t{1} << 24);
      bytes = inflated;
    }
    const auto array = attn::io::parse_idx(bytes, "fuzz");
    volatile unsigned sink = 0;  // touch every element so that sanitizers see any bad read
    for (uint8_t v : array.data) sink = sink + v;
  } catch (const attn::IoError&) {
  }
  return 0;
}
