// SPDX-License-Identifier: MIT
// The IDX reader: the bundled seeds, gzip'd and plain alike; every header field validated; corrupt
// and truncated gzip streams rejected; and the real Fashion-MNIST files when Debian's package is
// installed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "attn/io/idx.h"
#include "testing/testing.h"

namespace attn::io {
namespace {

using attn::testing::golden_path;

std::vector<std::byte> bytes_of(std::initializer_list<int> v) {
  std::vector<std::byte> b;
  for (int x : v) b.push_back(static_cast<std::byte>(x));
  return b;
}

TEST(Idx, ReadsPlainAndGzipFilesAlike) {
  const IdxArray plain = read_idx(golden_path("idx/images-3x4x5-idx3-ubyte"));
  const IdxArray gz = read_idx(golden_path("idx/images-3x4x5-idx3-ubyte.gz"));
  EXPECT_EQ(plain.shape, (Shape{3, 4, 5}));
  EXPECT_EQ(gz.shape, plain.shape);
  EXPECT_EQ(gz.data, plain.data);
  EXPECT_EQ(plain.data[59], 59);
  const IdxArray labels = read_idx(golden_path("idx/labels-3-idx1-ubyte.gz"));
  EXPECT_EQ(labels.shape, (Shape{3}));
  EXPECT_EQ(labels.data, (std::vector<uint8_t>{7, 0, 9}));
}

TEST(Idx, RejectsMalformedHeaders) {
  ATTN_EXPECT_THROW_MSG(parse_idx(bytes_of({0, 0, 8}), "f"), IoError, "parse_idx", "'f'",
                        "fewer than the 4-byte magic");
  ATTN_EXPECT_THROW_MSG(parse_idx(bytes_of({1, 0, 8, 1, 0, 0, 0, 1, 5}), "f"), IoError,
                        "two zero bytes");
  ATTN_EXPECT_THROW_MSG(parse_idx(bytes_of({0, 0, 0x0d, 1, 0, 0, 0, 1, 5, 5, 5, 5}), "f"), IoError,
                        "element type 0x0d is not supported");
  ATTN_EXPECT_THROW_MSG(parse_idx(bytes_of({0, 0, 8, 0}), "f"), IoError, "0 dimensions");
  ATTN_EXPECT_THROW_MSG(parse_idx(bytes_of({0, 0, 8, 2, 0, 0, 0, 2}), "f"), IoError,
                        "truncated", "fewer than its 12-byte header");
  ATTN_EXPECT_THROW_MSG(parse_idx(bytes_of({0, 0, 8, 1, 0, 0, 0, 3, 1, 2}), "f"), IoError,
                        "promises 3 elements but 2 bytes", "(truncated)");
  ATTN_EXPECT_THROW_MSG(parse_idx(bytes_of({0, 0, 8, 1, 0, 0, 0, 1, 1, 2}), "f"), IoError,
                        "(trailing bytes)");
  ATTN_EXPECT_THROW_MSG(parse_idx(bytes_of({0, 0, 8, 1, 0x80, 0, 0, 0}), "f"), IoError,
                        "more than 2^31 - 1");
  ATTN_EXPECT_THROW_MSG(
      parse_idx(bytes_of({0, 0, 8, 3, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff,
                          0xff, 0xff}),
                "f"),
      IoError, "the dimensions overflow");
}

TEST(Idx, RejectsBadGzipStreams) {
  std::ifstream in(golden_path("idx/images-3x4x5-idx3-ubyte.gz"), std::ios::binary);
  std::vector<std::byte> gz;
  for (char c; in.get(c);) gz.push_back(static_cast<std::byte>(c));
  ASSERT_GT(gz.size(), 20u);
  const std::vector<std::byte> truncated(gz.begin(), gz.end() - 12);
  ATTN_EXPECT_THROW_MSG(gunzip(truncated, "t.gz"), IoError, "gunzip", "'t.gz'", "truncated");
  std::vector<std::byte> corrupt = gz;
  corrupt[12] ^= std::byte{0xff};
  EXPECT_THROW(gunzip(corrupt, "c.gz"), IoError);
  ATTN_EXPECT_THROW_MSG(gunzip(gz, "big.gz", 10), IoError, "inflates to more than 10 bytes");
  std::vector<std::byte> twice = gz;  // two members concatenated, as gzip allows
  twice.insert(twice.end(), gz.begin(), gz.end());
  EXPECT_EQ(gunzip(twice, "twice.gz").size(), 2 * gunzip(gz, "once.gz").size());
  std::vector<std::byte> garbage = gz;
  garbage.push_back(std::byte{0x42});
  EXPECT_THROW(gunzip(garbage, "g.gz"), IoError);
  ATTN_EXPECT_THROW_MSG(read_idx("/nonexistent/x.gz"), IoError, "read_idx", "/nonexistent/x.gz");
}

TEST(Idx, ReadsFashionMnistFromTheDebianPackage) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(dir + "/t10k-labels-idx1-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const IdxArray images = read_idx(dir + "/t10k-images-idx3-ubyte.gz");
  const IdxArray labels = read_idx(dir + "/t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(images.shape, (Shape{10000, 28, 28}));
  EXPECT_EQ(labels.shape, (Shape{10000}));
  std::vector<int> counts(10, 0);
  for (uint8_t y : labels.data) ++counts.at(y);
  for (int c : counts) EXPECT_EQ(c, 1000);  // the test set is balanced
}

}  // namespace
}  // namespace attn::io
