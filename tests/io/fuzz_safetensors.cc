// SPDX-License-Identifier: MIT
// Fuzz target for the safetensors reader: any input must parse or raise attn::IoError; never crash,
// read out of bounds, or throw anything else. libFuzzer binary with ATTN_FUZZ; fuzz_smoke_main.cc
// otherwise.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attn/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = attn::io::parse_safetensors(
        std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz");
    volatile float sink = 0.0f;
    for (const auto& [name, t] : file.tensors)
      for (float x : t.values()) sink = sink + x;
    std::vector<attn::io::NamedTensorView> views;
    for (const auto& [name, t] : file.tensors) views.emplace_back(name, t.view());
    (void)attn::io::parse_safetensors(attn::io::serialize_safetensors(views, file.metadata),
                                      "fuzz round trip");
  } catch (const attn::IoError&) {
  }
  return 0;
}
