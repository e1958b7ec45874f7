// SPDX-License-Identifier: MIT
// .npy: files written by NumPy itself (tests/golden/npy), round trips, and malformed files.
#include <cstring>
#include <filesystem>

#include "testing/testing.h"

namespace attn::testing {
namespace {

using io::DType;

std::vector<std::byte> bytes_of(const std::string& s) {
  std::vector<std::byte> b(s.size());
  if (!s.empty()) std::memcpy(b.data(), s.data(), s.size());
  return b;
}

TEST(Npy, ReadsWhatNumPyWrote) {
  const auto f4 = io::read_npy(golden_path("npy/f4_2x3.npy"));
  EXPECT_EQ(f4.dtype, DType::kFloat32);
  EXPECT_EQ(f4.shape, Shape({2, 3}));
  const Tensor t = f4.to_float();
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(t.data()[i], 0.5f * static_cast<float>(i));

  const TensorD f8 = io::read_npy(golden_path("npy/f8_4.npy")).to_double();
  EXPECT_EQ(f8.shape(), Shape({4}));
  EXPECT_EQ(f8(1), -2.25);
  EXPECT_EQ(f8(2), 1e300);
  EXPECT_TRUE(std::signbit(f8(3)));

  EXPECT_EQ(io::read_npy(golden_path("npy/i4_2x2.npy")).to_int64(),
            (std::vector<int64_t>{1, -2, 3, 2147483647}));
  EXPECT_EQ(io::read_npy(golden_path("npy/i8_3.npy")).to_int64(),
            (std::vector<int64_t>{0, -9007199254740993, 42}));
  const auto b = io::read_npy(golden_path("npy/bool_2x2.npy"));
  EXPECT_EQ(b.dtype, DType::kBool);
  EXPECT_EQ(b.to_int64(), (std::vector<int64_t>{1, 0, 0, 1}));
  const auto scalar = io::read_npy(golden_path("npy/f4_scalar.npy"));
  EXPECT_EQ(scalar.shape.rank(), 0);
  EXPECT_EQ(scalar.to_float().data()[0], 3.25f);
  EXPECT_EQ(io::read_npy(golden_path("npy/f4_empty_0x3.npy")).shape, Shape({0, 3}));
  EXPECT_EQ(io::read_npy(golden_path("npy/f4_v2_2x2.npy")).to_float()(1, 1), 4.0f);
}

// np.save writes a transposed array in Fortran order, and '>f4' where the array is big-endian:
// both are read into C-order, native values (they were refused).
TEST(Npy, ReadsFortranOrderAndBigEndian) {
  const auto fortran = io::read_npy(golden_path("npy/f4_fortran_2x3.npy"));
  EXPECT_EQ(fortran.shape, Shape({2, 3}));
  const Tensor f = fortran.to_float();
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(f.data()[i], static_cast<float>(i)) << i;
  const Tensor big = io::read_npy(golden_path("npy/f4_bigendian_3.npy")).to_float();
  EXPECT_EQ(big.shape(), Shape({3}));
  for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(big.data()[i], static_cast<float>(i));
  // A rank-3 Fortran array, built by hand: element (i, j, k) = 100 i + 10 j + k.
  const int64_t d0 = 2, d1 = 3, d2 = 4;
  std::string header = "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3, 4), }";
  header.append(118 - header.size(), ' ');
  header += '\n';
  std::string file =
      std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header;
  for (int64_t k = 0; k < d2; ++k)
    for (int64_t j = 0; j < d1; ++j)
      for (int64_t i = 0; i < d0; ++i) {
        const auto v = static_cast<int32_t>(100 * i + 10 * j + k);
        file.append(reinterpret_cast<const char*>(&v), sizeof v);
      }
  const auto a = io::parse_npy(bytes_of(file), "hand-made");
  const auto values = a.to_int64();
  for (int64_t i = 0, c = 0; i < d0; ++i)
    for (int64_t j = 0; j < d1; ++j)
      for (int64_t k = 0; k < d2; ++k, ++c)
        EXPECT_EQ(values[static_cast<size_t>(c)], 100 * i + 10 * j + k) << i << j << k;
}

TEST(Npy, RejectsWhatItDoesNotSupportWithTheReason) {
  ATTN_EXPECT_THROW_MSG(io::read_npy(golden_path("npy/u2_3.npy")), IoError,
                        "unsupported dtype '<u2'");
  ATTN_EXPECT_THROW_MSG(io::read_npy("/nonexistent/x.npy"), IoError,
                        "cannot open '/nonexistent/x.npy'");
  ATTN_EXPECT_THROW_MSG(io::read_npy(golden_path("npy/f4_2x3.npy")).to_int64("key lengths"),
                        IoError, "key lengths has dtype float32");
}

TEST(Npy, RoundTripsEveryDtypeAndStridedTensors) {
  const std::string dir = ::testing::TempDir();
  Rng rng(3);
  const Tensor t = random_tensor<float>(Shape{3, 4, 5}, rng);
  const auto strided = strided_copy(t);
  io::write_npy(dir + "/t.npy", strided.view);
  EXPECT_TRUE(all_close(io::read_npy(dir + "/t.npy").to_float(), t, 0.0));
  const TensorD d = random_tensor<double>(Shape{7}, rng);
  io::write_npy(dir + "/d.npy", d.view());
  EXPECT_TRUE(all_close(io::read_npy(dir + "/d.npy").to_double(), d, 0.0));
  for (DType dt : {DType::kInt32, DType::kInt64, DType::kBool}) {
    io::NpyArray a;
    a.dtype = dt;
    a.shape = Shape{2, 2};
    a.data.assign(static_cast<size_t>(4 * io::dtype_size(dt)), std::byte{0});
    a.data[0] = std::byte{1};
    const auto back = io::parse_npy(io::serialize_npy(a));
    EXPECT_EQ(back.dtype, dt);
    EXPECT_EQ(back.to_int64(), (std::vector<int64_t>{1, 0, 0, 0}));
  }
  // Data starts 64-byte aligned, as NumPy writes it.
  const auto bytes = io::serialize_npy(io::read_npy(dir + "/d.npy"));
  EXPECT_EQ((bytes.size() - 7 * 8) % 64, 0u);
}

TEST(Npy, RejectsMalformedFiles) {
  const std::string magic = std::string("\x93NUMPY\x01\x00", 8);
  auto v1 = [&](const std::string& header, const std::string& data = "") {
    std::string h = header;
    std::string len{static_cast<char>(h.size() & 0xff), static_cast<char>(h.size() >> 8)};
    return bytes_of(magic + len + h + data);
  };
  const std::string ok_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
  const std::string eight_bytes(8, '\0');
  EXPECT_NO_THROW(io::parse_npy(v1(ok_header, eight_bytes)));
  struct Bad {
    std::vector<std::byte> bytes;
    const char* fragment;
  };
  const std::vector<Bad> cases = {
      {bytes_of(""), "too short"},
      {bytes_of("GIF89a0123456789"), "bad magic"},
      {bytes_of(std::string("\x93NUMPY\x09\x00\x10\x00", 10) + std::string(16, ' ')),
       "format version 9"},
      {bytes_of(magic + std::string("\xff\x00", 2) + "{}"), "runs past the end"},
      {v1(ok_header, std::string(7, '\0')), "needs 8 data bytes but the file has 7"},
      {v1(ok_header, std::string(9, '\0')), "needs 8 data bytes but the file has 9"},
      {v1("{'descr': '<f4', 'shape': (2,), }", eight_bytes), "lacks one of"},
      {v1("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", eight_bytes),
       "True or False"},
      {v1("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", eight_bytes),
       "non-negative integer"},
      {v1("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }"),
       "overflows int64"},
      {v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2147483648, 2147483648), }"),
       "needs too many"},
      {v1("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"),
       "overflows int64"},
      {v1("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1), }"), "maximum rank"},
      {v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", eight_bytes),
       "unexpected header key"},
      {v1("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", eight_bytes),
       "duplicate"},
      {v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) } trailing", eight_bytes),
       "trailing characters"},
      {v1("{'descr: '<f4'}"), "malformed header"},
      {v1("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", std::string("\x01\x07", 2)),
       "other than 0 or 1"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.fragment);
    ATTN_EXPECT_THROW_MSG(io::parse_npy(c.bytes, "bad.npy"), IoError, "read_npy", "bad.npy",
                          c.fragment);
  }
}

}  // namespace
}  // namespace attn::testing
