// SPDX-License-Identifier: MIT
#include <cmath>

#include "ops/op_specs.h"

namespace attn::testing {
namespace {

TEST(SoftmaxReference, RowsSumToOneAndMatchTheDefinition) {
  Rng rng(1);
  const TensorD x = random_tensor<double>(Shape{2, 3, 7}, rng, 3.0);
  TensorD y(x.shape());
  Context ctx;
  ops::reference::softmax_forward(x.view(), y.view(), ctx);
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 3; ++b) {
      double z = 0, sum = 0;
      for (int64_t d = 0; d < 7; ++d) z += std::exp(x(a, b, d));
      for (int64_t d = 0; d < 7; ++d) {
        EXPECT_NEAR(y(a, b, d), std::exp(x(a, b, d)) / z, 1e-15);
        sum += y(a, b, d);
      }
      EXPECT_NEAR(sum, 1.0, 1e-15);
    }
}

TEST(SoftmaxReference, HandlesHugeLogitsMaskedEntriesAndEmptyRows) {
  const double inf = kInfinity;
  const double values[] = {1e4, 1e4 - 1, -inf, -inf, -inf, -inf};
  const TensorD x = TensorD::from_values(Shape{2, 3}, values);
  TensorD y(x.shape());
  Context ctx;
  ops::reference::softmax_forward(x.view(), y.view(), ctx);
  EXPECT_NEAR(y(0, 0), 1.0 / (1.0 + std::exp(-1.0)), 1e-15);
  EXPECT_EQ(y(0, 2), 0.0);
  for (int64_t d = 0; d < 3; ++d) EXPECT_EQ(y(1, d), 0.0);  // all -inf: zeros, not NaN
}

std::vector<OpCase> softmax_cases(bool small) {
  std::vector<OpCase> cases;
  uint64_t seed = 20;
  const std::vector<Shape> shapes =
      small ? std::vector<Shape>{{3, 5}, {2, 2, 3}}
            : std::vector<Shape>{{1, 1},  {3, 5},   {2, 7, 15}, {16, 16}, {5, 17},
                                 {3, 64}, {2, 129}, {40, 1000}, {700, 33}};
  for (const Shape& shape : shapes) {
    Rng rng(seed++);
    TensorD x = random_tensor<double>(shape, rng, 4.0);
    if (!small && x.numel() > 4) {  // masked entries and one fully masked row
      for (int64_t i = 0; i < x.numel(); i += 7) x.data()[i] = -kInfinity;
      for (int64_t d = 0; d < shape[shape.rank() - 1]; ++d) x.data()[d] = -kInfinity;
    }
    cases.push_back({shape.str() + (small ? "" : " with -inf"), tensors(x)});
  }
  return cases;
}

TEST(Softmax, FastMatchesReference) {
  check_forward(softmax_spec(), softmax_cases(false));
  check_backward(softmax_spec(), softmax_cases(false));
}
TEST(Softmax, ReferenceBackwardMatchesFiniteDifferences) {
  check_gradients(softmax_spec(), softmax_cases(true), 1e-9, 1e-7);
}
TEST(Softmax, SameResultForOneAndThreeThreads) {
  check_threads(softmax_spec(), softmax_cases(false));
}

TEST(Softmax, FastAndReferenceRejectBadShapesAlike) {
  Context ctx;
  Tensor x(Shape{2, 3}), y(Shape{3, 2});
  ATTN_EXPECT_THROW_MSG(ops::reference::softmax_forward(x, y, ctx), ShapeError, "softmax_forward",
                        "out has shape (3, 2)");
  ATTN_EXPECT_THROW_MSG(ops::reference::softmax_forward(x, x, ctx), ValueError, "overlaps");
  ATTN_EXPECT_THROW_MSG(ops::reference::softmax_backward(x, y, x, ctx), ShapeError,
                        "softmax_backward", "dout");
  ATTN_EXPECT_THROW_MSG(ops::softmax_forward(x, y, ctx), ShapeError, "softmax_forward",
                        "out has shape (3, 2)");
  ATTN_EXPECT_THROW_MSG(ops::softmax_forward(x, x, ctx), ValueError, "overlaps");
  ATTN_EXPECT_THROW_MSG(ops::softmax_backward(x, y, x, ctx), ShapeError, "softmax_backward",
                        "dout");
}

}  // namespace
}  // namespace attn::testing
