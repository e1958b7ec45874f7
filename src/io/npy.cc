// SPDX-License-Identifier: MIT
// .npy reader and writer. The header is a Python dict literal; we parse exactly the subset NumPy
// writes ({'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }) and reject everything else
// with a reason. Big-endian and Fortran-order data are read into little-endian C order.
// Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
#include "attn/io/npy.h"

#include "io/internal/file_bytes.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstring>
#include <limits>
#include <map>
#include <optional>

namespace attn::io {

static_assert(std::endian::native == std::endian::little,
              "attn's .npy code assumes a little-endian host");

namespace {

constexpr unsigned char kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t kMaxHeaderLen = 1 << 20;  // NumPy itself refuses headers above 10 KB by default

[[noreturn]] void bad(const std::string& name, const std::string& why) {
  fail<IoError>("read_npy", name, ": ", why);
}

// A tiny tokenizer for the header dict.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : s_(text), name_(name) {}

  void skip_ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool peek(char c) {
    skip_ws();
    return i_ < s_.size() && s_[i_] == c;
  }
  void expect(char c) {
    if (!peek(c))
      bad(name_,
          std::string("malformed header: expected '") + c + "' at offset " + std::to_string(i_));
    ++i_;
  }
  std::string string_literal() {
    skip_ws();
    if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"'))
      bad(name_, "malformed header: expected a string");
    const char q = s_[i_++];
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] != q) ++i_;
    if (i_ >= s_.size()) bad(name_, "malformed header: unterminated string");
    return std::string(s_.substr(start, i_++ - start));
  }
  std::string word() {
    skip_ws();
    const size_t start = i_;
    while (i_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[i_]))) ++i_;
    return std::string(s_.substr(start, i_ - start));
  }
  int64_t integer() {
    skip_ws();
    const size_t start = i_;
    int64_t v = 0;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) {
      const int digit = s_[i_] - '0';
      if (v > (std::numeric_limits<int64_t>::max() - digit) / 10)
        bad(name_, "shape dimension overflows int64");
      v = v * 10 + digit;
      ++i_;
    }
    if (i_ == start) bad(name_, "malformed header: expected a non-negative integer in shape");
    // NumPy writes Python ints; older writers append 'L'.
    if (i_ < s_.size() && s_[i_] == 'L') ++i_;
    return v;
  }
  std::vector<int64_t> tuple() {
    expect('(');
    std::vector<int64_t> dims;
    while (!peek(')')) {
      dims.push_back(integer());
      if (dims.size() > static_cast<size_t>(kMaxRank))
        bad(name_, "rank exceeds the maximum rank " + std::to_string(kMaxRank));
      if (!peek(',')) break;
      expect(',');
    }
    expect(')');
    return dims;
  }
  bool at_end() {
    skip_ws();
    return i_ >= s_.size();
  }

 private:
  std::string_view s_;
  const std::string& name_;
  size_t i_ = 0;
};

struct Descr {
  DType dtype;
  bool big_endian;  // '>f4' and the like: byte-swapped on reading
};

Descr parse_descr(const std::string& descr, const std::string& name) {
  static const std::map<std::string, DType> kKnown = {{"f4", DType::kFloat32},
                                                      {"f8", DType::kFloat64},
                                                      {"i4", DType::kInt32},
                                                      {"i8", DType::kInt64},
                                                      {"b1", DType::kBool}};
  const char order = descr.empty() ? '?' : descr[0];
  if (order == '<' || order == '>' || order == '|')
    if (auto it = kKnown.find(descr.substr(1)); it != kKnown.end())
      if (order != '|' || it->second == DType::kBool) return {it->second, order == '>'};
  bad(name,
      "unsupported dtype '" + descr + "' (supported: f4, f8, i4, i8 of either byte order, b1)");
}

const char* descr_of(DType d) {
  switch (d) {
    case DType::kFloat32:
      return "<f4";
    case DType::kFloat64:
      return "<f8";
    case DType::kInt32:
      return "<i4";
    case DType::kInt64:
      return "<i8";
    case DType::kBool:
      return "|b1";
  }
  return "?";
}

template <typename Out, typename Convert>
void convert_all(const NpyArray& a, Out* out, Convert&& convert) {
  const int64_t n = a.shape.numel();
  const auto size = static_cast<size_t>(dtype_size(a.dtype));
  for (int64_t i = 0; i < n; ++i) {
    const std::byte* p = a.data.data() + static_cast<size_t>(i) * size;
    switch (a.dtype) {
      case DType::kFloat32: {
        float v;
        std::memcpy(&v, p, 4);
        out[i] = convert(v);
        break;
      }
      case DType::kFloat64: {
        double v;
        std::memcpy(&v, p, 8);
        out[i] = convert(v);
        break;
      }
      case DType::kInt32: {
        int32_t v;
        std::memcpy(&v, p, 4);
        out[i] = convert(v);
        break;
      }
      case DType::kInt64: {
        int64_t v;
        std::memcpy(&v, p, 8);
        out[i] = convert(v);
        break;
      }
      case DType::kBool: {
        out[i] = convert(static_cast<int32_t>(*p != std::byte{0}));
        break;
      }
    }
  }
}

}  // namespace

const char* dtype_name(DType d) {
  switch (d) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat64:
      return "float64";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
    case DType::kBool:
      return "bool";
  }
  return "?";
}

int64_t dtype_size(DType d) {
  switch (d) {
    case DType::kFloat32:
    case DType::kInt32:
      return 4;
    case DType::kFloat64:
    case DType::kInt64:
      return 8;
    case DType::kBool:
      return 1;
  }
  return 0;
}

namespace {

struct Header {
  Descr descr;
  bool fortran;
  std::vector<int64_t> dims;
  size_t data_offset;
};

// The header dict of a .npy file: dtype, order, shape and where the data starts.
Header parse_header(std::span<const std::byte> bytes, const std::string& name) {
  if (bytes.size() < 10)
    bad(name, "file is too short to be .npy (" + std::to_string(bytes.size()) + " bytes)");
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    bad(name, "not a .npy file (bad magic string)");
  const auto major = static_cast<unsigned>(bytes[6]);
  size_t header_len = 0, prefix = 0;
  if (major == 1) {
    header_len = static_cast<size_t>(bytes[8]) | static_cast<size_t>(bytes[9]) << 8;
    prefix = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) bad(name, "file is too short for a version 2 header");
    for (int i = 3; i >= 0; --i)
      header_len = header_len << 8 | static_cast<size_t>(bytes[8 + static_cast<size_t>(i)]);
    prefix = 12;
  } else {
    bad(name, "unsupported .npy format version " + std::to_string(major));
  }
  if (header_len > kMaxHeaderLen)
    bad(name, "header length " + std::to_string(header_len) + " is implausibly large");
  if (bytes.size() - prefix < header_len)
    bad(name, "header length " + std::to_string(header_len) + " runs past the end of the file");
  const std::string_view header(reinterpret_cast<const char*>(bytes.data() + prefix), header_len);

  HeaderParser p(header, name);
  std::optional<Descr> dtype;
  std::optional<bool> fortran;
  std::optional<std::vector<int64_t>> dims;
  p.expect('{');
  while (!p.peek('}')) {
    const std::string key = p.string_literal();
    p.expect(':');
    if (key == "descr") {
      if (dtype) bad(name, "duplicate key 'descr'");
      dtype = parse_descr(p.string_literal(), name);
    } else if (key == "fortran_order") {
      if (fortran) bad(name, "duplicate key 'fortran_order'");
      const std::string w = p.word();
      if (w != "True" && w != "False") bad(name, "fortran_order must be True or False");
      fortran = w == "True";
    } else if (key == "shape") {
      if (dims) bad(name, "duplicate key 'shape'");
      dims = p.tuple();
    } else {
      bad(name, "unexpected header key '" + key + "'");
    }
    if (!p.peek(',')) break;
    p.expect(',');
  }
  p.expect('}');
  if (!p.at_end()) bad(name, "trailing characters after the header dict");
  if (!dtype || !fortran || !dims)
    bad(name, "header lacks one of 'descr', 'fortran_order', 'shape'");
  return {*dtype, *fortran, *dims, prefix + header_len};
}

// Each item's bytes reversed: big-endian data made little-endian.
void swap_bytes(std::vector<std::byte>& data, int64_t item) {
  for (size_t i = 0; i + static_cast<size_t>(item) <= data.size(); i += static_cast<size_t>(item))
    std::reverse(data.begin() + static_cast<std::ptrdiff_t>(i),
                 data.begin() + static_cast<std::ptrdiff_t>(i) + item);
}

// Fortran-order data (first index fastest) rearranged into C order (last index fastest).
std::vector<std::byte> c_order(const std::vector<std::byte>& data, const Shape& shape,
                               int64_t item) {
  const int r = shape.rank();
  std::vector<int64_t> fortran_stride(static_cast<size_t>(r)), index(static_cast<size_t>(r), 0);
  for (int64_t i = 0, stride = 1; i < r; stride *= shape[static_cast<int>(i)], ++i)
    fortran_stride[static_cast<size_t>(i)] = stride;
  std::vector<std::byte> out(data.size());
  for (int64_t c = 0; c < shape.numel(); ++c) {
    int64_t f = 0;
    for (int i = 0; i < r; ++i)
      f += index[static_cast<size_t>(i)] * fortran_stride[static_cast<size_t>(i)];
    std::memcpy(out.data() + c * item, data.data() + f * item, static_cast<size_t>(item));
    for (int i = r - 1; i >= 0 && ++index[static_cast<size_t>(i)] == shape[i]; --i)
      index[static_cast<size_t>(i)] = 0;
  }
  return out;
}

}  // namespace

NpyArray parse_npy(std::span<const std::byte> bytes, const std::string& name) {
  const Header h = parse_header(bytes, name);
  NpyArray a;
  a.dtype = h.descr.dtype;
  try {
    a.shape = Shape(h.dims);
  } catch (const ShapeError& e) {
    bad(name, std::string("invalid shape: ") + e.what());
  }
  const int64_t n = a.shape.numel();
  const int64_t item = dtype_size(a.dtype);
  const size_t available = bytes.size() - h.data_offset;
  if (n > static_cast<int64_t>(available) / item || static_cast<size_t>(n * item) != available)
    bad(name, "shape " + a.shape.str() + " of " + dtype_name(a.dtype) + " needs " +
                  (n > INT64_MAX / item ? std::string("too many") : std::to_string(n * item)) +
                  " data bytes but the file has " + std::to_string(available));
  const auto* begin = bytes.data() + h.data_offset;
  a.data.assign(begin, begin + available);
  if (h.descr.big_endian) swap_bytes(a.data, item);
  if (h.fortran && a.shape.rank() > 1) a.data = c_order(a.data, a.shape, item);
  if (a.dtype == DType::kBool)
    for (std::byte b : a.data)
      if (b != std::byte{0} && b != std::byte{1})
        bad(name, "bool array holds a byte other than 0 or 1");
  return a;
}

NpyArray read_npy(const std::string& path) {
  return parse_npy(internal::read_file_bytes("read_npy", path), path);
}

std::vector<std::byte> serialize_npy(const NpyArray& a) {
  if (static_cast<int64_t>(a.data.size()) != a.shape.numel() * dtype_size(a.dtype))
    fail<ValueError>("write_npy", "array of shape ", a.shape.str(), " and dtype ",
                     dtype_name(a.dtype), " has ", a.data.size(), " data bytes");
  std::string dims;
  for (int i = 0; i < a.shape.rank(); ++i) dims += (i ? ", " : "") + std::to_string(a.shape[i]);
  if (a.shape.rank() == 1) dims += ",";  // Python's one-element tuple: (5,)
  std::string header = std::string("{'descr': '") + descr_of(a.dtype) +
                       "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Pad with spaces and end with '\n' so that the data starts on a 64-byte boundary (NumPy >= 1.x
  // does).
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 65535) fail<ValueError>("write_npy", "header too long");
  std::vector<std::byte> out;
  out.reserve(10 + header.size() + a.data.size());
  for (unsigned char c : kMagic) out.push_back(std::byte{c});
  out.push_back(std::byte{1});
  out.push_back(std::byte{0});
  out.push_back(static_cast<std::byte>(header.size() & 0xff));
  out.push_back(static_cast<std::byte>(header.size() >> 8));
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  out.insert(out.end(), a.data.begin(), a.data.end());
  return out;
}

void write_npy(const std::string& path, const NpyArray& array) {
  internal::write_file_bytes("write_npy", path, serialize_npy(array));
}

namespace {
template <typename T>
NpyArray to_array(BasicView<const T> t, DType dtype) {
  if (!t.defined()) fail<ValueError>("write_npy", "tensor is undefined");
  NpyArray a;
  a.dtype = dtype;
  a.shape = t.shape();
  a.data.resize(static_cast<size_t>(t.numel()) * sizeof(T));
  size_t i = 0;
  for_each_offset(t, [&](int64_t o) {
    std::memcpy(a.data.data() + i, &t.data()[o], sizeof(T));
    i += sizeof(T);
  });
  return a;
}
}  // namespace

void write_npy(const std::string& path, ConstTensorView t) {
  write_npy(path, to_array(t, DType::kFloat32));
}
void write_npy(const std::string& path, ConstTensorViewD t) {
  write_npy(path, to_array(t, DType::kFloat64));
}

Tensor NpyArray::to_float() const {
  Tensor t(shape);
  convert_all(*this, t.data(), [](auto v) { return static_cast<float>(v); });
  return t;
}

TensorD NpyArray::to_double() const {
  TensorD t(shape);
  convert_all(*this, t.data(), [](auto v) { return static_cast<double>(v); });
  return t;
}

std::vector<int64_t> NpyArray::to_int64(const std::string& what) const {
  if (dtype == DType::kFloat32 || dtype == DType::kFloat64)
    fail<IoError>("NpyArray::to_int64", what, " has dtype ", dtype_name(dtype),
                  "; an integer array is expected");
  std::vector<int64_t> out(static_cast<size_t>(shape.numel()));
  convert_all(*this, out.data(), [](auto v) { return static_cast<int64_t>(v); });
  return out;
}

}  // namespace attn::io
