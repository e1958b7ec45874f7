// SPDX-License-Identifier: MIT
// safetensors reader and writer with the format's validation rules (see
// include/attn/io/safetensors.h).
#include "attn/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "io/internal/file_bytes.h"

namespace attn::io {

static_assert(std::endian::native == std::endian::little,
              "attn's safetensors code assumes a little-endian host");

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the format's own limit

[[noreturn]] void bad(const std::string& name, const std::string& why) {
  fail<IoError>("read_safetensors", name, ": ", why);
}

enum class StoredType { kF32, kF64, kF16, kBF16 };

bool parse_dtype(const std::string& s, StoredType& t, int64_t& size) {
  if (s == "F32") {
    t = StoredType::kF32;
    size = 4;
    return true;
  }
  if (s == "F64") {
    t = StoredType::kF64;
    size = 8;
    return true;
  }
  if (s == "F16") {
    t = StoredType::kF16;
    size = 2;
    return true;
  }
  if (s == "BF16") {
    t = StoredType::kBF16;
    size = 2;
    return true;
  }
  return false;
}

// IEEE binary16 -> binary32, exact (subnormals, infinities and NaN included).
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: value = mant · 2^-24
      const float f = static_cast<float>(mant) * 0x1p-24f;
      return sign ? -f : f;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

struct Entry {
  std::string name;
  StoredType type;
  int64_t elem_size;
  Shape shape;
  uint64_t begin, end;
};

int64_t json_int(const nlohmann::json& j, const std::string& name, const char* what) {
  if (!j.is_number_integer() && !j.is_number_unsigned())
    bad(name, std::string(what) + " must be a non-negative integer");
  if (j.is_number_integer() && !j.is_number_unsigned() && j.get<int64_t>() < 0)
    bad(name, std::string(what) + " must be non-negative, got " + j.dump());
  const uint64_t u = j.get<uint64_t>();
  if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    bad(name, std::string(what) + " is too large");
  return static_cast<int64_t>(u);
}

Entry parse_entry(const std::string& file, const std::string& key, const nlohmann::json& e) {
  const std::string where = file + ": tensor '" + key + "'";
  if (!e.is_object()) bad(where, "entry is not an object");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!e.contains(field)) bad(where, std::string("missing \"") + field + "\"");
  Entry out{key, StoredType::kF32, 0, Shape{}, 0, 0};
  if (!e["dtype"].is_string()) bad(where, "dtype is not a string");
  const auto dtype = e["dtype"].get<std::string>();
  if (!parse_dtype(dtype, out.type, out.elem_size))
    bad(where, "dtype " + dtype + " is not supported (attn reads F32, F64, F16, BF16)");
  const auto& shape = e["shape"];
  if (!shape.is_array()) bad(where, "shape is not a list");
  if (shape.size() > static_cast<size_t>(kMaxRank))
    bad(where, "shape has rank " + std::to_string(shape.size()) + " (attn supports up to " +
                   std::to_string(kMaxRank) + ")");
  std::vector<int64_t> dims;
  for (const auto& d : shape) dims.push_back(json_int(d, where, "a shape entry"));
  try {
    out.shape = Shape(std::span<const int64_t>(dims));
  } catch (const Error& err) {
    bad(where, std::string("bad shape: ") + err.what());
  }
  const auto& off = e["data_offsets"];
  if (!off.is_array() || off.size() != 2) bad(where, "data_offsets must be [begin, end]");
  out.begin = static_cast<uint64_t>(json_int(off[0], where, "data_offsets[0]"));
  out.end = static_cast<uint64_t>(json_int(off[1], where, "data_offsets[1]"));
  if (out.begin > out.end) bad(where, "data_offsets begin > end");
  const uint64_t numel = static_cast<uint64_t>(out.shape.numel());
  if (numel > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(out.elem_size) ||
      out.end - out.begin != numel * static_cast<uint64_t>(out.elem_size))
    bad(where, "holds " + std::to_string(out.end - out.begin) + " bytes but shape " +
                   out.shape.str() + " of " + dtype + " needs " + std::to_string(numel) + " x " +
                   std::to_string(out.elem_size));
  return out;
}

Tensor convert(const Entry& e, const std::byte* data) {
  Tensor t(e.shape);
  float* dst = t.data();
  const int64_t n = e.shape.numel();
  for (int64_t i = 0; i < n; ++i) {
    const std::byte* p = data + i * e.elem_size;
    switch (e.type) {
      case StoredType::kF32:
        std::memcpy(&dst[i], p, 4);
        break;
      case StoredType::kF64: {
        double d;
        std::memcpy(&d, p, 8);
        dst[i] = static_cast<float>(d);
        break;
      }
      case StoredType::kF16: {
        uint16_t h;
        std::memcpy(&h, p, 2);
        dst[i] = half_to_float(h);
        break;
      }
      case StoredType::kBF16: {
        uint16_t h;
        std::memcpy(&h, p, 2);
        dst[i] = std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
        break;
      }
    }
  }
  return t;
}

}  // namespace

SafetensorsFile parse_safetensors(std::span<const std::byte> bytes, const std::string& name) {
  if (bytes.size() < 8)
    bad(name, "file is " + std::to_string(bytes.size()) +
                  " bytes, shorter than the 8-byte header length");
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > kMaxHeaderBytes)
    bad(name, "header length " + std::to_string(header_len) + " exceeds 100 MB");
  if (header_len > bytes.size() - 8)
    bad(name, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                  std::to_string(bytes.size()) + " bytes)");
  const auto* text = reinterpret_cast<const char*>(bytes.data() + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, text + header_len);
  } catch (const nlohmann::json::exception& e) {
    bad(name, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) bad(name, "header is not a JSON object");
  const std::byte* buffer = bytes.data() + 8 + header_len;
  const uint64_t buffer_len = bytes.size() - 8 - header_len;

  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) bad(name, "__metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) bad(name, "__metadata__ value for '" + mk + "' is not a string");
        file.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(name, key, value));
  }
  // The entries must tile [0, buffer_len) exactly.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (const auto& e : entries) {
    if (e.begin != expected)
      bad(name, "tensor '" + e.name + "' starts at byte " + std::to_string(e.begin) +
                    " but the previous tensor ends at " + std::to_string(expected) +
                    (e.begin < expected ? " (overlap)" : " (gap)"));
    expected = e.end;
  }
  if (expected != buffer_len)
    bad(name, "tensors cover " + std::to_string(expected) + " data bytes but the file has " +
                  std::to_string(buffer_len));
  for (const auto& e : entries) file.tensors.emplace(e.name, convert(e, buffer + e.begin));
  return file;
}

SafetensorsFile read_safetensors(const std::string& path) {
  return parse_safetensors(internal::read_file_bytes("read_safetensors", path), path);
}

std::vector<std::byte> serialize_safetensors(const std::vector<NamedTensorView>& tensors,
                                             const std::map<std::string, std::string>& metadata) {
  constexpr const char* fn = "write_safetensors";
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<uint64_t> begins;
  for (const auto& [tname, view] : tensors) {
    if (tname.empty() || tname == "__metadata__")
      fail<ValueError>(fn, "invalid tensor name '", tname, "'");
    if (header.contains(tname)) fail<ValueError>(fn, "tensor name '", tname, "' appears twice");
    if (!view.defined()) fail<ValueError>(fn, "tensor '", tname, "' is undefined");
    const uint64_t bytes = static_cast<uint64_t>(view.numel()) * 4;
    header[tname] = {{"dtype", "F32"},
                     {"shape", std::vector<int64_t>(view.shape().begin(), view.shape().end())},
                     {"data_offsets", {offset, offset + bytes}}};
    begins.push_back(offset);
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8,
              ' ');  // align the data to 8 bytes, as the Python writer does
  std::vector<std::byte> out;
  out.reserve(8 + text.size() + offset);
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<std::byte>((text.size() >> (8 * i)) & 0xff));
  for (char c : text) out.push_back(static_cast<std::byte>(c));
  out.resize(8 + text.size() + offset);
  // The data in the order given (the header's keys are sorted, so its order is not the data's).
  for (size_t k = 0; k < tensors.size(); ++k) {
    const ConstTensorView& view = tensors[k].second;
    auto* dst = reinterpret_cast<float*>(out.data() + 8 + text.size() + begins[k]);
    int64_t i = 0;
    for_each_offset(view, [&](int64_t o) { std::memcpy(dst + i++, &view.data()[o], 4); });
  }
  return out;
}

void write_safetensors(const std::string& path, const std::vector<NamedTensorView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  internal::write_file_bytes("write_safetensors", path, serialize_safetensors(tensors, metadata));
}

}  // namespace attn::io
