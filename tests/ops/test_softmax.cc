// SPDX-License-Identifier: MIT
#include <cmath>

#include "testing/testing.h"

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

TEST(SoftmaxReference, BackwardMatchesFiniteDifferencesOnStridedViews) {
  Rng rng(2);
  TensorD x = random_tensor<double>(Shape{3, 5}, rng);
  const TensorD g = random_tensor<double>(Shape{3, 5}, rng);
  Context ctx;
  auto forward = [&](ConstTensorViewD in) {
    TensorD y(in.shape());
    ops::reference::softmax_forward(in, y.view(), ctx);
    return y;
  };
  const TensorD y = forward(x.view());
  auto ys = strided_copy(y), gs = strided_copy(g);
  TensorD dx = TensorD::full(x.shape(), 1.0);  // accumulates on top of 1
  auto dxs = strided_copy(dx);
  ops::reference::softmax_backward(ys.view, gs.view, dxs.view, ctx);
  TensorD num = numeric_gradient([&] { return dot<double, double>(forward(x.view()).view(), g.view()); }, x.view());
  for (auto& v : num.values()) v += 1.0;
  EXPECT_TRUE((all_close<double, double>(dxs.view, num.view(), 1e-9)));
}

TEST(SoftmaxReference, RejectsBadShapes) {
  Context ctx;
  Tensor x(Shape{2, 3}), y(Shape{3, 2});
  ATTN_EXPECT_THROW_MSG(ops::reference::softmax_forward(x, y, ctx), ShapeError, "softmax_forward",
                        "out has shape (3, 2)");
  ATTN_EXPECT_THROW_MSG(ops::reference::softmax_forward(x, x, ctx), ValueError, "overlaps");
  ATTN_EXPECT_THROW_MSG(ops::reference::softmax_backward(x, y, x, ctx), ShapeError, "softmax_backward", "dout");
}

}  // namespace
}  // namespace attn::testing
