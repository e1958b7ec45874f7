// SPDX-License-Identifier: MIT
// The OpenBLAS linear layer against the reference, on odd sizes and strided views; the reference
// against finite differences.
#include "testing/testing.h"

namespace attn::testing {
namespace {

struct LinearSizes {
  int64_t N, IN, OUT;
};

TEST(Linear, FastMatchesReferenceOnOddSizesAndStridedViews) {
  Context ctx(ContextOptions{.num_threads = 2});
  uint64_t seed = 1;
  for (const LinearSizes& z : std::vector<LinearSizes>{{1, 1, 1}, {3, 7, 5}, {17, 16, 15}, {33, 65, 9}, {0, 4, 3}, {4, 0, 3}}) {
    for (bool strided : {false, true}) {
      SCOPED_TRACE(std::to_string(z.N) + "x" + std::to_string(z.IN) + "->" + std::to_string(z.OUT) +
                   (strided ? " strided" : ""));
      Rng rng(seed++);
      const Tensor x = random_tensor<float>(Shape{z.N, z.IN}, rng), w = random_tensor<float>(Shape{z.OUT, z.IN}, rng);
      const Tensor b = random_tensor<float>(Shape{z.OUT}, rng), g = random_tensor<float>(Shape{z.N, z.OUT}, rng);
      auto xs = strided_copy(x), ws = strided_copy(w), gs = strided_copy(g);
      const ConstTensorView xv = strided ? ConstTensorView(xs.view) : x.view();
      const ConstTensorView wv = strided ? ConstTensorView(ws.view) : w.view();
      const ConstTensorView gv = strided ? ConstTensorView(gs.view) : g.view();
      Tensor out(Shape{z.N, z.OUT}), ref(Shape{z.N, z.OUT});
      auto outs = strided_copy(out);
      ops::linear_forward(xv, wv, b, strided ? outs.view : out.view(), ctx);
      ops::reference::linear_forward(xv, wv, b, ref, ctx);
      // float accumulation over IN terms of |x||w| ~ 1: error <= IN · eps · Σ|x w| (bound, loose).
      const double tol = 2.0 * static_cast<double>(z.IN + 1) * kEpsF32 * (1.0 + static_cast<double>(z.IN));
      EXPECT_TRUE((all_close<float, float>(strided ? ConstTensorView(outs.view) : out.view(), ref.view(), tol)));

      Tensor dx = Tensor::full(x.shape(), 1.0f), dw = Tensor::full(w.shape(), 1.0f), db = Tensor::full(b.shape(), 1.0f);
      Tensor rdx = Tensor::full(x.shape(), 1.0f), rdw = Tensor::full(w.shape(), 1.0f), rdb = Tensor::full(b.shape(), 1.0f);
      auto dxs = strided_copy(dx);
      ops::linear_backward(xv, wv, gv, strided ? dxs.view : dx.view(), dw, db, ctx);
      ops::reference::linear_backward(xv, wv, gv, rdx, rdw, rdb, ctx);
      const double tol_n = 2.0 * static_cast<double>(z.N + z.OUT + 1) * kEpsF32 * (2.0 + static_cast<double>(z.N + z.OUT));
      EXPECT_TRUE((all_close<float, float>(strided ? ConstTensorView(dxs.view) : dx.view(), rdx.view(), tol_n)));
      EXPECT_TRUE(all_close(dw, rdw, tol_n));
      EXPECT_TRUE(all_close(db, rdb, tol_n));
    }
  }
}

TEST(LinearReference, BackwardMatchesFiniteDifferences) {
  Rng rng(5);
  TensorD x = random_tensor<double>(Shape{4, 3}, rng), w = random_tensor<double>(Shape{5, 3}, rng);
  TensorD b = random_tensor<double>(Shape{5}, rng);
  const TensorD g = random_tensor<double>(Shape{4, 5}, rng);
  Context ctx;
  auto forward = [&] {
    TensorD y(Shape{4, 5});
    ops::reference::linear_forward(x.view(), w.view(), b.view(), y.view(), ctx);
    return dot<double, double>(y.view(), g.view());
  };
  TensorD dx(x.shape()), dw(w.shape()), db(b.shape());
  ops::reference::linear_backward(x.view(), w.view(), g.view(), dx.view(), dw.view(), db.view(), ctx);
  EXPECT_TRUE(all_close(dx, numeric_gradient(forward, x.view()), 1e-8, 1e-8));
  EXPECT_TRUE(all_close(dw, numeric_gradient(forward, w.view()), 1e-8, 1e-8));
  EXPECT_TRUE(all_close(db, numeric_gradient(forward, b.view()), 1e-8, 1e-8));
}

TEST(Linear, RejectsBadShapes) {
  Context ctx;
  Tensor x(Shape{4, 3}), w(Shape{5, 2}), out(Shape{4, 5});
  ATTN_EXPECT_THROW_MSG(ops::linear_forward(x, w, {}, out, ctx), ShapeError, "linear_forward",
                        "w has shape (5, 2) (OUT, IN) but x has shape (4, 3)");
  Tensor w2(Shape{5, 3}), b(Shape{4});
  ATTN_EXPECT_THROW_MSG(ops::linear_forward(x, w2, b, out, ctx), ShapeError, "bias has shape (4,)");
  Tensor dout(Shape{4, 6});
  ATTN_EXPECT_THROW_MSG(ops::linear_backward(x, w2, dout, {}, {}, {}, ctx), ShapeError, "linear_backward",
                        "dout has shape (4, 6)");
}

}  // namespace
}  // namespace attn::testing
