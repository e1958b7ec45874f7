// SPDX-License-Identifier: MIT
// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]},
// "__metadata__": {...}}, then the tensors' bytes. attn reads F32, F64, F16 and BF16 (converted to
// float32) and writes F32. Validation follows the format's own rules: the header is a JSON object
// of at most 100 MB; every entry has a known dtype, a non-negative shape and offsets with begin <=
// end; end - begin equals the shape's element count times the dtype's size; the entries, sorted by
// offset, tile the data buffer exactly (no gap, no overlap, nothing after the last). Every
// violation raises IoError naming the file and entry.
#pragma once

#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "attn/tensor.h"

namespace attn::io {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;        // by name, converted to float32
  std::map<std::string, std::string> metadata;  // "__metadata__" (string values only)
};

// Parses the bytes of a .safetensors file; `name` is used in error messages.
SafetensorsFile parse_safetensors(std::span<const std::byte> bytes,
                                  const std::string& name = "<memory>");
SafetensorsFile read_safetensors(const std::string& path);

// Writes F32 tensors in the order given (names must be unique and non-empty, "__metadata__" is
// reserved).
using NamedTensorView = std::pair<std::string, ConstTensorView>;
std::vector<std::byte> serialize_safetensors(
    const std::vector<NamedTensorView>& tensors,
    const std::map<std::string, std::string>& metadata = {});
void write_safetensors(const std::string& path, const std::vector<NamedTensorView>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace attn::io
