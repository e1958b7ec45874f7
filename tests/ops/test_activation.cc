// SPDX-License-Identifier: MIT
// ReLU and GELU through the op harness: fast against the double reference on odd sizes and strided
// views, the reference against finite differences, threads; and in-place use and error messages.
#include "ops/op_specs.h"

namespace attn::testing {
namespace {

std::vector<OpCase> activation_cases(bool small) {
  std::vector<OpCase> cases;
  uint64_t seed = 30;
  const std::vector<Shape> shapes =
      small ? std::vector<Shape>{{7}, {2, 3}}
            : std::vector<Shape>{{1}, {15}, {16}, {17}, {3, 33}, {2, 5, 7}, {129, 65}};
  for (const Shape& shape : shapes) {
    Rng rng(seed++);
    cases.push_back({shape.str(), tensors(random_tensor<double>(shape, rng, 3.0))});
  }
  return cases;
}

TEST(Activation, FastMatchesReference) {
  for (bool gelu : {false, true}) {
    check_forward(activation_spec(gelu), activation_cases(false));
    check_backward(activation_spec(gelu), activation_cases(false));
  }
}
TEST(Activation, ReferenceBackwardMatchesFiniteDifferences) {
  for (bool gelu : {false, true})
    check_gradients(activation_spec(gelu), activation_cases(true), 1e-8, 1e-7);
}
TEST(Activation, SameResultForOneAndThreeThreads) {
  for (bool gelu : {false, true}) check_threads(activation_spec(gelu), activation_cases(false));
}

TEST(Activation, InPlaceAndBadArguments) {
  Context ctx;
  Rng rng(3);
  Tensor x = random_tensor<float>(Shape{4, 5}, rng), y(Shape{4, 5});
  ops::gelu_forward(x, y, ctx);
  ops::gelu_forward(x, x, ctx);  // out may be the input itself
  EXPECT_TRUE(all_close(x, y, 0.0));
  Tensor bad(Shape{5, 4});
  ATTN_EXPECT_THROW_MSG(ops::relu_forward(x, bad, ctx), ShapeError, "relu_forward",
                        "out has shape (5, 4)");
  ATTN_EXPECT_THROW_MSG(ops::reference::relu_forward(x, bad, ctx), ShapeError, "relu_forward",
                        "out has shape (5, 4)");
  ATTN_EXPECT_THROW_MSG(ops::gelu_backward(x, bad, y, ctx), ShapeError, "gelu_backward",
                        "dout has shape (5, 4)");
  ATTN_EXPECT_THROW_MSG(ops::reference::gelu_backward(x, bad, y, ctx), ShapeError, "gelu_backward",
                        "dout");
  ATTN_EXPECT_THROW_MSG(ops::relu_backward(x, y, x, ctx), ValueError, "relu_backward", "overlaps");
}

}  // namespace
}  // namespace attn::testing
