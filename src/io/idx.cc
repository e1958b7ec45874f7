// SPDX-License-Identifier: MIT
// IDX parsing and gzip inflation (zlib). The header is validated field by field before any element
// is read: the two zero bytes, the element type, a dimension count in [1, 8], dimensions whose
// product fits and equals the bytes that follow exactly.
#include "attn/io/idx.h"

#include <zlib.h>

#include <algorithm>
#include <limits>

#include "attn/error.h"
#include "io/internal/file_bytes.h"

namespace attn::io {
namespace {

uint32_t be32(std::span<const std::byte> b, size_t at) {
  return (std::to_integer<uint32_t>(b[at]) << 24) | (std::to_integer<uint32_t>(b[at + 1]) << 16) |
         (std::to_integer<uint32_t>(b[at + 2]) << 8) | std::to_integer<uint32_t>(b[at + 3]);
}

std::string hex_byte(unsigned v) {
  const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[(v >> 4) & 15] + digits[v & 15];
}

}  // namespace

IdxArray parse_idx(std::span<const std::byte> bytes, const std::string& name) {
  const char* fn = "parse_idx";
  if (bytes.size() < 4)
    fail<IoError>(fn, "'", name, "' is not an IDX file: ", bytes.size(), " bytes, fewer than the ",
                  "4-byte magic number");
  if (bytes[0] != std::byte{0} || bytes[1] != std::byte{0})
    fail<IoError>(fn, "'", name, "' is not an IDX file: its magic number does not start with two ",
                  "zero bytes (a gzip file that was not inflated starts 1f 8b)");
  const auto type = std::to_integer<unsigned>(bytes[2]);
  if (type != 0x08)
    fail<IoError>(fn, "'", name, "': element type ", hex_byte(type),
                  " is not supported (attn reads unsigned bytes, type 0x08)");
  const auto rank = std::to_integer<size_t>(bytes[3]);
  if (rank < 1 || rank > 8)
    fail<IoError>(fn, "'", name, "': ", rank, " dimensions (an IDX array has 1 to 8)");
  const size_t header = 4 + 4 * rank;
  if (bytes.size() < header)
    fail<IoError>(fn, "'", name, "' is truncated: ", bytes.size(), " bytes, fewer than its ",
                  header, "-byte header");
  std::vector<int64_t> dims;
  uint64_t count = 1;
  for (size_t i = 0; i < rank; ++i) {
    const uint32_t d = be32(bytes, 4 + 4 * i);
    if (d > static_cast<uint32_t>(std::numeric_limits<int32_t>::max()))
      fail<IoError>(fn, "'", name, "': dimension ", i, " is ", d, ", more than 2^31 - 1");
    dims.push_back(static_cast<int64_t>(d));
    count = d == 0 ? 0 : count;
    if (d != 0 && count > std::numeric_limits<uint64_t>::max() / d)
      fail<IoError>(fn, "'", name, "': the dimensions overflow");
    count *= d;
  }
  const uint64_t have = bytes.size() - header;
  if (count != have)
    fail<IoError>(fn, "'", name, "': its header promises ", count, " elements but ", have,
                  " bytes follow it", count > have ? " (truncated)" : " (trailing bytes)");
  IdxArray a;
  a.shape = Shape(std::span<const int64_t>(dims));
  a.data.resize(static_cast<size_t>(count));
  std::transform(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end(), a.data.begin(),
                 [](std::byte b) { return std::to_integer<uint8_t>(b); });
  return a;
}

std::vector<std::byte> gunzip(std::span<const std::byte> bytes, const std::string& name,
                              size_t max_bytes) {
  const char* fn = "gunzip";
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)  // 16: expect a gzip header
    fail<IoError>(fn, "zlib could not start inflating '", name, "'");
  std::vector<std::byte> out;
  size_t in_pos = 0;
  int rc = Z_OK;
  auto fail_with = [&](const std::string& why) {
    inflateEnd(&zs);
    fail<IoError>(fn, "'", name, "' is not a valid gzip file: ", why);
  };
  while (true) {
    const size_t chunk = std::min<size_t>(bytes.size() - in_pos, 1u << 30);
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(bytes.data() + in_pos));
    zs.avail_in = static_cast<uInt>(chunk);
    const size_t before = out.size();
    out.resize(before + std::max<size_t>(chunk * 4, 1 << 16));
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + before);
    zs.avail_out = static_cast<uInt>(out.size() - before);
    rc = inflate(&zs, Z_NO_FLUSH);
    in_pos += chunk - zs.avail_in;
    out.resize(out.size() - zs.avail_out);
    if (out.size() > max_bytes)
      fail_with("it inflates to more than " + std::to_string(max_bytes) + " bytes");
    if (rc == Z_STREAM_END) {
      if (in_pos == bytes.size()) break;
      if (inflateReset(&zs) != Z_OK) fail_with("cannot continue after a member");  // next member
      continue;
    }
    if (rc == Z_BUF_ERROR && in_pos == bytes.size()) fail_with("the stream is truncated");
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      fail_with(zs.msg ? zs.msg : ("zlib error " + std::to_string(rc)));
  }
  inflateEnd(&zs);
  return out;
}

IdxArray read_idx(const std::string& path) {
  const std::vector<std::byte> bytes = internal::read_file_bytes("read_idx", path);
  const bool gzipped =
      bytes.size() >= 2 && bytes[0] == std::byte{0x1f} && bytes[1] == std::byte{0x8b};
  if (!gzipped) return parse_idx(bytes, path);
  return parse_idx(gunzip(bytes, path), path);
}

}  // namespace attn::io
