// SPDX-License-Identifier: MIT
#include "io/internal/file_bytes.h"

#include <fstream>

#include "attn/error.h"

namespace attn::io::internal {

std::vector<std::byte> read_file_bytes(const char* fn, const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail<IoError>(fn, "cannot open '", path, "'");
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  if (size < 0) fail<IoError>(fn, "cannot read '", path, "'");
  f.seekg(0, std::ios::beg);
  std::vector<std::byte> bytes(static_cast<size_t>(size));
  if (!f.read(reinterpret_cast<char*>(bytes.data()), size))
    fail<IoError>(fn, "cannot read '", path, "'");
  return bytes;
}

void write_file_bytes(const char* fn, const std::string& path, std::span<const std::byte> bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) fail<IoError>(fn, "cannot open '", path, "' for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) fail<IoError>(fn, "error writing '", path, "'");
}

}  // namespace attn::io::internal
