// SPDX-License-Identifier: MIT
// train::fit: the loop's bookkeeping on a small regression (a Linear layer fitting y = x·A): it
// learns, a resumed run equals the uninterrupted one bit for bit, checkpoints land when asked, the
// CSV continues, evaluation stops at the target, and bad options are rejected before any step.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "attn/attn.h"
#include "testing/testing.h"

namespace attn::train {
namespace {

constexpr int64_t kIn = 6, kOut = 3, kBatch = 16;

// Targets from a fixed linear map; the batch of step s depends on s alone.
struct Regression {
  nn::Linear model;
  Tensor A;
  explicit Regression(Rng& rng)
      : model(kIn, kOut, true, rng), A(testing::random_tensor<float>(Shape{kIn, kOut}, rng)) {}

  StepResult step(int64_t s, const Context& ctx) {
    Rng rng(1000 + static_cast<uint64_t>(s));
    Tensor x = testing::random_tensor<float>(Shape{kBatch, kIn}, rng), y(Shape{kBatch, kOut});
    for (int64_t b = 0; b < kBatch; ++b)
      for (int64_t o = 0; o < kOut; ++o)
        for (int64_t i = 0; i < kIn; ++i) y(b, o) += x(b, i) * A(i, o);
    nn::Linear::Cache cache;
    const Tensor pred = model.forward(x, &cache, ctx);
    Tensor dpred(pred.shape());
    const double loss = mse_loss(pred, y, dpred);
    model.backward(dpred, cache, ctx);
    return {loss, 0, 0};
  }
};

Context& ctx() {
  static Context c(ContextOptions{.num_threads = 2});
  return c;
}

FitOptions options(int64_t steps) {
  FitOptions o;
  o.steps = steps, o.lr = 0.05, o.warmup = 5, o.clip = 10.0, o.progress = false;
  return o;
}

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(Fit, LearnsAndReportsEveryStep) {
  Rng rng(1);
  Regression task(rng);
  AdamW opt(task.model);
  int64_t calls = 0;
  const FitResult r = fit(
      task.model, opt, options(200), [&](int64_t s) { return task.step(s, ctx()); }, {},
      [&](const StepInfo& info) { EXPECT_EQ(info.step, ++calls); });
  EXPECT_EQ(r.steps, 200);
  EXPECT_EQ(calls, 200);
  ASSERT_EQ(r.losses.size(), 200u);
  EXPECT_LT(r.losses.back(), r.losses.front() / 20);
  EXPECT_TRUE(std::isnan(r.last_eval));
}

// Runs fit for 40 steps on a fresh model (seed 2), throwing from the step function at step
// stop_after
// (< 0: never) as a killed process would stop. Returns the result (if it finished) and the final
// weights.
struct FitRun {
  FitResult result;
  Tensor weight;
};
FitRun run_fit(FitOptions o, int64_t stop_after) {
  Rng rng(2);
  Regression task(rng);
  AdamW opt(task.model);
  FitRun run;
  try {
    run.result = fit(task.model, opt, o, [&](int64_t s) {
      if (s == stop_after) throw std::runtime_error("interrupted");
      return task.step(s, ctx());
    });
  } catch (const std::runtime_error&) {
  }
  run.weight = Tensor::copy_of(task.model.weight().value.view());
  return run;
}

TEST(Fit, ResumedRunEqualsTheUninterruptedOneBitForBit) {
  const std::string dir = ::testing::TempDir() + "/fit_resume";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const FitRun whole = run_fit(options(40), -1);

  FitOptions o = options(40);
  o.checkpoint_path = dir + "/ckpt.safetensors";
  o.csv_path = dir + "/metrics.csv";
  run_fit(o, 25);  // checkpoint_every = 0: a checkpoint only after the last step
  EXPECT_FALSE(std::filesystem::exists(o.checkpoint_path));
  o.checkpoint_every = 10;
  run_fit(o, 25);  // checkpoints after steps 10 and 20, then killed during step 26
  o.resume = true;
  const FitRun resumed = run_fit(o, -1);
  EXPECT_EQ(resumed.result.first_step, 20);
  EXPECT_EQ(resumed.result.steps, 40);
  ASSERT_EQ(resumed.result.losses.size(), 20u);
  for (size_t i = 0; i < 20; ++i)
    EXPECT_EQ(resumed.result.losses[i], whole.result.losses[20 + i]) << "step " << 21 + i;
  EXPECT_EQ(std::memcmp(whole.weight.data(), resumed.weight.data(),
                        static_cast<size_t>(whole.weight.numel()) * 4),
            0);
  // The CSV has its header once and a row per step run: 25 before the interruption, 20 after the
  // resume.
  const std::string csv = read(o.csv_path);
  EXPECT_EQ(csv.find("step,lr,loss"), 0u);
  EXPECT_EQ(csv.find("step,lr"), csv.rfind("step,lr"));
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 25 + 20);
}

TEST(Fit, EvaluatesOnScheduleAndStopsAtTheTarget) {
  Rng rng(3);
  Regression task(rng);
  AdamW opt(task.model);
  FitOptions o = options(100);
  o.eval_every = 10;
  o.target_metric = 0.5;
  const FitResult r = fit(
      task.model, opt, o, [&](int64_t s) { return task.step(s, ctx()); },
      [](int64_t step) { return step >= 30 ? 0.6 : 0.1; });
  EXPECT_TRUE(r.reached_target);
  EXPECT_EQ(r.steps, 30);
  EXPECT_EQ(r.eval_steps, (std::vector<int64_t>{10, 20, 30}));
  EXPECT_DOUBLE_EQ(r.last_eval, 0.6);
}

TEST(Fit, RejectsBadOptionsBeforeAnyStep) {
  Rng rng(4);
  Regression task(rng);
  AdamW opt(task.model);
  int64_t steps_run = 0;
  auto step = [&](int64_t s) {
    ++steps_run;
    return task.step(s, ctx());
  };
  auto expect_error = [&](FitOptions o, const char* fragment) {
    ATTN_EXPECT_THROW_MSG(fit(task.model, opt, o, step), ValueError, "train::fit", fragment);
  };
  FitOptions o = options(10);
  o.warmup = 11;
  expect_error(o, "warmup must be in [0, steps = 10]");
  o = options(0);
  expect_error(o, "steps must be >= 1");
  o = options(10);
  o.lr = -1;
  expect_error(o, "lr must be > 0");
  o = options(10);
  o.resume = true;
  expect_error(o, "resume needs a checkpoint_path");
  EXPECT_EQ(steps_run, 0);
  ATTN_EXPECT_THROW_MSG(fit(task.model, opt, options(10),
                            [](int64_t) {
                              return StepResult{std::nan(""), 0, 0};
                            }),
                        ValueError, "the loss is nan at step 1");
}

// Data-parallel bookkeeping without MPI: a "rank" whose allreduce adds a copy of its own values,
// as if a second rank had computed the same gradients, must take exactly the steps of one process
// (the average of two equal gradients is the gradient), whatever the bucket size; only rank 0
// writes the CSV; and a data-parallel fit without its reductions is refused.
TEST(Fit, DataParallelAveragesGradientsInBucketsAndOnlyRankZeroWrites) {
  auto run = [](DataParallel dp, const std::string& csv) {
    Rng rng(4);
    Regression task(rng);
    AdamW opt(task.model);
    FitOptions o = options(30);
    o.data_parallel = std::move(dp);
    o.csv_path = csv;
    const FitResult r = fit(task.model, opt, o, [&](int64_t s) { return task.step(s, ctx()); });
    return std::make_pair(r.losses, Tensor::copy_of(task.model.weight().value.view()));
  };
  const auto dir = std::filesystem::temp_directory_path() / "attn_fit_data_parallel";
  std::filesystem::create_directories(dir);
  const auto [one_losses, one_w] = run({}, "");
  int64_t reduced = 0;
  for (const int64_t bucket : {int64_t{1} << 20, int64_t{5}}) {
    for (const int rank : {0, 1}) {
      DataParallel dp;
      dp.rank = rank, dp.size = 2, dp.bucket_floats = bucket;
      dp.allreduce_sum = [&](std::span<float> v) {
        EXPECT_LE(static_cast<int64_t>(v.size()), bucket);
        for (float& x : v) x += x;
        ++reduced;
      };
      dp.allreduce_sum_double = [](std::span<double> v) {
        for (double& x : v) x += x;
      };
      const std::string csv = (dir / ("rank" + std::to_string(rank) + ".csv")).string();
      std::filesystem::remove(csv);
      const auto [losses, w] = run(dp, csv);
      EXPECT_EQ(losses, one_losses) << "bucket " << bucket << " rank " << rank;
      EXPECT_TRUE((testing::all_close<float, float>(w, one_w, 0.0)));
      EXPECT_EQ(std::filesystem::exists(csv), rank == 0);
    }
  }
  EXPECT_GT(reduced, 4 * 30);  // buckets of 5 floats: several reductions per step
  DataParallel missing;
  missing.size = 2;
  EXPECT_THROW(run(missing, ""), ValueError);
  DataParallel bad_rank;
  bad_rank.rank = 2, bad_rank.size = 2;
  EXPECT_THROW(run(bad_rank, ""), ValueError);
}

}  // namespace
}  // namespace attn::train
