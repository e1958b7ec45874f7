// SPDX-License-Identifier: MIT
// The delayed-recall experiment (examples/experiments/recall.h): the batch is laid out as
// documented, both models train through train::fit, and the transformer learns a short distance.
#include <gtest/gtest.h>

#include "recall.h"
#include "testing/testing.h"

namespace attn::examples {
namespace {

TEST(Recall, BatchShowsTheKeyThenDistractorsThenTheQuery) {
  RecallConfig c;
  c.distance = 7;
  Rng rng(1);
  std::vector<int64_t> x, y;
  make_recall_batch(c, rng, 5, x, y);
  ASSERT_EQ(x.size(), 5u * 8u);
  for (int64_t b = 0; b < 5; ++b) {
    const int64_t* row = x.data() + b * 8;
    EXPECT_EQ(row[0], y[static_cast<size_t>(b)]);
    EXPECT_LT(row[0], c.keys);
    for (int t = 1; t < 7; ++t) {
      EXPECT_GE(row[t], c.keys);
      EXPECT_LT(row[t], c.keys + c.distractors);
    }
    EXPECT_EQ(row[7], c.keys + c.distractors);
  }
}

TEST(Recall, TransformerLearnsAShortDistanceAndBothModelsReport) {
  RecallConfig c;
  c.distance = 6;
  c.d_model = 32;
  c.batch = 16;
  c.steps = 120;
  c.eval_every = 60;
  c.eval_batch = 64;
  c.test_batch = 128;
  Context ctx(ContextOptions{.num_threads = 2});
  const auto t = run_recall(RecallModelKind::kTransformer, c, ctx, false);
  EXPECT_GT(t.test_accuracy, 0.9);
  EXPECT_EQ(t.steps, 120);
  const auto l = run_recall(RecallModelKind::kLSTM, c, ctx, false);
  EXPECT_EQ(l.steps, 120);
  EXPECT_GT(l.parameters, 0.8 * static_cast<double>(t.parameters));  // about the same size
  EXPECT_LT(l.parameters, 1.2 * static_cast<double>(t.parameters));
  EXPECT_GE(l.test_accuracy, 0.0);
  EXPECT_TRUE(std::isfinite(l.final_loss));
  ATTN_EXPECT_THROW_MSG(run_recall(RecallModelKind::kLSTM, RecallConfig{.distance = 0}, ctx, false),
                        ValueError, "distance must be >= 1");
}

}  // namespace
}  // namespace attn::examples
