// SPDX-License-Identifier: MIT
// Losses and optimisers against PyTorch (tests/golden/nn), schedule shape, progress bar and CSV.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "attn/attn.h"
#include "core/parallel.h"
#include "testing/op_case.h"

namespace attn::train {
namespace {

using attn::testing::all_close;
using attn::testing::bitwise_equal;
using attn::testing::golden_path;

Context& ctx() {
  static Context c(ContextOptions{.num_threads = 2});
  return c;
}

TEST(CrossEntropy, MatchesPyTorchWithIgnoreIndexAndLabelSmoothing) {
  const auto f = io::read_safetensors(golden_path("nn/cross_entropy.safetensors"));
  const Tensor& logits = f.tensors.at("in.logits");
  std::vector<int64_t> targets;
  for (float t : f.tensors.at("in.targets").values()) targets.push_back(static_cast<int64_t>(t));
  Tensor d(logits.shape());
  const auto r = cross_entropy(logits, targets, d.view(), -100, 0.1);
  EXPECT_NEAR(r.loss, static_cast<double>(f.tensors.at("out.loss").data()[0]), 1e-6);
  EXPECT_EQ(r.count, 5);
  EXPECT_TRUE((all_close<float, float>(d.view(), f.tensors.at("grad.in.logits").view(), 1e-7)));
  for (int64_t v = 0; v < 5; ++v) EXPECT_EQ(d(2, v), 0.0f);  // the ignored row
}

TEST(CrossEntropy, RejectsBadTargetsAndShapes) {
  const Tensor logits(Shape{2, 3});
  ATTN_EXPECT_THROW_MSG(cross_entropy(logits, std::vector<int64_t>{0, 3}, TensorView()), ValueError,
                        "target 1 is 3, outside [0, 3)");
  ATTN_EXPECT_THROW_MSG(cross_entropy(logits, std::vector<int64_t>{0}, TensorView()), ShapeError,
                        "got 1 targets");
  ATTN_EXPECT_THROW_MSG(cross_entropy(logits, std::vector<int64_t>{0, 1}, TensorView(), -100, 1.0),
                        ValueError, "label_smoothing");
}

TEST(MseLoss, ValueAndGradient) {
  const Tensor p = Tensor::from_values(Shape{2, 2}, std::vector<float>{1, 2, 3, 4});
  const Tensor t = Tensor::from_values(Shape{2, 2}, std::vector<float>{1, 0, 3, 2});
  Tensor d(Shape{2, 2});
  EXPECT_DOUBLE_EQ(mse_loss(p, t, d.view()), 2.0);  // (0 + 4 + 0 + 4) / 4
  EXPECT_FLOAT_EQ(d(0, 1), 1.0f);                   // 2·2/4
  EXPECT_THROW(mse_loss(p, Tensor(Shape{4}), TensorView()), ShapeError);
}

// Linear(4, 3) with loss Σ y², three optimiser steps, against torch.optim (same hyper-parameters).
void run_three_steps(const std::string& kind) {
  const auto f = io::read_safetensors(golden_path("nn/optimizers.safetensors"));
  Rng rng(0);
  nn::Linear m(4, 3, true, rng);
  std::map<std::string, Tensor> init;
  for (const char* p : {"weight", "bias"})
    init.emplace(p, Tensor::copy_of(f.tensors.at(kind + ".init." + p).view()));
  m.load_state_dict(init);
  std::unique_ptr<Optimizer> opt;
  if (kind == "adamw") {
    opt = std::make_unique<AdamW>(m, 0.9, 0.98, 1e-8, 0.1);
  } else {
    opt = std::make_unique<Sgd>(m, 0.9, 0.01);
  }
  const Tensor& x = f.tensors.at(kind + ".x");
  for (int step = 0; step < 3; ++step) {
    nn::Linear::Cache cache;
    const Tensor y = m.forward(x, &cache, ctx());
    Tensor dy = Tensor::copy_of(y.view());
    for (float& v : dy.values()) v *= 2.0f;
    m.zero_grad();
    m.backward(dy, cache, ctx());
    opt->step(kind == "adamw" ? 0.01 : 0.05);
  }
  for (const char* p : {"weight", "bias"}) {
    SCOPED_TRACE(kind + "." + p);
    EXPECT_TRUE((all_close<float, float>(m.parameter(p).value.view(),
                                         f.tensors.at(kind + ".final." + p).view(), 1e-5)));
  }
}

TEST(Optimizers, AdamWMatchesTorch) { run_three_steps("adamw"); }
TEST(Optimizers, SgdWithMomentumMatchesTorch) { run_three_steps("sgd"); }

TEST(Optimizers, ClipGradNormScalesToTheLimit) {
  Rng rng(0);
  nn::Linear m(2, 1, false, rng);
  auto g = m.parameter("weight").grad.values();
  ASSERT_EQ(g.size(), 2u);
  g[0] = 3.0f;
  g[1] = 4.0f;
  EXPECT_NEAR(clip_grad_norm(m, 1.0), 5.0, 1e-12);
  EXPECT_NEAR(g[0], 0.6f, 1e-6);
  EXPECT_NEAR(clip_grad_norm(m, 10.0), 1.0, 1e-5);  // below the limit: unchanged
  EXPECT_NEAR(g[1], 0.8f, 1e-6);
}

// Clipping and both optimisers split the parameters into chunks of 8192 elements run in parallel:
// three threads (all chunks really in parallel) give the same bits as one, and the chunked
// clipping norm equals the plain one.
TEST(Optimizers, SameBitsForOneAndThreeThreads) {
  for (const std::string kind : {"adamw", "sgd"}) {
    std::vector<Tensor> finals;
    std::vector<double> norms;
    for (int threads : {1, 3}) {
      Context ctx(ContextOptions{.num_threads = threads});
      const internal::ScopedMinWorkPerThread all_parallel(threads > 1 ? 0.0 : 1e30);
      Rng rng(5);
      nn::Linear m(150, 130, true, rng);  // 19500 weights: three chunks, and a bias
      std::unique_ptr<Optimizer> opt;
      if (kind == "adamw")
        opt = std::make_unique<AdamW>(m, 0.9, 0.98, 1e-8, 0.1);
      else
        opt = std::make_unique<Sgd>(m, 0.9, 0.01);
      for (int step = 0; step < 3; ++step) {
        Rng g(100 + step);
        for (auto& [name, p] : m.named_parameters())
          for (float& v : p->grad.values()) v = static_cast<float>(g.normal());
        norms.push_back(clip_grad_norm(m, 50.0, ctx));
        opt->step(0.01, ctx);
      }
      finals.push_back(Tensor::copy_of(m.parameter("weight").value.view()));
    }
    EXPECT_TRUE(bitwise_equal(finals[0], finals[1])) << kind;
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(norms[i], norms[i + 3]) << kind;
    // The first norm against a plain double sum of the same gradients.
    Rng rng(5);
    nn::Linear m(150, 130, true, rng);
    Rng g(100);
    double sq = 0.0;
    for (auto& [name, p] : m.named_parameters())
      for (float& v : p->grad.values()) {
        v = static_cast<float>(g.normal());
        sq += static_cast<double>(v) * static_cast<double>(v);
      }
    EXPECT_NEAR(norms[0], std::sqrt(sq), 1e-9 * std::sqrt(sq)) << kind;
  }
}

// AdamW's SIMD loop (train/optim_kernels.cc) against the plain double loop, written out here, on
// every SIMD target: the same bits, for a tensor whose length leaves a tail on every vector width
// (37 × 29 weights) and over steps with weight decay. A target that fused the multiply-adds, or
// reordered them, would differ in the last bits within a few steps.
TEST(Optimizers, AdamWGivesThePlainLoopsBitsOnEverySimdTarget) {
  constexpr double kBeta1 = 0.9, kBeta2 = 0.98, kEps = 1e-8, kDecay = 0.1;
  constexpr int kSteps = 4;
  for (const std::string& target : ops::available_simd_targets()) {
    SCOPED_TRACE(target);
    ops::set_simd_target(target);
    Rng rng(7);
    nn::Linear m(37, 29, true, rng);
    std::vector<float> w(m.weight().value.values().begin(), m.weight().value.values().end());
    std::vector<float> mom(w.size(), 0.0f), var(w.size(), 0.0f);
    AdamW opt(m, kBeta1, kBeta2, kEps, kDecay);
    for (int step = 1; step <= kSteps; ++step) {
      Rng g(200 + static_cast<uint64_t>(step));
      for (auto& [name, p] : m.named_parameters())
        for (float& v : p->grad.values()) v = static_cast<float>(g.normal());
      const double lr = 0.01 * step;
      opt.step(lr, ctx());
      const double c1 = 1.0 - std::pow(kBeta1, step), c2 = 1.0 - std::pow(kBeta2, step);
      const auto grad = m.weight().grad.values();
      for (size_t k = 0; k < w.size(); ++k) {
        const auto gk = static_cast<double>(grad[k]);
        const double mk = kBeta1 * static_cast<double>(mom[k]) + (1.0 - kBeta1) * gk;
        const double vk = kBeta2 * static_cast<double>(var[k]) + (1.0 - kBeta2) * gk * gk;
        mom[k] = static_cast<float>(mk);
        var[k] = static_cast<float>(vk);
        const double wk = static_cast<double>(w[k]) * (1.0 - lr * kDecay);
        w[k] = static_cast<float>(wk - lr * (mk / c1) / (std::sqrt(vk / c2) + kEps));
      }
    }
    const auto got = m.weight().value.values();
    ASSERT_EQ(got.size(), w.size());
    EXPECT_EQ(std::memcmp(got.data(), w.data(), w.size() * sizeof(float)), 0);
  }
  ops::set_simd_target("");
}

TEST(Schedule, WarmupThenCosineToMin) {
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(0, 10, 110, 1.0, 0.1), 0.1);
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(9, 10, 110, 1.0, 0.1), 1.0);
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(10, 10, 110, 1.0, 0.1), 1.0);
  EXPECT_NEAR(warmup_cosine_lr(60, 10, 110, 1.0, 0.1), 0.55, 1e-12);  // half way: the mean
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(500, 10, 110, 1.0, 0.1), 0.1);
  EXPECT_THROW(warmup_cosine_lr(0, 20, 10, 1.0), ValueError);
}

TEST(Progress, CsvHasHeaderAndRowsAndBarShowsRateAndEta) {
  const std::string path = ::testing::TempDir() + "/m.csv";
  {
    CsvLog csv(path, {"step", "loss"});
    csv.row({1, 0.5});
    EXPECT_THROW(csv.row({1}), ValueError);
  }
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str(), "step,loss\n1,0.5\n");
  std::ostringstream out;
  ProgressBar bar(out, 10, true, 0.0);
  bar.update(5, 1.25, 0.5);
  bar.finish();
  EXPECT_NE(out.str().find("5/10"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("loss 1.2500"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("ETA"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace attn::train
