// SPDX-License-Identifier: MIT
// Batch norm: with batch statistics (training, running stats updated) and with running statistics
// (evaluation), affine or not, through the op harness; 1 vs 3 threads; errors.
#include <string>

#include "ops/op_specs.h"

namespace attn::testing {
namespace {

constexpr double kMomentum = 0.1, kEps = 1e-5;

// in = {x (B, C, L), weight, bias, running_mean, running_var} (each (C) or undefined);
// out = {y, save_mean, save_rstd, running_mean', running_var'} (the running ones undefined when not
// given). Sums are in double, so every value is a few float roundings of exact values: relative
// error a few eps of |xhat|·|w| + |b| (|xhat| <= sqrt(B·L)); the backward adds a B·L-term double
// sum, rounded once.
OpSpec batch_norm_spec(bool batch_stats) {
  OpSpec s;
  s.name = batch_stats ? "batch_norm (batch statistics)" : "batch_norm (running statistics)";
  auto run = [batch_stats](const auto& in, const Context& ctx, auto fwd) {
    using T = std::remove_const_t<typename std::remove_reference_t<decltype(in[0])>::value_type>;
    std::vector<BasicTensor<T>> out;
    const int64_t C = in[0].dim(1);
    out.emplace_back(in[0].shape());
    out.emplace_back(Shape{C});
    out.emplace_back(Shape{C});
    for (int i : {3, 4})
      out.push_back(in[i].defined() ? BasicTensor<T>::copy_of(in[i]) : BasicTensor<T>());
    fwd(in[0], in[1], in[2], out[3].view(), out[4].view(), batch_stats, kMomentum, kEps,
        out[0].view(), out[1].view(), out[2].view(), ctx);
    return out;
  };
  s.forward = [=](const OpSpec::Views& in, const Context& ctx) {
    return run(in, ctx, [](auto&&... a) { ops::batch_norm_forward(a...); });
  };
  s.reference = [=](const OpSpec::ViewsD& in, const Context& ctx) {
    return run(in, ctx, [](auto&&... a) { ops::reference::batch_norm_forward(a...); });
  };
  s.backward = [=](const OpSpec::Views& in, const OpSpec::Views& out, const OpSpec::Views& g,
                   const Context& ctx) {
    auto d = zeros_like<float>({in[0], in[1], in[2]});
    d.emplace_back();
    d.emplace_back();
    ops::batch_norm_backward(in[0], in[1], out[1], out[2], batch_stats, g[0], d[0], d[1], d[2],
                             ctx);
    return d;
  };
  s.reference_backward = [=](const OpSpec::ViewsD& in, const OpSpec::ViewsD& out,
                             const OpSpec::ViewsD& g, const Context& ctx) {
    auto d = zeros_like<double>({in[0], in[1], in[2]});
    d.emplace_back();
    d.emplace_back();
    ops::reference::batch_norm_backward(in[0], in[1], out[1], out[2], batch_stats, g[0], d[0], d[1],
                                        d[2], ctx);
    return d;
  };
  s.differentiable_outputs = {true, false, false, false, false};
  s.forward_tolerance = [](const OpCase& c, size_t i, const TensorD& expected) {
    const double n = static_cast<double>(c.inputs[0].dim(0) * c.inputs[0].dim(2));
    const double w = c.inputs[1].defined() ? max_abs_of(c.inputs[1]) : 1.0;
    if (i == 0)
      return 8 * kEpsF32 * (std::sqrt(n) * w * 4 + max_abs_of(c.inputs[2]) + max_abs_of(expected));
    return 4 * kEpsF32 * max_abs_of(expected) + 1e-30;
  };
  // dx = rstd·w·(g − mean(g) − xhat·mean(g·xhat)): terms up to rstd·|w|·|g|·(2 + sqrt(B·L)), and
  // xhat itself carries the float roundings of mean and rstd.
  s.backward_tolerance = [batch_stats](const OpCase& c, size_t i, const TensorD& expected) {
    const TensorD& x = c.inputs[0];
    const double n = static_cast<double>(x.dim(0) * x.dim(2));
    const double w = c.inputs[1].defined() ? max_abs_of(c.inputs[1]) : 1.0;
    double rstd = 0.0;
    for (int64_t ch = 0; ch < x.dim(1); ++ch) {
      double var = 0.0;
      if (batch_stats) {
        double mean = 0.0;
        for (int64_t b = 0; b < x.dim(0); ++b)
          for (int64_t l = 0; l < x.dim(2); ++l) mean += x(b, ch, l) / n;
        for (int64_t b = 0; b < x.dim(0); ++b)
          for (int64_t l = 0; l < x.dim(2); ++l)
            var += (x(b, ch, l) - mean) * (x(b, ch, l) - mean) / n;
      } else {
        var = c.inputs[4](ch);
      }
      rstd = std::max(rstd, 1.0 / std::sqrt(var + kEps));
    }
    const double term =
        i == 0 ? rstd * w * kMaxGrad * (2 + std::sqrt(n)) : kMaxGrad * std::sqrt(n) * 4;
    return 16 * kEpsF32 * (term + max_abs_of(expected)) + 1e-30;
  };
  return s;
}

std::vector<OpCase> bn_cases(bool small, bool batch_stats) {
  std::vector<OpCase> cases;
  uint64_t seed = 70;
  const std::vector<Shape> shapes = small
                                        ? std::vector<Shape>{{3, 2, 4}, {5, 3, 1}}
                                        : std::vector<Shape>{{2, 3, 1},   {8, 5, 1},    {4, 3, 49},
                                                             {3, 17, 13}, {16, 8, 196}, {1, 4, 7}};
  for (const Shape& shape : shapes)
    for (int variant = 0; variant < 3; ++variant) {  // affine + running, affine only, neither
      if (!batch_stats && variant == 1) continue;    // evaluation needs running statistics
      Rng rng(seed++);
      const int64_t C = shape[1];
      TensorD x = random_tensor<double>(shape, rng, 2.0);
      for (double& v : x.values()) v += 0.7;  // a nonzero mean
      TensorD var = random_tensor<double>(Shape{C}, rng);
      for (double& v : var.values()) v = 0.5 + v * v;
      const bool affine = variant < 2, running = variant != 1;
      cases.push_back({shape.str() + (affine ? " affine" : "") + (running ? " running" : ""),
                       tensors(x, affine ? random_tensor<double>(Shape{C}, rng) : TensorD(),
                               affine ? random_tensor<double>(Shape{C}, rng) : TensorD(),
                               running ? random_tensor<double>(Shape{C}, rng) : TensorD(),
                               running ? std::move(var) : TensorD())});
    }
  return cases;
}

TEST(BatchNorm, FastMatchesReference) {
  for (bool batch_stats : {true, false}) {
    check_forward(batch_norm_spec(batch_stats), bn_cases(false, batch_stats));
    check_backward(batch_norm_spec(batch_stats), bn_cases(false, batch_stats));
  }
}
TEST(BatchNorm, ReferenceBackwardMatchesFiniteDifferences) {
  for (bool batch_stats : {true, false})
    check_gradients(batch_norm_spec(batch_stats), bn_cases(true, batch_stats), 1e-7, 1e-6);
}
TEST(BatchNorm, SameResultForOneAndThreeThreads) {
  for (bool batch_stats : {true, false})
    check_threads(batch_norm_spec(batch_stats), bn_cases(false, batch_stats));
}

TEST(BatchNorm, RunningStatisticsFollowPyTorch) {
  // torch.nn.BatchNorm1d(1, momentum=0.1) on [1, 2, 3, 4] from (0, 1): mean 2.5, unbiased var 5/3.
  const Context ctx;
  TensorD x = TensorD::from_values(Shape{4, 1, 1}, std::vector<double>{1, 2, 3, 4});
  TensorD rm = TensorD::full(Shape{1}, 0.0), rv = TensorD::full(Shape{1}, 1.0), out(x.shape()),
          mean(Shape{1}), rstd(Shape{1});
  ops::reference::batch_norm_forward(x, {}, {}, rm, rv, true, 0.1, 1e-5, out, mean, rstd, ctx);
  EXPECT_NEAR(rm(0), 0.25, 1e-15);
  EXPECT_NEAR(rv(0), 0.9 + 0.1 * 5.0 / 3.0, 1e-15);
  EXPECT_NEAR(rstd(0), 1.0 / std::sqrt(1.25 + 1e-5), 1e-15);  // the biased variance normalises
}

TEST(BatchNorm, RejectsBadArguments) {
  const Context ctx;
  Tensor x(Shape{1, 3, 1}), out(x.shape()), m(Shape{3}), r(Shape{3}), w(Shape{4});
  ATTN_EXPECT_THROW_MSG(ops::batch_norm_forward(x, {}, {}, {}, {}, true, 0.1, 1e-5, out, m, r, ctx),
                        ValueError, "batch_norm_forward", "more than 1 value per channel");
  ATTN_EXPECT_THROW_MSG(
      ops::batch_norm_forward(x, {}, {}, {}, {}, false, 0.1, 1e-5, out, m, r, ctx), ValueError,
      "needs running_mean and running_var");
  Tensor x2(Shape{2, 3, 1}), out2(x2.shape());
  ATTN_EXPECT_THROW_MSG(
      ops::batch_norm_forward(x2, w, {}, {}, {}, true, 0.1, 1e-5, out2, m, r, ctx), ShapeError,
      "weight has shape (4,)");
  ATTN_EXPECT_THROW_MSG(
      ops::batch_norm_forward(x2, {}, {}, {}, {}, true, 1.5, 1e-5, out2, m, r, ctx), ValueError,
      "momentum must be in [0, 1]");
  Tensor dx(Shape{2, 3, 2});
  ATTN_EXPECT_THROW_MSG(ops::batch_norm_backward(x2, {}, m, r, true, out2, dx, {}, {}, ctx),
                        ShapeError, "batch_norm_backward", "dx has shape (2, 3, 2)");
}

}  // namespace
}  // namespace attn::testing
