// SPDX-License-Identifier: MIT
// Whole-file reads and writes shared by the file formats; errors are IoError naming `fn` and the
// path.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace attn::io::internal {

std::vector<std::byte> read_file_bytes(const char* fn, const std::string& path);
void write_file_bytes(const char* fn, const std::string& path, std::span<const std::byte> bytes);

}  // namespace attn::io::internal
