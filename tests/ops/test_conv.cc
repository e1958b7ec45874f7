// SPDX-License-Identifier: MIT
// conv2d and conv1d: a hand-computed case for the reference, then the fast path through the op
// harness over stride, padding, dilation, groups (depthwise included), bias, odd sizes and strided
// views; finite differences of the reference; 1 vs 3 threads; errors.
#include <string>

#include "ops/op_specs.h"

namespace attn::testing {
namespace {

using ops::Conv2dOptions;

// in = {x (B, C_in, H, W), w (C_out, C_in/G, KH, KW), bias (C_out) or undefined}; out = {y}.
// Each output is a K-term dot product, K = C_in/G·KH·KW (+1 for the bias): the summation bound
// K·eps·Σ|terms| with |term| <= max|x|·max|w|. dx sums C_out/G·KH·KW terms of |g|·|w|, dw and
// dbias B·OH·OW terms of |g|·|x| and |g|.
OpSpec conv2d_spec(const Conv2dOptions& p) {
  OpSpec s;
  s.name = "conv2d";
  auto out_shape = [p](const auto& x, const auto& w) {
    return ops::conv2d_output_shape("test", x.shape(), w.shape(), p);
  };
  s.forward = [=](const OpSpec::Views& in, const Context& ctx) {
    std::vector<Tensor> out;
    out.emplace_back(out_shape(in[0], in[1]));
    ops::conv2d_forward(in[0], in[1], in[2], p, out[0], ctx);
    return out;
  };
  s.reference = [=](const OpSpec::ViewsD& in, const Context& ctx) {
    std::vector<TensorD> out;
    out.emplace_back(out_shape(in[0], in[1]));
    ops::reference::conv2d_forward(in[0], in[1], in[2], p, out[0], ctx);
    return out;
  };
  s.backward = [=](const OpSpec::Views& in, const OpSpec::Views&, const OpSpec::Views& g,
                   const Context& ctx) {
    auto d = zeros_like<float>({in[0], in[1], in[2]});
    ops::conv2d_backward(in[0], in[1], g[0], p, d[0], d[1], d[2], ctx);
    return d;
  };
  s.reference_backward = [=](const OpSpec::ViewsD& in, const OpSpec::ViewsD&,
                             const OpSpec::ViewsD& g, const Context& ctx) {
    auto d = zeros_like<double>({in[0], in[1], in[2]});
    ops::reference::conv2d_backward(in[0], in[1], g[0], p, d[0], d[1], d[2], ctx);
    return d;
  };
  s.differentiable_outputs = {true};
  s.forward_tolerance = [](const OpCase& c, size_t, const TensorD&) {
    const TensorD& w = c.inputs[1];
    const double K = static_cast<double>(w.dim(1) * w.dim(2) * w.dim(3)) + 1.0;
    return 2 * K * kEpsF32 * (max_abs_of(c.inputs[0]) * max_abs_of(w) + max_abs_of(c.inputs[2])) +
           1e-30;
  };
  s.backward_tolerance = [p](const OpCase& c, size_t i, const TensorD&) {
    const TensorD &x = c.inputs[0], &w = c.inputs[1];
    const Shape o = ops::conv2d_output_shape("test", x.shape(), w.shape(), p);
    const double taps = static_cast<double>(w.dim(0) / p.groups * w.dim(2) * w.dim(3));
    const double K = i == 0 ? taps : static_cast<double>(o[0] * o[2] * o[3]);
    const double term = i == 0 ? max_abs_of(w) : i == 1 ? max_abs_of(x) : 1.0;
    return 2 * (K + 1) * kEpsF32 * kMaxGrad * term + 1e-30;
  };
  return s;
}

struct ConvCase {
  std::string name;
  int64_t B, C_in, H, W, C_out, KH, KW;
  Conv2dOptions p;
};

// Odd sizes around the vector width, every option alone and in combination, depthwise.
std::vector<ConvCase> conv_configs(bool small) {
  if (small)
    return {
        {"3x3 pad1", 2, 2, 5, 4, 3, 3, 3, {.pad_h = 1, .pad_w = 1}},
        {"stride2 dil2 groups2",
         1,
         4,
         7,
         6,
         2,
         2,
         3,
         {.stride_h = 2, .stride_w = 1, .pad_w = 2, .dilation_h = 2, .groups = 2}},
        {"depthwise 1x1", 2, 3, 3, 3, 3, 1, 1, {.groups = 3}},
    };
  return {
      {"1x1 pointwise", 2, 5, 7, 9, 6, 1, 1, {}},
      {"1x1 stride2", 3, 4, 9, 8, 5, 1, 1, {.stride_h = 2, .stride_w = 2}},
      {"3x3 pad1 (the CNN's)", 3, 3, 11, 13, 8, 3, 3, {.pad_h = 1, .pad_w = 1}},
      {"3x3 no pad", 2, 7, 9, 10, 17, 3, 3, {}},
      {"5x3 pad2,1", 1, 2, 12, 7, 3, 5, 3, {.pad_h = 2, .pad_w = 1}},
      {"stride 3 pad2",
       2,
       3,
       17,
       14,
       4,
       3,
       3,
       {.stride_h = 3, .stride_w = 3, .pad_h = 2, .pad_w = 2}},
      {"stride 2,1", 2, 4, 15, 16, 6, 3, 3, {.stride_h = 2, .stride_w = 1, .pad_h = 1, .pad_w = 1}},
      {"dilation 2",
       2,
       3,
       13,
       11,
       5,
       3,
       3,
       {.pad_h = 2, .pad_w = 2, .dilation_h = 2, .dilation_w = 2}},
      {"dilation 3,1 stride2",
       1,
       2,
       19,
       9,
       3,
       3,
       2,
       {.stride_h = 2, .stride_w = 2, .pad_h = 1, .dilation_h = 3}},
      {"groups 2", 2, 6, 9, 9, 4, 3, 3, {.pad_h = 1, .pad_w = 1, .groups = 2}},
      {"groups 3 stride 2",
       3,
       9,
       10,
       11,
       6,
       3,
       3,
       {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .groups = 3}},
      {"depthwise 3x3", 2, 8, 10, 9, 8, 3, 3, {.pad_h = 1, .pad_w = 1, .groups = 8}},
      {"depthwise multiplier 2", 2, 4, 8, 7, 8, 3, 3, {.pad_h = 1, .pad_w = 1, .groups = 4}},
      {"patch embed 4x4 stride 4", 3, 1, 28, 28, 16, 4, 4, {.stride_h = 4, .stride_w = 4}},
      {"kernel as big as the padded input", 2, 2, 3, 4, 3, 5, 6, {.pad_h = 1, .pad_w = 1}},
      {"B=17 (more images than weight chunks)", 17, 2, 5, 5, 3, 3, 3, {.pad_h = 1, .pad_w = 1}},
  };
}

std::vector<std::pair<Conv2dOptions, std::vector<OpCase>>> conv_cases(bool small) {
  std::vector<std::pair<Conv2dOptions, std::vector<OpCase>>> all;
  uint64_t seed = 40;
  for (const ConvCase& k : conv_configs(small)) {
    std::vector<OpCase> cases;
    for (bool bias : {true, false}) {
      Rng rng(seed++);
      cases.push_back(
          {k.name + (bias ? " bias" : " no bias"),
           tensors(random_tensor<double>(Shape{k.B, k.C_in, k.H, k.W}, rng),
                   random_tensor<double>(Shape{k.C_out, k.C_in / k.p.groups, k.KH, k.KW}, rng),
                   bias ? random_tensor<double>(Shape{k.C_out}, rng) : TensorD())});
    }
    all.emplace_back(k.p, std::move(cases));
  }
  return all;
}

TEST(Conv2dReference, MatchesAHandComputedCase) {
  // x = 1..9 on a 3×3 grid, a 2×2 kernel of ones with padding 1 and stride 2: the sums of the
  // corners' 2×2 neighbourhoods inside the image.
  TensorD x(Shape{1, 1, 3, 3}), w = TensorD::full(Shape{1, 1, 2, 2}, 1.0), out(Shape{1, 1, 2, 2});
  for (int64_t i = 0; i < 9; ++i) x.data()[i] = static_cast<double>(i + 1);
  ops::reference::conv2d_forward(x.view(), w.view(), {},
                                 {.stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}, out.view(),
                                 Context());
  EXPECT_EQ(out(0, 0, 0, 0), 1.0);
  EXPECT_EQ(out(0, 0, 0, 1), 2.0 + 3.0);
  EXPECT_EQ(out(0, 0, 1, 0), 4.0 + 7.0);
  EXPECT_EQ(out(0, 0, 1, 1), 5.0 + 6.0 + 8.0 + 9.0);
}

TEST(Conv2d, FastMatchesReference) {
  for (const auto& [p, cases] : conv_cases(false)) {
    check_forward(conv2d_spec(p), cases);
    check_backward(conv2d_spec(p), cases);
  }
}
TEST(Conv2d, ReferenceBackwardMatchesFiniteDifferences) {
  for (const auto& [p, cases] : conv_cases(true)) check_gradients(conv2d_spec(p), cases);
}
TEST(Conv2d, SameResultForOneAndThreeThreads) {
  for (const auto& [p, cases] : conv_cases(false)) check_threads(conv2d_spec(p), cases);
}

TEST(Conv1d, MatchesConv2dOnTheUnsqueezedView) {
  Rng rng(5);
  const Context ctx;
  const ops::Conv1dOptions p{.stride = 2, .padding = 2, .dilation = 2, .groups = 2};
  const Tensor x = random_tensor<float>(Shape{3, 4, 23}, rng),
               w = random_tensor<float>(Shape{6, 2, 3}, rng),
               b = random_tensor<float>(Shape{6}, rng);
  const int64_t OL = (23 + 4 - 4 - 1) / 2 + 1;
  Tensor out(Shape{3, 6, OL});
  ops::conv1d_forward(x, w, b, p, out, ctx);
  TensorD want(Shape{3, 6, 1, OL});
  const TensorD xd = TensorD::copy_of(x.view()), wd = TensorD::copy_of(w.view()),
                bd = TensorD::copy_of(b.view());
  ops::reference::conv2d_forward(xd.view().unsqueeze(2), wd.view().unsqueeze(2), bd,
                                 ops::as_conv2d(p), want.view(), ctx);
  EXPECT_TRUE(all_close(ConstTensorView(out.view()),
                        ConstTensorViewD(want.view().reshape(Shape{3, 6, OL})), 1e-5));
  const Tensor g = random_tensor<float>(out.shape(), rng);
  Tensor dx(x.shape()), dw(w.shape()), db(b.shape());
  ops::conv1d_backward(x, w, g, p, dx, dw, db, ctx);
  TensorD gd = TensorD::copy_of(g.view()), dxd(xd.shape()), dwd(wd.shape()), dbd(bd.shape());
  ops::reference::conv2d_backward(xd.view().unsqueeze(2), wd.view().unsqueeze(2),
                                  gd.view().unsqueeze(2), ops::as_conv2d(p),
                                  dxd.view().unsqueeze(2), dwd.view().unsqueeze(2), dbd, ctx);
  EXPECT_TRUE(all_close(dx, dxd, 1e-5));
  EXPECT_TRUE(all_close(dw, dwd, 1e-4));
  EXPECT_TRUE(all_close(db, dbd, 1e-4));
}

TEST(Conv2d, RejectsBadArguments) {
  const Context ctx;
  Tensor x(Shape{2, 4, 5, 5}), w(Shape{6, 4, 3, 3}), out(Shape{2, 6, 3, 3});
  ATTN_EXPECT_THROW_MSG(ops::conv2d_forward(x, w, {}, {.groups = 3}, out, ctx), ValueError,
                        "conv2d_forward", "groups = 3 must divide C_in = 4");
  Tensor w_bad(Shape{6, 3, 3, 3});
  ATTN_EXPECT_THROW_MSG(ops::conv2d_forward(x, w_bad, {}, {}, out, ctx), ShapeError,
                        "w has shape (6, 3, 3, 3)", "C_in/groups = 4");
  ATTN_EXPECT_THROW_MSG(ops::conv2d_forward(x, w, {}, {.stride_h = 0}, out, ctx), ValueError,
                        "stride must be >= 1");
  Tensor out_bad(Shape{2, 6, 5, 5});
  ATTN_EXPECT_THROW_MSG(ops::conv2d_forward(x, w, {}, {}, out_bad, ctx), ShapeError,
                        "out has shape (2, 6, 5, 5)", "(2, 6, 3, 3)");
  Tensor big(Shape{6, 4, 9, 9});
  ATTN_EXPECT_THROW_MSG(ops::conv2d_forward(x, big, {}, {}, out, ctx), ShapeError,
                        "does not fit x of shape (2, 4, 5, 5)");
  ATTN_EXPECT_THROW_MSG(ops::reference::conv2d_forward(x, w, {}, {.dilation_w = 0}, out, ctx),
                        ValueError, "reference::conv2d_forward", "dilation must be >= 1");
  // 2^62 overflowed dilation · (kernel − 1) and in + 2 · pad (undefined behaviour) before the
  // bound.
  ATTN_EXPECT_THROW_MSG(ops::conv2d_forward(x, w, {}, {.dilation_h = int64_t{1} << 62}, out, ctx),
                        ValueError, "conv2d_forward", "dilation must be at most 2147483647");
  ATTN_EXPECT_THROW_MSG(ops::conv2d_forward(x, w, {}, {.pad_w = int64_t{1} << 62}, out, ctx),
                        ValueError,
                        "padding must be at most 2147483647, got (0, 4611686018427387904)");
  ATTN_EXPECT_THROW_MSG(ops::conv2d_forward(x, w, {}, {.stride_h = int64_t{1} << 40}, out, ctx),
                        ValueError, "stride must be at most 2147483647");
  Tensor dx(Shape{2, 4, 5, 4});
  ATTN_EXPECT_THROW_MSG(ops::conv2d_backward(x, w, out, {}, dx, {}, {}, ctx), ShapeError,
                        "conv2d_backward", "dx has shape (2, 4, 5, 4)");
  Tensor x1(Shape{2, 4, 5}), out1(Shape{2, 6, 3});
  ATTN_EXPECT_THROW_MSG(ops::conv1d_forward(x1, w, {}, {}, out1, ctx), ShapeError, "conv1d_forward",
                        "w must have rank 3 (C_out, C_in/groups, K)");
}

}  // namespace
}  // namespace attn::testing
