// SPDX-License-Identifier: MIT
// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed as they are distributed:
// a big-endian header (two zero bytes, an element type, a dimension count, one uint32 per
// dimension) and the elements. attn reads unsigned-byte arrays (type 0x08), the type images and
// labels use. Every malformed file raises IoError naming the file and what is wrong with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "attn/tensor.h"

namespace attn::io {

struct IdxArray {
  Shape shape;                // e.g. (60000, 28, 28) for images, (60000) for labels
  std::vector<uint8_t> data;  // shape.numel() bytes, row-major
};

// Parses the (decompressed) bytes of an IDX file; `name` is used in error messages.
IdxArray parse_idx(std::span<const std::byte> bytes, const std::string& name = "<memory>");

// The bytes of a gzip stream, inflated (concatenated members included). Output beyond max_bytes,
// a truncated or corrupt stream, and trailing garbage are IoErrors.
std::vector<std::byte> gunzip(std::span<const std::byte> bytes, const std::string& name,
                              size_t max_bytes = size_t{1} << 31);

// Reads an IDX file; gzip-compressed files (magic 1f 8b, e.g. "train-images-idx3-ubyte.gz") are
// inflated first.
IdxArray read_idx(const std::string& path);

}  // namespace attn::io
