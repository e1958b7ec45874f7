// SPDX-License-Identifier: MIT
// The toy sequence tasks (examples/sequence_tasks) on train::fit: copy and reverse learn in a short
// configuration, a seeded run repeats bit for bit, and its checkpoint round-trips.
#include <gtest/gtest.h>

#include <cstring>

#include "attn/train/checkpoint.h"
#include "sequence_task.h"

namespace attn::examples {
namespace {

Context& ctx() {
  static Context c(ContextOptions{.num_threads = 2});
  return c;
}

SequenceTaskConfig small_config(SequenceTask task) {
  SequenceTaskConfig c;
  c.task = task;
  c.vocab = 8;
  c.seq_len = 8;
  c.d_model = 32;
  c.nhead = 2;
  c.dim_feedforward = 64;
  c.num_layers = 2;
  c.batch = 32;
  c.steps = 600;
  c.warmup = 30;
  c.eval_every = 25;
  return c;
}

TEST(SequenceTask, CopyAndReverseReach99PercentTokenAccuracy) {
  for (auto task : {SequenceTask::kCopy, SequenceTask::kReverse}) {
    SCOPED_TRACE(sequence_task_name(task));
    const auto c = small_config(task);
    Rng rng(c.seed);
    SequenceModel model(c, rng);
    train::AdamW opt(model, 0.9, 0.98, 1e-9, c.weight_decay);
    const auto r = train_sequence_task(c, model, opt, ctx());
    EXPECT_GE(r.last_eval, 0.99) << "after " << r.steps << " steps";
    EXPECT_LT(r.losses.back(), r.losses.front() / 2);
  }
}

TEST(SequenceTask, SameSeedSameRunBitForBitAndCheckpointRoundTrip) {
  auto c = small_config(SequenceTask::kReverse);
  c.steps = 20;
  c.warmup = 5;
  c.target_accuracy = 0;
  std::vector<double> losses[2];
  const std::string path = ::testing::TempDir() + "/ckpt.safetensors";
  for (int run = 0; run < 2; ++run) {
    Rng rng(c.seed);
    SequenceModel model(c, rng);
    train::AdamW opt(model, 0.9, 0.98, 1e-9, c.weight_decay);
    losses[run] = train_sequence_task(c, model, opt, ctx()).losses;
    if (run == 0) train::save_checkpoint(path, model, &opt, 20, {{"note", "test"}});
    if (run == 1) {
      Rng other(99);
      SequenceModel loaded(c, other);
      train::AdamW loaded_opt(loaded, 0.9, 0.98, 1e-9, c.weight_decay);
      EXPECT_EQ(train::load_checkpoint(path, loaded, &loaded_opt), 20);
      EXPECT_EQ(loaded_opt.steps(), 20);
      for (auto& [name, p] : model.named_parameters()) {
        const auto& q = loaded.parameter(name);
        EXPECT_EQ(
            std::memcmp(p->value.data(), q.value.data(), static_cast<size_t>(p->value.numel()) * 4),
            0)
            << name;
      }
    }
  }
  ASSERT_EQ(losses[0].size(), 20u);
  for (size_t i = 0; i < losses[0].size(); ++i)
    EXPECT_EQ(losses[0][i], losses[1][i]) << "step " << i;
}

}  // namespace
}  // namespace attn::examples
