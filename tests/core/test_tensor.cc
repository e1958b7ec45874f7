// SPDX-License-Identifier: MIT
#include <cstdint>

#include "testing/testing.h"

namespace attn::testing {
namespace {

TEST(Shape, ValidatesAndPrints) {
  EXPECT_EQ(Shape({2, 3, 4}).numel(), 24);
  EXPECT_EQ(Shape({2, 3, 4}).str(), "(2, 3, 4)");
  EXPECT_EQ(Shape({5}).str(), "(5,)");
  EXPECT_EQ(Shape().numel(), 1);  // rank 0 holds one element, as in NumPy
  EXPECT_EQ(Shape({3, 0}).numel(), 0);
  ATTN_EXPECT_THROW_MSG(Shape({2, -1}), ShapeError, "dimension 1 is negative");
  ATTN_EXPECT_THROW_MSG(Shape({1, 2, 3, 4, 5, 6, 7}), ShapeError,
                        "rank 7 exceeds the maximum rank 6");
  ATTN_EXPECT_THROW_MSG(Shape({int64_t{1} << 40, int64_t{1} << 40}), ShapeError, "overflows int64");
}

TEST(Tensor, IsZeroedContiguousAndAligned) {
  for (int64_t n : {1, 3, 17, 1000}) {
    Tensor t(Shape{n, 3});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % 64, 0u);
    EXPECT_TRUE(t.view().is_contiguous());
    for (float x : t.values()) EXPECT_EQ(x, 0.0f);
  }
  Tensor empty(Shape{0, 4});
  EXPECT_TRUE(empty.defined());
  EXPECT_EQ(empty.numel(), 0);
  EXPECT_FALSE(Tensor().defined());
  const float values[] = {1, 2, 3, 4, 5, 6};
  const Tensor t = Tensor::from_values(Shape{2, 3}, values);
  EXPECT_EQ(t(1, 2), 6.0f);
  ATTN_EXPECT_THROW_MSG(Tensor::from_values(Shape{4, 2}, values), ShapeError,
                        "6 values given for shape (4, 2)");
}

TEST(TensorView, SliceSelectTransposePermute) {
  Tensor t(Shape{3, 4, 5});
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(i);
  const TensorView v = t.view();
  EXPECT_EQ(v(1, 2, 3), 1 * 20 + 2 * 5 + 3);
  const TensorView s = v.slice(1, 1, 4, 2);  // rows 1 and 3
  EXPECT_EQ(s.shape(), Shape({3, 2, 5}));
  EXPECT_EQ(s(2, 1, 4), 2 * 20 + 3 * 5 + 4);
  EXPECT_FALSE(s.is_contiguous());
  const TensorView sel = v.select(-1, 2);
  EXPECT_EQ(sel.shape(), Shape({3, 4}));
  EXPECT_EQ(sel(2, 3), 2 * 20 + 3 * 5 + 2);
  const TensorView tr = v.transpose(0, 2);
  EXPECT_EQ(tr.shape(), Shape({5, 4, 3}));
  EXPECT_EQ(tr(4, 1, 2), v(2, 1, 4));
  const TensorView p = v.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), Shape({5, 3, 4}));
  EXPECT_EQ(p(3, 2, 1), v(2, 1, 3));
  const TensorView u = v.unsqueeze(1);
  EXPECT_EQ(u.shape(), Shape({3, 1, 4, 5}));
  EXPECT_EQ(u(2, 0, 3, 4), v(2, 3, 4));
  EXPECT_EQ(v.unsqueeze(-1).shape(), Shape({3, 4, 5, 1}));
  EXPECT_EQ(v.reshape(Shape{12, 5})(7, 1), v(1, 3, 1));
  ATTN_EXPECT_THROW_MSG(v.slice(1, 2, 5), ShapeError, "range [2, 5) is invalid for dimension 1",
                        "(3, 4, 5)");
  ATTN_EXPECT_THROW_MSG(v.slice(0, 0, 1, 0), ShapeError, "step must be >= 1");
  ATTN_EXPECT_THROW_MSG(v.select(0, 3), ShapeError, "index 3 is out of range");
  ATTN_EXPECT_THROW_MSG(v.transpose(0, 3), ShapeError, "dimension 3 is out of range");
  ATTN_EXPECT_THROW_MSG(v.permute({0, 0, 1}), ShapeError, "appears twice");
  ATTN_EXPECT_THROW_MSG(v.reshape(Shape{7, 2}), ShapeError,
                        "cannot reshape (3, 4, 5) (60 elements)");
  ATTN_EXPECT_THROW_MSG(tr.reshape(Shape{60}), ShapeError, "not contiguous");
  ATTN_EXPECT_THROW_MSG(TensorView(nullptr, Shape{2}), ShapeError, "null data");
  ATTN_EXPECT_THROW_MSG(TensorView(t.data(), Shape{2}, Strides{-1}), ShapeError, "negative stride");
}

TEST(TensorView, CopyConvertsAndHonoursStrides) {
  Rng rng(1);
  const Tensor a = random_tensor<float>(Shape{3, 5, 2}, rng);
  const auto strided = strided_copy(a);
  EXPECT_FALSE(strided.view.is_contiguous());
  const TensorD d = TensorD::copy_of(strided.view);
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(d.data()[i], static_cast<double>(a.data()[i]));
  Tensor back(a.shape());
  copy(d.view(), back.view());
  EXPECT_TRUE(all_close(back, a, 0.0));
  Tensor wrong(Shape{3, 5});
  ATTN_EXPECT_THROW_MSG(copy(a.view(), wrong.view()), ShapeError, "src has shape (3, 5, 2)");
  Tensor t(Shape{10});
  ATTN_EXPECT_THROW_MSG(copy(t.view().slice(0, 0, 5), t.view().slice(0, 3, 8)), ValueError,
                        "overlap");
}

TEST(TensorView, OverlapAndDistinctness) {
  Tensor t(Shape{4, 6});
  const TensorView v = t.view();
  EXPECT_TRUE(may_overlap(v.slice(1, 0, 3), v.slice(1, 2, 5)));
  EXPECT_FALSE(may_overlap(v.slice(0, 0, 2), v.slice(0, 2, 4)));
  EXPECT_TRUE(has_distinct_elements(v));
  EXPECT_TRUE(has_distinct_elements(v.transpose(0, 1)));
  EXPECT_FALSE(has_distinct_elements(TensorView(t.data(), Shape{3, 3}, Strides{1, 1})));
  EXPECT_TRUE(has_distinct_elements(TensorView(t.data(), Shape{5, 1}, Strides{1, 0})));
}

}  // namespace
}  // namespace attn::testing

namespace attn {
namespace {
// The first NaN or ±Inf in row-major order, through contiguous and strided views, and the message
// front ends show for it.
TEST(TensorView, FirstNonFiniteFindsTheFirstBadIndexInRowMajorOrder) {
  Tensor t(Shape{3, 4});
  fill(t.view(), 1.0f);
  EXPECT_FALSE(first_non_finite(t.view()).has_value());
  t(2, 1) = std::numeric_limits<float>::infinity();
  t(1, 3) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(first_non_finite(t.view()), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(first_non_finite(t.view().transpose(0, 1)), (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(first_non_finite(t.view().slice(0, 0, 1)).has_value());
  try {
    check_finite("f", "x", t.view().transpose(0, 1), "; hint");
    ADD_FAILURE() << "no error";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "f: x (shape (4, 3)) holds inf at [1, 2]; hint");
  }
  TensorD d(Shape{2});
  d(1) = -std::numeric_limits<double>::infinity();
  EXPECT_THROW(check_finite("f", "d", d.view()), ValueError);
  EXPECT_NO_THROW(check_finite("f", "d", d.view(), "", /*allow_negative_infinity=*/true));
  t(0, 0) = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(first_non_finite(t.view(), true), (std::vector<int64_t>{1, 3}));
}
}  // namespace
}  // namespace attn

namespace attn::testing {
namespace {

float bits_to_float(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// bf16 rounds to nearest even, like PyTorch's .to(torch.bfloat16) and vcvtneps2bf16.
TEST(Bf16, RoundsToNearestEvenAndKeepsSpecialValues) {
  EXPECT_EQ(bf16(1.0f).bits, 0x3f80);
  EXPECT_EQ(bf16(-2.0f).bits, 0xc000);
  // Halfway between 1 and 1 + 2^-7: to the even one, 1. Halfway between 1 + 2^-7 and 1 + 2^-6:
  // to 1 + 2^-6 (mantissa ...10). Just past halfway: up.
  EXPECT_EQ(bf16(bits_to_float(0x3f808000)).bits, 0x3f80);
  EXPECT_EQ(bf16(bits_to_float(0x3f818000)).bits, 0x3f82);
  EXPECT_EQ(bf16(bits_to_float(0x3f808001)).bits, 0x3f81);
  EXPECT_EQ(bf16(bits_to_float(0x3f807fff)).bits, 0x3f80);
  EXPECT_EQ(bf16(std::numeric_limits<float>::infinity()).bits, 0x7f80);
  EXPECT_EQ(bf16(-std::numeric_limits<float>::infinity()).bits, 0xff80);
  EXPECT_EQ(bf16(std::numeric_limits<float>::max()).bits, 0x7f80);  // past the largest bf16
  EXPECT_EQ(bf16(bits_to_float(0x7f7f0000)).bits, 0x7f7f);          // the largest bf16 itself
  EXPECT_EQ(bf16(-0.0f).bits, 0x8000);
  EXPECT_EQ(bf16(bits_to_float(0x00010000)).bits, 0x0001);  // a denormal stays
  // NaN stays NaN, quiet, even one whose payload is only in the low bits (truncation alone would
  // give inf).
  const bf16 nan_low(bits_to_float(0x7f800001));
  EXPECT_TRUE(std::isnan(static_cast<float>(nan_low)));
  EXPECT_EQ(nan_low.bits & 0x0040, 0x0040);
  EXPECT_TRUE(std::isnan(static_cast<float>(bf16(std::nanf("")))));
  // Widening is exact.
  EXPECT_EQ(static_cast<float>(bf16::from_bits(0x3f81)), 1.0f + 1.0f / 128.0f);
  EXPECT_EQ(static_cast<double>(bf16::from_bits(0xc2c8)), -100.0);
}

TEST(Bf16, TensorsConvertThroughCopyOfAndCopy) {
  const Tensor f = Tensor::from_values(
      Shape{2, 3}, std::vector<float>{1.0f, 1.00390625f, -3.5f, 1e-3f, 65504.0f, 0.1f});
  const TensorBF16 h = TensorBF16::copy_of(f.view());
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(h.data()[i].bits, bf16(f.data()[i]).bits) << i;
  const Tensor back = Tensor::copy_of(h.view());
  for (int64_t i = 0; i < 6; ++i)
    EXPECT_NEAR(back.data()[i], f.data()[i], std::abs(f.data()[i]) / 256.0f) << i;
  EXPECT_EQ(back(0, 1), 1.0f);  // the tie 1 + 2^-8 went to even
  const TensorD d = TensorD::copy_of(h.view());
  EXPECT_EQ(d(1, 2), static_cast<double>(back(1, 2)));
  const TensorBF16 from_double = TensorBF16::copy_of(d.view());
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(from_double.data()[i].bits, h.data()[i].bits);
  // Into a strided view, and a shape mismatch rejected.
  TensorBF16 wide(Shape{2, 6});
  copy(f.view(), wide.view().slice(1, 0, 6, 2));
  EXPECT_EQ(wide(1, 4).bits, h(1, 2).bits);
  EXPECT_EQ(wide(1, 5).bits, 0);
  EXPECT_THROW(copy(f.view(), wide.view()), ShapeError);
}

}  // namespace
}  // namespace attn::testing
