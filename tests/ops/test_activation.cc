// SPDX-License-Identifier: MIT
// ReLU and GELU through the op harness: fast against the double reference on odd sizes and strided
// views, the reference against finite differences, threads; and in-place use and error messages.
#include <cmath>
#include <string>

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
  // The tails, where Φ is a tiny number (x = -30: ~1e-198) or 1 minus one.
  Rng rng(seed);
  if (!small)
    cases.push_back({"(100,) in [-30, 30]", tensors(random_tensor<double>({100}, rng, 30.0))});
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

// docs/masks.md's policy for every op: NaN and Inf propagate as IEEE arithmetic does in the
// formula, never become numbers. GELU(-inf) = -inf · Φ(-inf) = -inf · 0 is NaN, as in PyTorch's erf
// form.
TEST(Activation, NonFiniteInputsPropagateAsTheReferenceDoes) {
  Context ctx;
  const std::vector<float> values = {NAN,     INFINITY, -INFINITY, -30.0f, 30.0f,  0.0f,
                                     -1e-30f, 88.0f,    -88.0f,    1e30f,  -1e30f, 3.0f,
                                     -3.0f,   0.5f,     -0.5f,     7.0f,   -7.0f};
  const Tensor x = Tensor::from_values(Shape{static_cast<int64_t>(values.size())}, values);
  for (bool gelu : {false, true}) {
    Tensor fast(x.shape()), ref(x.shape()), dfast(x.shape()), dref(x.shape());
    const Tensor g = Tensor::full(x.shape(), 1.0f);
    if (gelu) {
      ops::gelu_forward(x, fast, ctx), ops::reference::gelu_forward(x, ref, ctx);
      ops::gelu_backward(x, g, dfast, ctx), ops::reference::gelu_backward(x, g, dref, ctx);
    } else {
      ops::relu_forward(x, fast, ctx), ops::reference::relu_forward(x, ref, ctx);
      ops::relu_backward(x, g, dfast, ctx), ops::reference::relu_backward(x, g, dref, ctx);
    }
    for (int64_t i = 0; i < x.numel(); ++i) {
      SCOPED_TRACE(std::string(gelu ? "gelu" : "relu") +
                   " at x = " + std::to_string(values[static_cast<size_t>(i)]));
      for (auto [a, b] : {std::pair{fast(i), ref(i)}, {dfast(i), dref(i)}}) {
        ASSERT_EQ(std::isnan(a), std::isnan(b)) << a << " vs " << b;
        if (std::isnan(a)) continue;
        if (std::isinf(a) || std::isinf(b)) {
          EXPECT_EQ(a, b);
          continue;
        }
        EXPECT_NEAR(a, b, 4 * kEpsF32 * (1 + std::abs(double{b})));
      }
    }
  }
}

// GELU's rows are compiled per SIMD target, and their last lanes are a partial vector: on every
// target this machine runs, contiguous views at odd offsets (rows that start off any vector
// boundary) give the reference's result, forward and backward.
TEST(Activation, GeluOnEverySimdTargetAtOddOffsets) {
  const Context ctx;
  Rng rng(11);
  const Tensor base = random_tensor<float>(Shape{64}, rng, 3.0),
               g_base = random_tensor<float>(Shape{64}, rng);
  for (const std::string& target : ops::available_simd_targets()) {
    SCOPED_TRACE(target);
    ops::set_simd_target(target);
    for (int64_t start : {1, 3, 5}) {
      for (int64_t n : {1, 7, 17, 29}) {
        const ConstTensorView x = base.view().slice(0, start, start + n);
        const ConstTensorView g = g_base.view().slice(0, start, start + n);
        Tensor out_base(Shape{64}), dx_base(Shape{64});
        const TensorView out = out_base.view().slice(0, start, start + n);
        const TensorView dx = dx_base.view().slice(0, start, start + n);
        Tensor ref(Shape{n}), dref(Shape{n});
        ops::gelu_forward(x, out, ctx), ops::reference::gelu_forward(x, ref, ctx);
        ops::gelu_backward(x, g, dx, ctx), ops::reference::gelu_backward(x, g, dref, ctx);
        for (int64_t i = 0; i < n; ++i) {
          EXPECT_NEAR(out(i), ref(i), 4 * kEpsF32 * (1 + std::abs(double{ref(i)})));
          EXPECT_NEAR(dx(i), dref(i), 4 * kEpsF32 * (1 + std::abs(double{dref(i)})));
        }
      }
    }
  }
  ops::set_simd_target("");
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
