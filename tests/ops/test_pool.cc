// SPDX-License-Identifier: MIT
// Pooling: PyTorch's output-size rules, then max/avg/adaptive pooling through the op harness over
// kernels, strides, padding, dilation, ceil mode and count_include_pad; 1 vs 3 threads; errors.
#include <cmath>
#include <limits>
#include <string>

#include "ops/op_specs.h"

namespace attn::testing {
namespace {

using ops::Pool2dOptions;

enum class Pool { kMax, kAvg, kAdaptive };

// in = {x (B, C, H, W)}; out = {y}. Max pooling copies an element: exact. An average of n terms is
// within n·eps·max|x| (sum) plus one rounding of the division; its gradient is one division.
OpSpec pool_spec(Pool kind, const Pool2dOptions& p, int64_t OH = 0, int64_t OW = 0) {
  OpSpec s;
  s.name = kind == Pool::kMax   ? "max_pool2d"
           : kind == Pool::kAvg ? "avg_pool2d"
                                : "adaptive_avg_pool2d";
  auto out_shape = [=](const auto& x) {
    return kind == Pool::kAdaptive ? Shape{x.dim(0), x.dim(1), OH, OW}
                                   : ops::pool2d_output_shape("test", x.shape(), p);
  };
  s.forward = [=](const OpSpec::Views& in, const Context& ctx) {
    std::vector<Tensor> out;
    out.emplace_back(out_shape(in[0]));
    if (kind == Pool::kMax) ops::max_pool2d_forward(in[0], p, out[0], ctx);
    if (kind == Pool::kAvg) ops::avg_pool2d_forward(in[0], p, out[0], ctx);
    if (kind == Pool::kAdaptive) ops::adaptive_avg_pool2d_forward(in[0], out[0], ctx);
    return out;
  };
  s.reference = [=](const OpSpec::ViewsD& in, const Context& ctx) {
    std::vector<TensorD> out;
    out.emplace_back(out_shape(in[0]));
    if (kind == Pool::kMax) ops::reference::max_pool2d_forward(in[0], p, out[0], ctx);
    if (kind == Pool::kAvg) ops::reference::avg_pool2d_forward(in[0], p, out[0], ctx);
    if (kind == Pool::kAdaptive) ops::reference::adaptive_avg_pool2d_forward(in[0], out[0], ctx);
    return out;
  };
  s.backward = [=](const OpSpec::Views& in, const OpSpec::Views&, const OpSpec::Views& g,
                   const Context& ctx) {
    auto d = zeros_like<float>({in[0]});
    if (kind == Pool::kMax) ops::max_pool2d_backward(in[0], p, g[0], d[0], ctx);
    if (kind == Pool::kAvg) ops::avg_pool2d_backward(in[0], p, g[0], d[0], ctx);
    if (kind == Pool::kAdaptive) ops::adaptive_avg_pool2d_backward(g[0], d[0], ctx);
    return d;
  };
  s.reference_backward = [=](const OpSpec::ViewsD& in, const OpSpec::ViewsD&,
                             const OpSpec::ViewsD& g, const Context& ctx) {
    auto d = zeros_like<double>({in[0]});
    if (kind == Pool::kMax) ops::reference::max_pool2d_backward(in[0], p, g[0], d[0], ctx);
    if (kind == Pool::kAvg) ops::reference::avg_pool2d_backward(in[0], p, g[0], d[0], ctx);
    if (kind == Pool::kAdaptive) ops::reference::adaptive_avg_pool2d_backward(g[0], d[0], ctx);
    return d;
  };
  s.differentiable_outputs = {true};
  auto window = [=](const OpCase& c) {
    const TensorD& x = c.inputs[0];
    return kind == Pool::kAdaptive ? static_cast<double>((x.dim(2) / OH + 2) * (x.dim(3) / OW + 2))
                                   : static_cast<double>(p.kernel_h * p.kernel_w);
  };
  s.forward_tolerance = [=](const OpCase& c, size_t, const TensorD&) {
    return kind == Pool::kMax ? 0.0 : 2 * (window(c) + 1) * kEpsF32 * max_abs_of(c.inputs[0]);
  };
  // An input element collects from every window that holds it: at most a window's worth of them.
  s.backward_tolerance = [=](const OpCase& c, size_t, const TensorD&) {
    return 2 * (window(c) + 1) * kEpsF32 * kMaxGrad;
  };
  return s;
}

struct PoolCase {
  std::string name;
  Shape x;
  Pool2dOptions p;
};

std::vector<PoolCase> pool_configs(bool avg) {
  std::vector<PoolCase> v = {
      {"2x2 (the CNN's)", {2, 3, 28, 28}, {}},
      {"2x2 odd size", {2, 2, 7, 9}, {}},
      {"3x3 stride 2 pad 1",
       {1, 3, 11, 10},
       {.kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1}},
      {"3x2 stride 1", {2, 2, 6, 7}, {.kernel_h = 3, .kernel_w = 2, .stride_h = 1, .stride_w = 1}},
      {"2x2 ceil mode", {1, 2, 7, 9}, {.ceil_mode = true}},
      {"3x3 stride 2 pad 1 ceil",
       {2, 1, 10, 8},
       {.kernel_h = 3,
        .kernel_w = 3,
        .stride_h = 2,
        .stride_w = 2,
        .pad_h = 1,
        .pad_w = 1,
        .ceil_mode = true}},
  };
  if (avg) {
    v.push_back({"3x3 pad 1 excluding pad",
                 {2, 2, 9, 8},
                 {.kernel_h = 3,
                  .kernel_w = 3,
                  .stride_h = 2,
                  .stride_w = 2,
                  .pad_h = 1,
                  .pad_w = 1,
                  .count_include_pad = false}});
    v.push_back({"3x3 ceil excluding pad",
                 {1, 2, 10, 10},
                 {.kernel_h = 3,
                  .kernel_w = 3,
                  .stride_h = 2,
                  .stride_w = 2,
                  .pad_h = 1,
                  .pad_w = 1,
                  .ceil_mode = true,
                  .count_include_pad = false}});
  } else {
    v.push_back({"3x3 dilation 2 pad 2",
                 {2, 2, 11, 12},
                 {.kernel_h = 3,
                  .kernel_w = 3,
                  .stride_h = 1,
                  .stride_w = 2,
                  .pad_h = 2,
                  .pad_w = 1,
                  .dilation_h = 2,
                  .dilation_w = 2}});
  }
  return v;
}

std::vector<OpCase> one_case(const Shape& shape, uint64_t seed, const std::string& name) {
  Rng rng(seed);
  std::vector<OpCase> v;
  v.push_back({name + " " + shape.str(), tensors(random_tensor<double>(shape, rng))});
  return v;
}

TEST(PoolOutputShape, FollowsPyTorch) {
  // As torch 1.13 prints: MaxPool2d(3, 2, 1) gives 5x5 on 10x10 and 6x6 on 12x12; with ceil_mode,
  // 6x6 and 7x7. MaxPool2d(2, 2, 1, ceil_mode=True) on 5x5 gives 3x3: its fourth window would start
  // in the right padding, so it is dropped.
  Pool2dOptions p{
      .kernel_h = 3, .kernel_w = 3, .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1};
  EXPECT_EQ(ops::pool2d_output_shape("t", {1, 1, 10, 10}, p), (Shape{1, 1, 5, 5}));
  EXPECT_EQ(ops::pool2d_output_shape("t", {1, 1, 12, 12}, p), (Shape{1, 1, 6, 6}));
  p.ceil_mode = true;
  EXPECT_EQ(ops::pool2d_output_shape("t", {1, 1, 10, 10}, p), (Shape{1, 1, 6, 6}));
  EXPECT_EQ(ops::pool2d_output_shape("t", {1, 1, 12, 12}, p), (Shape{1, 1, 7, 7}));
  EXPECT_EQ(
      ops::pool2d_output_shape("t", {1, 1, 5, 5}, {.pad_h = 1, .pad_w = 1, .ceil_mode = true}),
      (Shape{1, 1, 3, 3}));
  EXPECT_EQ(ops::pool2d_output_shape("t", {1, 1, 7, 9}, Pool2dOptions{.ceil_mode = true}),
            (Shape{1, 1, 4, 5}));
}

// Fast against reference (forward and backward, contiguous and strided) and 1 vs 3 threads.
void check_fast_path(const OpSpec& spec, const std::vector<OpCase>& cases) {
  check_forward(spec, cases);
  check_backward(spec, cases);
  check_threads(spec, cases);
}

TEST(MaxPool2d, FastMatchesReference) {
  uint64_t seed = 1;
  for (const PoolCase& k : pool_configs(false)) {
    const auto cases = one_case(k.x, seed++, k.name);
    check_fast_path(pool_spec(Pool::kMax, k.p), cases);
  }
}
TEST(AvgPool2d, FastMatchesReference) {
  uint64_t seed = 100;
  for (const PoolCase& k : pool_configs(true)) {
    const auto cases = one_case(k.x, seed++, k.name);
    check_fast_path(pool_spec(Pool::kAvg, k.p), cases);
  }
}
TEST(AdaptiveAvgPool2d, FastMatchesReference) {
  uint64_t seed = 200;
  for (auto [H, W, OH, OW] : std::vector<std::array<int64_t, 4>>{
           {7, 7, 1, 1}, {10, 9, 3, 4}, {5, 5, 5, 5}, {4, 6, 7, 9}, {13, 11, 2, 5}}) {
    const auto cases =
        one_case(Shape{2, 3, H, W}, seed++, "to " + std::to_string(OH) + "x" + std::to_string(OW));
    check_fast_path(pool_spec(Pool::kAdaptive, {}, OH, OW), cases);
  }
}
TEST(Pooling, ReferenceBackwardMatchesFiniteDifferences) {
  const Pool2dOptions p{.kernel_h = 3,
                        .kernel_w = 3,
                        .stride_h = 2,
                        .stride_w = 2,
                        .pad_h = 1,
                        .pad_w = 1,
                        .ceil_mode = true};
  check_gradients(pool_spec(Pool::kMax, p), one_case({1, 2, 5, 6}, 7, "max"));
  check_gradients(pool_spec(Pool::kAvg, p), one_case({1, 2, 5, 6}, 8, "avg"));
  Pool2dOptions q = p;
  q.count_include_pad = false;
  check_gradients(pool_spec(Pool::kAvg, q), one_case({1, 2, 5, 6}, 9, "avg excluding pad"));
  check_gradients(pool_spec(Pool::kAdaptive, {}, 2, 3), one_case({1, 2, 5, 7}, 10, "adaptive"));
}

TEST(MaxPool2d, NaNPropagatesAndTiesGoToTheFirst) {
  const Context ctx;
  Tensor x = Tensor::from_values(Shape{1, 1, 2, 2}, std::vector<float>{1.0f, 3.0f, 3.0f, 2.0f});
  Tensor out(Shape{1, 1, 1, 1}), dx(x.shape());
  ops::max_pool2d_forward(x, {}, out, ctx);
  EXPECT_EQ(out(0, 0, 0, 0), 3.0f);
  ops::max_pool2d_backward(x, {}, Tensor::full(out.shape(), 1.0f), dx, ctx);
  EXPECT_EQ(dx(0, 0, 0, 1), 1.0f);
  EXPECT_EQ(dx(0, 0, 1, 0), 0.0f);
  x(0, 0, 1, 1) = std::nanf("");
  ops::max_pool2d_forward(x, {}, out, ctx);
  EXPECT_TRUE(std::isnan(out(0, 0, 0, 0)));
}

// The 2×2 backward's branch-free path: inputs from four values (ties everywhere), gradients added
// into a dx that already holds values, -0 among them; every sum is exact, so fast and reference
// must agree bit for bit, sign of zero included. Odd sizes leave an uncovered last row or column;
// a NaN sends its row pair through the general rule, which must give the reference's result too.
// The row kernel is compiled per SIMD target: every target this machine runs is checked.
void check_plain_max_pool_backward() {
  const Context ctx;
  Rng rng(7);
  for (const Shape& shape : {Shape{2, 3, 6, 8}, Shape{1, 2, 5, 7}, Shape{1, 1, 2, 34}}) {
    for (bool with_nan : {false, true}) {
      Tensor x = Tensor::uninitialized(shape);
      for (int64_t i = 0; i < x.numel(); ++i)
        x.data()[i] = static_cast<float>(static_cast<int>(rng.next_u64() % 4) - 1);
      if (with_nan) x(0, 0, 1, 3) = std::nanf("");
      const Shape out_shape = ops::pool2d_output_shape("test", shape, {});
      Tensor g = Tensor::uninitialized(out_shape);
      for (int64_t i = 0; i < g.numel(); ++i)
        g.data()[i] = static_cast<float>(1 + rng.next_u64() % 9);
      Tensor dx = Tensor::uninitialized(shape);
      for (int64_t i = 0; i < dx.numel(); ++i)
        dx.data()[i] = i % 3 == 0 ? -0.0f : static_cast<float>(rng.next_u64() % 5);
      TensorD dx_ref = TensorD::copy_of(dx.view());
      ops::max_pool2d_backward(x, {}, g, dx, ctx);
      ops::reference::max_pool2d_backward(TensorD::copy_of(x.view()), {},
                                          TensorD::copy_of(g.view()), dx_ref, ctx);
      for (int64_t i = 0; i < dx.numel(); ++i) {
        const auto want = static_cast<float>(dx_ref.data()[i]);
        ASSERT_EQ(dx.data()[i], want) << shape.str() << " element " << i << " nan " << with_nan;
        ASSERT_EQ(std::signbit(dx.data()[i]), std::signbit(want))
            << shape.str() << " element " << i;
      }
    }
  }
}
TEST(MaxPool2d, PlainBackwardKeepsTheFirstMaximumOfTiesAndUntouchedBits) {
  for (const std::string& target : ops::available_simd_targets()) {
    SCOPED_TRACE(target);
    ops::set_simd_target(target);
    check_plain_max_pool_backward();
  }
  ops::set_simd_target("");
}

TEST(Pooling, RejectsBadArguments) {
  const Context ctx;
  Tensor x(Shape{2, 3, 6, 6}), out(Shape{2, 3, 3, 3});
  ATTN_EXPECT_THROW_MSG(
      ops::max_pool2d_forward(x, {.kernel_h = 2, .kernel_w = 2, .pad_h = 2}, out, ctx), ValueError,
      "max_pool2d_forward", "at most half the kernel");
  ATTN_EXPECT_THROW_MSG(ops::avg_pool2d_forward(x, {.dilation_h = 2}, out, ctx), ValueError,
                        "avg_pool2d_forward", "no dilation");
  Tensor out_bad(Shape{2, 3, 2, 3});
  ATTN_EXPECT_THROW_MSG(ops::max_pool2d_forward(x, {}, out_bad, ctx), ShapeError,
                        "out has shape (2, 3, 2, 3)", "(2, 3, 3, 3)");
  ATTN_EXPECT_THROW_MSG(ops::max_pool2d_forward(x, {.kernel_h = 7, .kernel_w = 7}, out, ctx),
                        ShapeError, "does not fit x of shape (2, 3, 6, 6)");
  // Numbers that overflowed dilation · (kernel − 1) or in + stride − 1 before the bound.
  ATTN_EXPECT_THROW_MSG(
      ops::max_pool2d_forward(x, {.kernel_h = 3, .kernel_w = 3, .dilation_w = int64_t{1} << 62},
                              out, ctx),
      ValueError, "max_pool2d_forward", "dilation must be at most 2147483647");
  ATTN_EXPECT_THROW_MSG(
      ops::max_pool2d_forward(x, {.kernel_h = int64_t{1} << 40, .kernel_w = 2}, out, ctx),
      ValueError, "kernel_size must be at most 2147483647, got (1099511627776, 2)");
  ATTN_EXPECT_THROW_MSG(
      ops::avg_pool2d_forward(
          x,
          {.kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = INT64_MAX, .ceil_mode = true},
          out, ctx),
      ValueError, "avg_pool2d_forward", "stride must be at most 2147483647");
  Tensor small(Shape{2, 4, 1, 1});
  ATTN_EXPECT_THROW_MSG(ops::adaptive_avg_pool2d_forward(x, small, ctx), ShapeError,
                        "adaptive_avg_pool2d_forward", "B and C must agree");
  Tensor dx(Shape{2, 3, 6, 5});
  ATTN_EXPECT_THROW_MSG(ops::avg_pool2d_backward(x, {}, out, dx, ctx), ShapeError,
                        "avg_pool2d_backward", "dx has shape (2, 3, 6, 5)");
}

}  // namespace
}  // namespace attn::testing
