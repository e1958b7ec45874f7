// SPDX-License-Identifier: MIT
// Layer norm: the reference's definition, then the fast path through the op harness (sizes around
// vector widths, with and without the affine parameters, strided views, threads, finite
// differences).
#include <cmath>

#include "ops/op_specs.h"

namespace attn::testing {
namespace {

struct LnOut {
  TensorD out, mean, rstd;
};

LnOut ln(ConstTensorViewD x, ConstTensorViewD w, ConstTensorViewD b, double eps = 1e-5) {
  Context ctx;
  LnOut r{TensorD(x.shape()), TensorD(Shape{x.dim(0), x.dim(1)}),
          TensorD(Shape{x.dim(0), x.dim(1)})};
  ops::reference::layer_norm_forward(x, w, b, eps, r.out.view(), r.mean.view(), r.rstd.view(), ctx);
  return r;
}

TEST(LayerNormReference, NormalisesEachRow) {
  Rng rng(3);
  const TensorD x = random_tensor<double>(Shape{2, 3, 6}, rng, 4.0);
  const LnOut r = ln(x.view(), {}, {});
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 3; ++b) {
      double m = 0, v = 0;
      for (int64_t c = 0; c < 6; ++c) m += r.out(a, b, c);
      for (int64_t c = 0; c < 6; ++c) v += r.out(a, b, c) * r.out(a, b, c);
      EXPECT_NEAR(m / 6, 0.0, 1e-14);
      EXPECT_NEAR(v / 6, 1.0, 1e-5);  // eps = 1e-5 shrinks it slightly
    }
}

std::vector<OpCase> layer_norm_cases(bool small) {
  std::vector<OpCase> cases;
  uint64_t seed = 10;
  const std::vector<Shape> shapes =
      small ? std::vector<Shape>{{2, 3, 5}, {1, 1}, {4, 2}}
            : std::vector<Shape>{{1, 1},  {3, 7},   {2, 5, 15}, {17, 16},  {9, 33},
                                 {4, 64}, {70, 65}, {3, 257},   {1, 1024}, {600, 40}};
  for (const Shape& shape : shapes)
    for (int affine = 0; affine < 3; ++affine) {  // none, weight only, weight and bias
      Rng rng(seed++);
      const int64_t C = shape[shape.rank() - 1];
      TensorD x = random_tensor<double>(shape, rng, 3.0);
      for (double& v : x.values()) v += 1.5;  // a nonzero mean
      cases.push_back({shape.str() + " affine=" + std::to_string(affine),
                       tensors(x, affine >= 1 ? random_tensor<double>(Shape{C}, rng) : TensorD(),
                               affine == 2 ? random_tensor<double>(Shape{C}, rng) : TensorD())});
    }
  return cases;
}

TEST(LayerNorm, FastMatchesReference) {
  check_forward(layer_norm_spec(), layer_norm_cases(false));
  check_backward(layer_norm_spec(), layer_norm_cases(false));
}
// The contiguous rows go through SIMD row kernels: each runnable target (vector widths 4 to 16
// floats, so every shape above ends some rows in a partial vector on some target).
TEST(LayerNorm, FastMatchesReferenceOnEverySimdTarget) {
  for (const std::string& target : ops::available_simd_targets()) {
    SCOPED_TRACE(target);
    ops::set_simd_target(target);
    check_forward(layer_norm_spec(), layer_norm_cases(false));
    check_backward(layer_norm_spec(), layer_norm_cases(false));
  }
  ops::set_simd_target("");
}
TEST(LayerNorm, ReferenceBackwardMatchesFiniteDifferences) {
  check_gradients(layer_norm_spec(), layer_norm_cases(true), 1e-8, 1e-7);
}
TEST(LayerNorm, SameResultForOneAndThreeThreads) {
  check_threads(layer_norm_spec(), layer_norm_cases(false));
}

TEST(LayerNorm, FastAndReferenceRejectBadArgumentsAlike) {
  Context ctx;
  Tensor x(Shape{2, 4}), w(Shape{3}), out(Shape{2, 4}), mean(Shape{2}), rstd(Shape{2});
  ATTN_EXPECT_THROW_MSG(ops::reference::layer_norm_forward(x, w, {}, 1e-5, out, mean, rstd, ctx),
                        ShapeError, "layer_norm_forward", "weight has shape (3,)");
  ATTN_EXPECT_THROW_MSG(ops::reference::layer_norm_forward(x, {}, {}, -1.0, out, mean, rstd, ctx),
                        ValueError, "eps must be finite and >= 0");
  Tensor mean_bad(Shape{4});
  ATTN_EXPECT_THROW_MSG(
      ops::reference::layer_norm_forward(x, {}, {}, 1e-5, out, mean_bad, rstd, ctx), ShapeError,
      "mean has shape (4,)");
  ATTN_EXPECT_THROW_MSG(ops::layer_norm_forward(x, w, {}, 1e-5, out, mean, rstd, ctx), ShapeError,
                        "layer_norm_forward", "weight has shape (3,)");
  ATTN_EXPECT_THROW_MSG(ops::layer_norm_forward(x, {}, {}, 1e-5, out, mean_bad, rstd, ctx),
                        ShapeError, "mean has shape (4,)");
  Tensor dx(Shape{2, 5});
  ATTN_EXPECT_THROW_MSG(ops::layer_norm_backward(x, {}, mean, rstd, out, dx, {}, {}, ctx),
                        ShapeError, "layer_norm_backward", "dx has shape (2, 5)");
}

}  // namespace
}  // namespace attn::testing
