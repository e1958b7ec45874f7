// SPDX-License-Identifier: MIT
// The OpenBLAS linear layer through the op harness: against the reference on odd sizes and strided
// views, the reference against finite differences, 1 vs 3 threads; and its error messages.
#include <array>

#include "ops/op_specs.h"

namespace attn::testing {
namespace {

std::vector<OpCase> linear_cases(bool small) {
  std::vector<OpCase> cases;
  uint64_t seed = 1;
  const std::vector<std::array<int64_t, 3>> big = {{1, 1, 1},   {3, 7, 5}, {17, 16, 15},
                                                   {33, 65, 9}, {0, 4, 3}, {4, 0, 3}};
  const std::vector<std::array<int64_t, 3>> tiny = {{1, 1, 1}, {3, 4, 2}, {2, 3, 5}};
  for (const auto& [N, IN, OUT] : small ? tiny : big)
    for (bool bias : {true, false}) {
      Rng rng(seed++);
      cases.push_back({"N=" + std::to_string(N) + " IN=" + std::to_string(IN) +
                           " OUT=" + std::to_string(OUT) + (bias ? " bias" : ""),
                       tensors(random_tensor<double>(Shape{N, IN}, rng),
                               random_tensor<double>(Shape{OUT, IN}, rng),
                               bias ? random_tensor<double>(Shape{OUT}, rng) : TensorD())});
    }
  return cases;
}

TEST(Linear, FastMatchesReferenceOnOddSizesAndStridedViews) {
  check_forward(linear_spec(), linear_cases(false));
  check_backward(linear_spec(), linear_cases(false));
}
TEST(Linear, ReferenceBackwardMatchesFiniteDifferences) {
  check_gradients(linear_spec(), linear_cases(true));
}
TEST(Linear, SameResultForOneAndThreeThreads) { check_threads(linear_spec(), linear_cases(false)); }

TEST(Linear, RejectsBadShapes) {
  Context ctx;
  Tensor x(Shape{4, 3}), w(Shape{5, 2}), out(Shape{4, 5});
  ATTN_EXPECT_THROW_MSG(ops::linear_forward(x, w, {}, out, ctx), ShapeError, "linear_forward",
                        "w has shape (5, 2) (OUT, IN) but x has shape (4, 3)");
  Tensor w2(Shape{5, 3}), b(Shape{4});
  ATTN_EXPECT_THROW_MSG(ops::linear_forward(x, w2, b, out, ctx), ShapeError, "bias has shape (4,)");
  Tensor dout(Shape{4, 6});
  ATTN_EXPECT_THROW_MSG(ops::linear_backward(x, w2, dout, {}, {}, {}, ctx), ShapeError,
                        "linear_backward", "dout has shape (4, 6)");
}

}  // namespace
}  // namespace attn::testing
