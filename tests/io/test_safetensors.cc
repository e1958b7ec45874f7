// SPDX-License-Identifier: MIT
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "attn/io/safetensors.h"
#include "testing/testing.h"

namespace attn::io {
namespace {

using attn::testing::golden_path;

std::vector<std::byte> file_with_header(const std::string& header, size_t data_bytes) {
  std::vector<std::byte> out;
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<std::byte>((header.size() >> (8 * i)) & 0xff));
  for (char c : header) out.push_back(static_cast<std::byte>(c));
  out.resize(out.size() + data_bytes);
  return out;
}

void expect_rejected(const std::vector<std::byte>& bytes, const std::string& needle) {
  try {
    (void)parse_safetensors(bytes, "case.safetensors");
    ADD_FAILURE() << "accepted a malformed file (expected: " << needle << ")";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("case.safetensors"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, RoundTripKeepsNamesShapesValuesAndMetadata) {
  Rng rng(3);
  const Tensor a = attn::testing::random_tensor<float>(Shape{3, 4}, rng);
  const Tensor b = attn::testing::random_tensor<float>(Shape{5}, rng);
  const Tensor empty(Shape{0, 2});
  const auto bytes = serialize_safetensors(
      {{"layers.0.w", a.view().transpose(0, 1)}, {"b", b}, {"e", empty}}, {{"format", "pt"}});
  const auto f = parse_safetensors(bytes);
  ASSERT_EQ(f.tensors.size(), 3u);
  EXPECT_EQ(f.metadata.at("format"), "pt");
  const Tensor& w = f.tensors.at("layers.0.w");
  ASSERT_EQ(w.shape(), (Shape{4, 3}));
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_EQ(w(i, j), a(j, i));
  EXPECT_EQ(f.tensors.at("b").shape(), Shape{5});
  EXPECT_EQ(f.tensors.at("e").shape(), (Shape{0, 2}));
  // The data starts 8-byte aligned, as the Python writer's files do.
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
}

TEST(Safetensors, ConvertsF16Bf16AndF64WrittenByPython) {
  const auto f = read_safetensors(golden_path("nn/dtypes.safetensors"));
  auto bits_equal = [](const Tensor& x, const Tensor& y) {
    return x.shape() == y.shape() &&
           std::memcmp(x.data(), y.data(), static_cast<size_t>(x.numel()) * 4) == 0;
  };
  EXPECT_TRUE(
      bits_equal(f.tensors.at("f16"), f.tensors.at("f16_as_f32")));  // incl. inf, -0, a subnormal
  EXPECT_TRUE(bits_equal(f.tensors.at("bf16"), f.tensors.at("bf16_as_f32")));
  EXPECT_EQ(f.tensors.at("f64").shape(), (Shape{3, 5}));
  EXPECT_EQ(f.tensors.at("scalar").shape().rank(), 0);
  EXPECT_EQ(f.tensors.at("scalar").data()[0], 2.5f);
  EXPECT_EQ(f.metadata.at("made_by"), "gen_nn_golden.py");
}

TEST(Safetensors, RejectsMalformedFilesWithTheReason) {
  expect_rejected({}, "shorter than the 8-byte header length");
  auto short_header = file_with_header("{}", 0);
  short_header[0] = std::byte{100};  // claims 100 header bytes, has 2
  expect_rejected(short_header, "runs past the end");
  auto huge = file_with_header("{}", 0);
  for (int i = 0; i < 8; ++i)
    huge[static_cast<size_t>(i)] = static_cast<std::byte>((200'000'000ull >> (8 * i)) & 0xff);
  expect_rejected(huge, "exceeds 100 MB");
  expect_rejected(file_with_header("{\"a\": ", 0), "not valid JSON");
  expect_rejected(file_with_header("[1, 2]", 0), "not a JSON object");
  expect_rejected(
      file_with_header(R"({"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})", 8),
      "dtype I64 is not supported");
  expect_rejected(
      file_with_header(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4),
      "non-negative");
  expect_rejected(
      file_with_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", 4),
      "holds 4 bytes but shape (2,) of F32 needs 2 x 4");
  expect_rejected(
      file_with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 4),
      "begin > end");
  expect_rejected(file_with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                       "b": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}})",
                                   6),
                  "(overlap)");
  expect_rejected(
      file_with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8),
      "(gap)");
  expect_rejected(
      file_with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 12),
      "cover 4 data bytes but the file has 12");
  expect_rejected(
      file_with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 2),
      "cover 4 data bytes but the file has 2");
  expect_rejected(file_with_header(R"({"a": {"dtype": "F32", "shape": [1]}})", 0),
                  "missing \"data_offsets\"");
  expect_rejected(
      file_with_header(
          R"({"a": {"dtype": "F32", "shape": [1,1,1,1,1,1,1], "data_offsets": [0, 4]}})", 4),
      "rank 7");
  expect_rejected(
      file_with_header(
          R"({"a": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 4]}})",
          4),
      "bad shape");
  expect_rejected(file_with_header(R"({"__metadata__": {"k": 1}})", 0), "is not a string");
}

TEST(Safetensors, WriterRejectsBadNamesAndReaderNamesMissingFiles) {
  const Tensor t(Shape{1});
  EXPECT_THROW((void)serialize_safetensors({{"", t}}), ValueError);
  EXPECT_THROW((void)serialize_safetensors({{"__metadata__", t}}), ValueError);
  EXPECT_THROW((void)serialize_safetensors({{"a", t}, {"a", t}}), ValueError);
  ATTN_EXPECT_THROW_MSG(read_safetensors("/nonexistent/w.safetensors"), IoError,
                        "cannot open '/nonexistent/w.safetensors'");
}

}  // namespace
}  // namespace attn::io
