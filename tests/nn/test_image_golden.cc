// SPDX-License-Identifier: MIT
// The image layers against PyTorch (tests/golden/images, made by scripts/gen_image_golden.py):
// Conv2d and Conv1d over stride, padding, dilation and groups, the pools, BatchNorm in training
// (the running statistics after the step included) and evaluation, and both SAGAN forms with their
// attention maps; forward, the input gradient and every parameter gradient. The expectations are
// float64 PyTorch results from the same float32 values, so the only error is attn's float32
// arithmetic: reductions of at most a few hundred terms, inside 1e-5 of each tensor's scale.
#include <gtest/gtest.h>

#include <string>

#include "attn/attn.h"
#include "testing/golden_fixture.h"
#include "testing/testing.h"

namespace attn::nn {
namespace {

using attn::testing::all_close;
using attn::testing::GoldenFixture;
using attn::testing::max_abs;

::testing::AssertionResult close_to(ConstTensorView actual, ConstTensorView expected) {
  return all_close<float, float>(actual, expected, 1e-5 * std::max(1.0, max_abs<float>(expected)));
}

Context& ctx() {
  static Context c(ContextOptions{.num_threads = 2});
  return c;
}

int64_t at(const nlohmann::json& v, int i) {
  return v.is_array() ? v[i].get<int64_t>() : v.get<int64_t>();
}

ops::Pool2dOptions pool_options(const nlohmann::json& c) {
  ops::Pool2dOptions p;
  p.kernel_h = p.kernel_w = c["kernel"];
  p.stride_h = p.stride_w = c["stride"];
  p.pad_h = p.pad_w = c["padding"];
  p.dilation_h = p.dilation_w = c.value("dilation", 1);
  p.ceil_mode = c["ceil_mode"];
  p.count_include_pad = c.value("count_include_pad", true);
  return p;
}

// Forward with a cache, backward of dout, and the comparisons every module shares.
template <typename M, typename... Extra>
void check_module(M& m, const GoldenFixture& f, bool training, Extra... extra) {
  ASSERT_NO_THROW(m.load_state_dict(f.params(), true));
  m.set_training(training);
  typename M::Cache cache;
  const Tensor y = m.forward(f.at("in.x"), &cache, ctx(), extra...);
  EXPECT_TRUE(close_to(y.view(), f.at("out.y"))) << "y";
  m.zero_grad();
  const Tensor dx = m.backward(f.at("in.dout"), cache, ctx());
  EXPECT_TRUE(close_to(dx.view(), f.at("grad.in.x"))) << "dx";
  for (auto& [name, p] : m.named_parameters())
    EXPECT_TRUE(close_to(p->grad.view(), f.at("grad.param." + name))) << "grad of " << name;
  for (auto& [name, b] : m.named_buffers()) {
    if (!f.has("after." + name)) continue;
    EXPECT_TRUE(close_to(b->view(), f.at("after." + name))) << name;
  }
}

void check_case(const std::string& name) {
  SCOPED_TRACE(name);
  const GoldenFixture f("images/" + name);
  const auto& c = f.config;
  const std::string kind = c["module"];
  Rng rng(0);
  if (kind == "Conv2d") {
    const ops::Conv2dOptions p{at(c["stride"], 0),  at(c["stride"], 1),   at(c["padding"], 0),
                               at(c["padding"], 1), at(c["dilation"], 0), at(c["dilation"], 1),
                               c["groups"]};
    Conv2d m(c["in"], c["out"], at(c["kernel"], 0), at(c["kernel"], 1), p, c["bias"], rng);
    check_module(m, f, true);
  } else if (kind == "Conv1d") {
    Conv1d m(c["in"], c["out"], c["kernel"],
             {.stride = c["stride"],
              .padding = c["padding"],
              .dilation = c["dilation"],
              .groups = c["groups"]},
             c["bias"], rng);
    check_module(m, f, true);
  } else if (kind == "MaxPool2d") {
    MaxPool2d m(pool_options(c));
    check_module(m, f, true);
  } else if (kind == "AvgPool2d") {
    AvgPool2d m(pool_options(c));
    check_module(m, f, true);
  } else if (kind == "AdaptiveAvgPool2d") {
    AdaptiveAvgPool2d m(c["out"][0], c["out"][1]);
    check_module(m, f, true);
  } else if (kind == "BatchNorm2d" || kind == "BatchNorm1d") {
    const BatchNormOptions o{.eps = c["eps"], .momentum = c["momentum"], .affine = c["affine"]};
    if (kind == "BatchNorm2d") {
      BatchNorm2d m(c["C"], o);
      check_module(m, f, c["train"]);
    } else {
      BatchNorm1d m(c["C"], o);
      check_module(m, f, c["train"]);
    }
  } else if (kind == "SelfAttention2d") {
    SelfAttention2d m(c["C"], parse_sagan_form(c["form"]), rng);
    Tensor attention;
    check_module(m, f, true, &attention);
    EXPECT_TRUE(close_to(attention.view(), f.at("out.attention"))) << "attention map";
  } else {
    FAIL() << "unknown module " << kind;
  }
}

TEST(ImageLayersGolden, Conv2d) {
  for (const char* name : {"conv2d_3x3_pad1", "conv2d_stride2_dil2", "conv2d_groups2_nobias",
                           "conv2d_depthwise", "conv2d_patch4"})
    check_case(name);
}
TEST(ImageLayersGolden, Conv1d) { check_case("conv1d_stride2_groups2"); }
TEST(ImageLayersGolden, Pooling) {
  for (const char* name : {"maxpool_3s2p1_ceil", "maxpool_2_dil2", "avgpool_3s2p1_exclude",
                           "avgpool_2", "adaptive_avgpool_3x2"})
    check_case(name);
}
TEST(ImageLayersGolden, BatchNorm) {
  for (const char* name : {"batchnorm2d_train", "batchnorm2d_eval", "batchnorm1d_train_noaffine",
                           "batchnorm1d_2d_input"})
    check_case(name);
}
TEST(ImageLayersGolden, SelfAttention2dBothForms) {
  check_case("sagan_paper");
  check_case("sagan_released");
}

TEST(ImageLayers, RejectBadInput) {
  Rng rng(1);
  Conv2d conv(3, 4, 3, 3, {.pad_h = 1, .pad_w = 1}, true, rng);
  ATTN_EXPECT_THROW_MSG(conv.forward(Tensor(Shape{2, 5, 8, 8}), nullptr, ctx()), ShapeError,
                        "Conv2d::forward", "x has shape (2, 5, 8, 8)", "C = 3");
  ATTN_EXPECT_THROW_MSG(Conv2d(3, 4, 3, 3, {.groups = 2}, true, rng), ValueError, "groups = 2");
  Conv2d::Cache empty;
  ATTN_EXPECT_THROW_MSG(conv.backward(Tensor(Shape{2, 4, 8, 8}), empty, ctx()), ValueError,
                        "Conv2d::backward", "cache is empty");
  BatchNorm2d bn(4);
  ATTN_EXPECT_THROW_MSG(bn.forward(Tensor(Shape{2, 4, 3}), nullptr, ctx()), ShapeError,
                        "BatchNorm2d::forward", "(B, C, H, W)");
  ATTN_EXPECT_THROW_MSG(bn.forward(Tensor(Shape{1, 4, 1, 1}), nullptr, ctx()), ValueError,
                        "BatchNorm2d::forward", "more than 1 value per channel",
                        "x has shape (1, 4, 1, 1)");
  ATTN_EXPECT_THROW_MSG(SelfAttention2d(12, SaganForm::kPaper, rng), ValueError, "multiple of 8");
  SelfAttention2d released(16, SaganForm::kReleased, rng);
  ATTN_EXPECT_THROW_MSG(released.forward(Tensor(Shape{1, 16, 5, 6}), nullptr, ctx()), ShapeError,
                        "H and W must be even");
  ATTN_EXPECT_THROW_MSG(parse_sagan_form("big"), ValueError, "paper, released");
  // Flatten (start_dim 1, as PyTorch's): a rank-1 x has no dimension 1; an empty batch keeps its
  // feature count.
  Flatten flatten;
  ATTN_EXPECT_THROW_MSG(flatten.forward(Tensor(Shape{5}), nullptr, ctx()), ShapeError,
                        "Flatten::forward", "rank >= 2, got (5,)");
  EXPECT_EQ(flatten.forward(Tensor(Shape{0, 3, 4}), nullptr, ctx()).shape(), (Shape{0, 12}));
}

TEST(ImageLayers, BatchNormEvaluationUsesRunningStatistics) {
  BatchNorm1d bn(2);
  bn.set_training(false);
  auto buffers = bn.named_buffers();
  buffers[0].second->data()[0] = 3.0f;  // running_mean of channel 0
  buffers[1].second->data()[0] = 4.0f;  // running_var of channel 0
  const Tensor x = Tensor::from_values(Shape{1, 2}, std::vector<float>{5.0f, 1.0f});
  const Tensor y = bn.forward(x, nullptr, ctx());  // B = 1 is fine in evaluation
  EXPECT_NEAR(y(0, 0), (5.0 - 3.0) / std::sqrt(4.0 + 1e-5), 1e-6);
  EXPECT_NEAR(y(0, 1), 1.0 / std::sqrt(1.0 + 1e-5), 1e-6);
  EXPECT_EQ(bn.state_dict().size(),
            5u);  // weight, bias, running_mean, running_var, num_batches_tracked
}

// forward(Tensor&&) hands x to the cache instead of copying it; forward(view) copies. Both, and a
// non-contiguous view (BatchNorm's strided path), give the same outputs and gradients bit for bit.
::testing::AssertionResult exactly(const Tensor& a, const Tensor& b) {
  return testing::all_close<float, float>(a.view(), b.view(), 0.0);
}

template <typename Layer>
void check_owned_input_path(Layer& layer, const Shape& shape, uint64_t seed) {
  Rng rng(seed);
  const Tensor x = testing::random_tensor<float>(shape, rng);
  typename Layer::Cache by_copy, by_move, by_strided;
  const Tensor y = layer.forward(x.view(), &by_copy, ctx());
  const Tensor y_moved = layer.forward(Tensor::copy_of(x.view()), &by_move, ctx());
  const auto strided = testing::strided_copy(x);
  const Tensor y_strided = layer.forward(strided.view, &by_strided, ctx());
  EXPECT_TRUE(exactly(y_moved, y));
  EXPECT_TRUE(exactly(y_strided, y));
  const Tensor dy = testing::random_tensor<float>(y.shape(), rng);
  const Tensor dx = layer.backward(dy, by_copy, ctx());
  EXPECT_TRUE(exactly(layer.backward(dy, by_move, ctx()), dx));
  EXPECT_TRUE(exactly(layer.backward(testing::strided_copy(dy).view, by_strided, ctx()), dx));
}

TEST(ImageLayers, OwnedInputsGoToTheCacheWithTheSameResults) {
  Rng rng(5);
  Conv2d conv(3, 4, 3, 3, {.pad_h = 1, .pad_w = 1}, true, rng);
  check_owned_input_path(conv, Shape{2, 3, 7, 9}, 1);
  BatchNorm2d bn(4);
  check_owned_input_path(bn, Shape{3, 4, 5, 6}, 2);
  BatchNorm1d bn1(4);
  check_owned_input_path(bn1, Shape{5, 4}, 3);
  Activation relu(ActivationKind::kReLU);
  check_owned_input_path(relu, Shape{2, 3, 5, 4}, 4);
  MaxPool2d pool(ops::Pool2dOptions{});
  check_owned_input_path(pool, Shape{2, 3, 6, 8}, 5);
}

// The transformer's layers take owned inputs too (FeedForward passes each intermediate on by
// move); without a cache, Linear reads a contiguous view in place and copies a strided one.
TEST(Layers, OwnedInputsOfLinearDropoutAndFeedForward) {
  Rng rng(6);
  Linear linear(5, 7, true, rng);
  check_owned_input_path(linear, Shape{3, 4, 5}, 7);
  Dropout identity(0.0);
  check_owned_input_path(identity, Shape{3, 4, 5}, 8);
  FeedForward ff(6, 11, ActivationKind::kGELU, 0.0, rng);
  check_owned_input_path(ff, Shape{2, 3, 6}, 9);

  const Tensor x = testing::random_tensor<float>(Shape{4, 5}, rng);
  Linear::Cache cache;
  const Tensor y = linear.forward(x.view(), &cache, ctx());
  EXPECT_TRUE(exactly(linear.forward(x.view(), nullptr, ctx()), y));
  const auto strided = testing::strided_copy(x);
  EXPECT_TRUE(exactly(linear.forward(strided.view, nullptr, ctx()), y));

  Tensor owned = Tensor::copy_of(x.view());
  const float* buffer = owned.data();
  Dropout::Cache dc;
  const Tensor same = identity.forward(std::move(owned), &dc, ctx());
  EXPECT_EQ(same.data(), buffer);  // handed back, not copied
  EXPECT_FALSE(dc.mask.defined());
}

TEST(Layers, TensorReshapeKeepsTheBufferAndChecksTheCount) {
  Tensor t = Tensor::from_values(Shape{2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  const float* buffer = t.data();
  t.reshape(Shape{3, 2});
  EXPECT_EQ(t.data(), buffer);
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_EQ(t(2, 1), 6.0f);
  ATTN_EXPECT_THROW_MSG(t.reshape(Shape{4, 2}), ShapeError, "Tensor::reshape", "(3, 2)");
  Tensor undefined;
  EXPECT_THROW(undefined.reshape(Shape{0}), ShapeError);
}

}  // namespace
}  // namespace attn::nn
