// SPDX-License-Identifier: MIT
// Positional modules PyTorch has no module for (RoPE, T5 bias, learned table, ALiBi in the
// encoder): their defining properties, and gradients against central differences. Modules run in
// float32, so differences use a large step (h = 1e-2 on O(1) values): truncation O(h²) ≈ 1e-4 and
// rounding ≈ 1e-7·|loss|/h stay well below the 2e-3 relative tolerance while a wrong gradient (a
// sign, a missing term) is far outside it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>

#include "attn/attn.h"
#include "testing/testing.h"

namespace attn::nn {
namespace {

using attn::testing::random_tensor;

Context& ctx() {
  static Context c(ContextOptions{.num_threads = 2});
  return c;
}

double weighted_sum(const Tensor& y, const Tensor& w) {
  double s = 0.0;
  for (int64_t i = 0; i < y.numel(); ++i)
    s += static_cast<double>(y.data()[i]) * static_cast<double>(w.data()[i]);
  return s;
}

// Checks analytic[i] against (loss(x_i + h) - loss(x_i - h)) / 2h for a few indices of `x`.
void expect_matches_differences(float* x, const float* analytic, int64_t n,
                                const std::function<double()>& loss) {
  for (int64_t i = 0; i < n; i += std::max<int64_t>(1, n / 7)) {
    const float saved = x[i];
    const float h = 1e-2f;
    x[i] = saved + h;
    const double up = loss();
    x[i] = saved - h;
    const double down = loss();
    x[i] = saved;
    const double numeric = (up - down) / (2.0 * static_cast<double>(h));
    EXPECT_NEAR(static_cast<double>(analytic[i]), numeric, 2e-3 * std::max(1.0, std::abs(numeric)))
        << "index " << i;
  }
}

TEST(Rope, InverseRotationRestoresAndScoresDependOnlyOnDistance) {
  Rng rng(1);
  for (auto layout : {ops::RopeLayout::kHalf, ops::RopeLayout::kInterleaved}) {
    Tensor x = random_tensor<float>(Shape{1, 2, 9, 8}, rng);
    const Tensor original = Tensor::copy_of(x.view());
    ops::rope_forward(x.view(), 3, ctx(), 10000.0, layout);
    ops::rope_backward(x.view(), 3, ctx(), 10000.0, layout);
    EXPECT_TRUE((attn::testing::all_close<float, float>(x.view(), original.view(), 1e-5)));
    // q at position m and k at n, then both shifted by 4: the dot product is unchanged.
    Tensor q = random_tensor<float>(Shape{1, 1, 1, 8}, rng),
           k = random_tensor<float>(Shape{1, 1, 1, 8}, rng);
    auto score = [&](int64_t m, int64_t n) {
      Tensor a = Tensor::copy_of(q.view()), b = Tensor::copy_of(k.view());
      ops::rope_forward(a.view(), m, ctx(), 10000.0, layout);
      ops::rope_forward(b.view(), n, ctx(), 10000.0, layout);
      return weighted_sum(a, b);
    };
    EXPECT_NEAR(score(2, 7), score(6, 11), 1e-5);
    EXPECT_GT(std::abs(score(2, 7) - score(2, 3)), 1e-3);  // but it does depend on the distance
  }
  Tensor odd(Shape{1, 1, 2, 3});
  ATTN_EXPECT_THROW_MSG(ops::rope_forward(odd.view(), 0, ctx()), ValueError,
                        "head size must be even");
}

TEST(MultiheadAttention, RopeGradientsMatchDifferences) {
  Rng rng(2);
  RopeConfig rope;
  rope.enabled = true;
  MultiheadAttention m(8, 2, true, rng, rope);
  Tensor x = random_tensor<float>(Shape{2, 5, 8}, rng);
  const Tensor w = random_tensor<float>(Shape{2, 5, 8}, rng);
  AttentionOptions opts;
  opts.start_pos = 3;
  auto loss = [&] { return weighted_sum(m.forward(x, x, x, opts, nullptr, ctx()), w); };
  MultiheadAttention::Cache cache;
  (void)m.forward(x, x, x, opts, &cache, ctx());
  const auto g = m.backward(w, cache, ctx());
  expect_matches_differences(x.data(), g.dquery.data(), x.numel(), loss);
  Parameter& in_proj = m.parameter("in_proj_weight");
  expect_matches_differences(in_proj.value.data(), in_proj.grad.data(), in_proj.value.numel(),
                             loss);
}

TEST(RelativePositionBias, LooksUpEachDistanceBucketAndSendsGradientsBack) {
  // T != S and a query offset, so that a bucket indexed by the wrong distance (or from the wrong
  // end) shows.
  Rng rng(6);
  RelativePositionBias m(3, rng, false, 8, 16);
  const int64_t T = 4, S = 7, offset = 2;
  const Tensor bias = m.forward(T, S, offset);
  const Tensor& table = m.relative_attention_bias.weight().value;
  Tensor dbias(bias.shape());
  for (int64_t i = 0; i < dbias.numel(); ++i) dbias.data()[i] = static_cast<float>(i % 5) + 1.0f;
  std::vector<double> expected_grad(static_cast<size_t>(table.numel()), 0.0);
  for (int64_t h = 0; h < 3; ++h)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t bucket = ops::t5_relative_position_bucket(s - (t + offset), false, 8, 16);
        EXPECT_EQ(bias(0, h, t, s), table(bucket, h)) << "h=" << h << " t=" << t << " s=" << s;
        expected_grad[static_cast<size_t>(bucket * 3 + h)] +=
            static_cast<double>(dbias(0, h, t, s));
      }
  m.zero_grad();
  m.backward(dbias.view(), offset);
  const float* grad = m.relative_attention_bias.weight().grad.data();
  for (size_t i = 0; i < expected_grad.size(); ++i)
    EXPECT_EQ(static_cast<double>(grad[i]), expected_grad[i]) << i;
}

EncoderModelConfig model_config(PositionalKind kind) {
  EncoderModelConfig c;
  c.layer.d_model = 8;
  c.layer.nhead = 2;
  c.layer.dim_feedforward = 16;
  c.layer.dropout = 0.0;
  c.num_layers = 2;
  c.positional = kind;
  c.max_len = 10;
  return c;
}

TEST(EncoderModel, RelativeBiasAndLearnedTableGradientsMatchDifferences) {
  for (auto kind : {PositionalKind::kRelative, PositionalKind::kLearned}) {
    Rng rng(3);
    EncoderModel m(model_config(kind), rng);
    const Tensor x = random_tensor<float>(Shape{2, 6, 8}, rng);
    const Tensor w = random_tensor<float>(Shape{2, 6, 8}, rng);
    AttentionOptions opts;
    opts.mask.key_lengths = {6, 4};
    auto loss = [&] { return weighted_sum(m.forward(x, opts, nullptr, ctx()), w); };
    EncoderModel::Cache cache;
    (void)m.forward(x, opts, &cache, ctx());
    m.zero_grad();
    (void)m.backward(w, cache, ctx());
    const char* name = kind == PositionalKind::kRelative ? "relative_attention_bias.weight"
                                                         : "pos_embedding.weight";
    SCOPED_TRACE(name);
    Parameter& p = m.parameter(name);
    expect_matches_differences(p.value.data(), p.grad.data(), p.value.numel(), loss);
  }
}

TEST(EncoderModel, AlibiAndSinusoidalChangeTheOutputAndConfigsRoundTrip) {
  Rng rng(4);
  const Tensor x = random_tensor<float>(Shape{1, 5, 8}, rng);
  std::vector<Tensor> outs;
  for (auto kind : {PositionalKind::kNone, PositionalKind::kAlibi, PositionalKind::kSinusoidal}) {
    Rng init(5);  // same weights for every kind
    EncoderModel m(model_config(kind), init);
    outs.push_back(m.forward(x, AttentionOptions{}, nullptr, ctx()));
    const auto again = parse_encoder_config(encoder_config_to_json(m.config()));
    EXPECT_EQ(again.positional, kind);
    EXPECT_EQ(again.layer.d_model, 8);
  }
  EXPECT_GT(attn::testing::max_abs<float>(outs[0].view()), 0.0);
  EXPECT_FALSE((attn::testing::all_close<float, float>(outs[0].view(), outs[1].view(), 1e-4)));
  EXPECT_FALSE((attn::testing::all_close<float, float>(outs[0].view(), outs[2].view(), 1e-4)));
}

TEST(Module, RegistryErrorsAndNonStrictLoads) {
  Rng rng(0);
  Linear m(3, 2, true, rng);
  ATTN_EXPECT_THROW_MSG(m.parameter("weights"), ValueError, "no parameter named 'weights'",
                        "weight, bias");
  std::map<std::string, Tensor> state;
  state.emplace("weight", Tensor(Shape{2, 3}));
  state.emplace("extra", Tensor(Shape{1}));
  ATTN_EXPECT_THROW_MSG(m.load_state_dict(state), ValueError, "missing keys [bias]",
                        "unexpected keys [extra]");
  const auto report = m.load_state_dict(state, false);
  EXPECT_EQ(report.missing_keys, std::vector<std::string>{"bias"});
  EXPECT_EQ(report.unexpected_keys, std::vector<std::string>{"extra"});
  EXPECT_EQ(m.num_parameters(), 8);
  ATTN_EXPECT_THROW_MSG(MultiheadAttention(10, 3, true, rng), ValueError,
                        "must be a positive multiple of num_heads");
  ATTN_EXPECT_THROW_MSG(m.forward(Tensor(Shape{4, 5}), nullptr, ctx()), ShapeError, "(4, 5)",
                        "in_features = 3");
}

TEST(Dropout, SeededTrainingMaskAndIdentityInEval) {
  Dropout a(0.5, 7), b(0.5, 7);
  const Tensor x = Tensor::full(Shape{1000}, 1.0f);
  Dropout::Cache ca, cb;
  const Tensor ya = a.forward(x, &ca, ctx()), yb = b.forward(x, &cb, ctx());
  EXPECT_EQ(std::memcmp(ya.data(), yb.data(), 4000), 0);  // same seed, same mask
  int64_t kept = 0;
  for (float v : ya.values()) {
    EXPECT_TRUE(v == 0.0f || v == 2.0f);
    kept += v != 0.0f;
  }
  EXPECT_NEAR(static_cast<double>(kept), 500.0, 60.0);  // ~4 standard deviations
  const Tensor g = a.backward(x, ca, ctx());
  EXPECT_EQ(std::memcmp(g.data(), ya.data(), 4000), 0);  // the same mask scales the gradient
  a.set_training(false);
  EXPECT_EQ(std::memcmp(a.forward(x, nullptr, ctx()).data(), x.data(), 4000), 0);
}

}  // namespace
}  // namespace attn::nn
