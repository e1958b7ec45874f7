// SPDX-License-Identifier: MIT
// NumPy .npy files (format versions 1.0, 2.0 and 3.0): float32, float64, int32, int64 and bool
// arrays, C order, little endian. Anything else, and every malformed file, raises IoError with the
// reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "attn/tensor.h"

namespace attn::io {

enum class DType { kFloat32, kFloat64, kInt32, kInt64, kBool };

const char* dtype_name(DType dtype);  // "float32", ...
int64_t dtype_size(DType dtype);

// An array as stored: dtype, shape and the raw bytes, little-endian in C order (a file's big-endian
// or Fortran-order data is converted on reading).
struct NpyArray {
  DType dtype = DType::kFloat32;
  Shape shape;
  std::vector<std::byte> data;

  // Converting accessors. Every dtype converts to float and double (bool to 0/1); to_int64 throws
  // IoError naming `what` for floating-point arrays.
  Tensor to_float() const;
  TensorD to_double() const;
  std::vector<int64_t> to_int64(const std::string& what = "array") const;
};

// Parses the bytes of a .npy file; `name` is used in error messages.
NpyArray parse_npy(std::span<const std::byte> bytes, const std::string& name = "<memory>");
NpyArray read_npy(const std::string& path);

std::vector<std::byte> serialize_npy(const NpyArray& array);
void write_npy(const std::string& path, const NpyArray& array);
void write_npy(const std::string& path, ConstTensorView tensor);   // float32
void write_npy(const std::string& path, ConstTensorViewD tensor);  // float64

}  // namespace attn::io
