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
