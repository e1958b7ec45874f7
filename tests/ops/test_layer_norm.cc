// SPDX-License-Identifier: MIT
#include <cmath>

#include "testing/testing.h"

namespace attn::testing {
namespace {

struct LnOut {
  TensorD out, mean, rstd;
};

LnOut ln(ConstTensorViewD x, ConstTensorViewD w, ConstTensorViewD b, double eps = 1e-5) {
  Context ctx;
  LnOut r{TensorD(x.shape()), TensorD(Shape{x.dim(0), x.dim(1)}), TensorD(Shape{x.dim(0), x.dim(1)})};
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

TEST(LayerNormReference, BackwardMatchesFiniteDifferences) {
  Rng rng(4);
  TensorD x = random_tensor<double>(Shape{2, 3, 5}, rng);
  TensorD w = random_tensor<double>(Shape{5}, rng), b = random_tensor<double>(Shape{5}, rng);
  const TensorD g = random_tensor<double>(Shape{2, 3, 5}, rng);
  const LnOut r = ln(x.view(), w.view(), b.view());
  TensorD dx(x.shape()), dw(w.shape()), db(b.shape());
  Context ctx;
  ops::reference::layer_norm_backward(x.view(), w.view(), r.mean.view(), r.rstd.view(), g.view(), dx.view(),
                                      dw.view(), db.view(), ctx);
  auto loss = [&] { return dot<double, double>(ln(x.view(), w.view(), b.view()).out.view(), g.view()); };
  EXPECT_TRUE(all_close(dx, numeric_gradient(loss, x.view()), 1e-8, 1e-7));
  EXPECT_TRUE(all_close(dw, numeric_gradient(loss, w.view()), 1e-8, 1e-7));
  EXPECT_TRUE(all_close(db, numeric_gradient(loss, b.view()), 1e-8, 1e-7));
}

TEST(LayerNormReference, RejectsBadArguments) {
  Context ctx;
  Tensor x(Shape{2, 4}), w(Shape{3}), out(Shape{2, 4}), mean(Shape{2}), rstd(Shape{2});
  ATTN_EXPECT_THROW_MSG(ops::reference::layer_norm_forward(x, w, {}, 1e-5, out, mean, rstd, ctx), ShapeError,
                        "layer_norm_forward", "weight has shape (3,)");
  ATTN_EXPECT_THROW_MSG(ops::reference::layer_norm_forward(x, {}, {}, -1.0, out, mean, rstd, ctx), ValueError,
                        "eps must be finite and >= 0");
  Tensor mean_bad(Shape{4});
  ATTN_EXPECT_THROW_MSG(ops::reference::layer_norm_forward(x, {}, {}, 1e-5, out, mean_bad, rstd, ctx), ShapeError,
                        "mean has shape (4,)");
}

}  // namespace
}  // namespace attn::testing
