// SPDX-License-Identifier: MIT
// train::ThreadGroup and run_data_parallel: sums in rank order on every rank, mismatched spans and
// a failing rank end the group with an error instead of a hang, and fit over two thread ranks takes
// exactly the steps of one process that computes the same two half-batch shards.
#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>

#include "attn/attn.h"
#include "testing/op_case.h"
#include "testing/testing.h"

namespace attn::train {
namespace {

// Values whose float sum depends on the order: (1e8 − 1e8) + 3 is 3, (3 − 1e8) + 1e8 is 0 or 8.
float value(int rank, size_t i) {
  const float big = 1e8f * static_cast<float>(i % 3 == 0 ? 1 : -1);
  return rank == 0 ? big : rank == 1 ? -big : 1.0f + static_cast<float>(i % 7);
}

TEST(ThreadGroup, SumsInRankOrderOnEveryRank) {
  constexpr int kRanks = 3;
  constexpr size_t kN = 1001;  // not a multiple of the ranks: uneven shares
  std::vector<std::vector<float>> got(kRanks);
  std::vector<std::vector<double>> got_double(kRanks);
  run_data_parallel(kRanks, [&](int rank, const DataParallel& dp) {
    EXPECT_EQ(dp.size, kRanks);
    EXPECT_EQ(dp.rank, rank);
    auto& v = got[static_cast<size_t>(rank)];
    auto& d = got_double[static_cast<size_t>(rank)];
    for (int round = 0; round < 3; ++round) {  // the group is reusable
      v.resize(kN);
      d.resize(kN);
      for (size_t i = 0; i < kN; ++i) {
        v[i] = value(rank, i);
        d[i] = static_cast<double>(rank + 1) * 0.1 + static_cast<double>(i);
      }
      dp.allreduce_sum(v);
      dp.allreduce_sum_double(d);
    }
  });
  for (size_t i = 0; i < kN; ++i) {
    const float want = (value(0, i) + value(1, i)) + value(2, i);
    const double want_double = ((0.1 + static_cast<double>(i)) + (0.2 + static_cast<double>(i))) +
                               (static_cast<double>(3) * 0.1 + static_cast<double>(i));
    for (int r = 0; r < kRanks; ++r) {
      ASSERT_EQ(got[static_cast<size_t>(r)][i], want) << "rank " << r << " element " << i;
      ASSERT_EQ(got_double[static_cast<size_t>(r)][i], want_double) << "rank " << r;
    }
  }
}

TEST(ThreadGroup, SpansOfDifferentLengthsThrowOnEveryRank) {
  std::atomic<int> threw{0};
  ATTN_EXPECT_THROW_MSG(run_data_parallel(3,
                                          [&](int rank, const DataParallel& dp) {
                                            std::vector<float> v(rank == 2 ? 11 : 10, 1.0f);
                                            try {
                                              dp.allreduce_sum(v);
                                            } catch (const ValueError&) {
                                              ++threw;
                                              throw;
                                            }
                                          }),
                        ValueError, "ThreadGroup::allreduce_sum", "10 float, 10 float, 11 float");
  EXPECT_EQ(threw.load(), 3);
}

// A rank that fails before its first sum: the others, already waiting in theirs, are released with
// an error, and the original exception is the one rethrown.
TEST(ThreadGroup, AFailingRankReleasesTheOthers) {
  std::atomic<int> released{0};
  try {
    run_data_parallel(3, [&](int rank, const DataParallel& dp) {
      if (rank == 1) throw std::runtime_error("rank one broke");
      std::vector<double> v(4, 1.0);
      try {
        dp.allreduce_sum_double(v);
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("rank 1: rank one broke"), std::string::npos)
            << e.what();
        ++released;
        throw;
      }
    });
    FAIL() << "run_data_parallel did not rethrow";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "rank one broke");
  }
  EXPECT_EQ(released.load(), 2);
  EXPECT_THROW(ThreadGroup(0), ValueError);
  ThreadGroup g(2);
  EXPECT_THROW(g.member(2), ValueError);
}

// fit over two thread ranks, each on its half of a regression batch, against one process whose step
// runs both halves with their gradients halved (exact: a power of two): averaging g₀ and g₁ after
// summing them gives the bits of ½g₀ + ½g₁ accumulated. Same losses, same weights, bit for bit.
constexpr int64_t kIn = 5, kOut = 3, kHalf = 8;

struct Shard {
  Tensor x, y;
};
Shard shard(int64_t step, int half) {
  Rng rng(5000 + 2 * static_cast<uint64_t>(step) + static_cast<uint64_t>(half));
  Shard s{testing::random_tensor<float>(Shape{kHalf, kIn}, rng), Tensor(Shape{kHalf, kOut})};
  for (int64_t b = 0; b < kHalf; ++b)
    for (int64_t o = 0; o < kOut; ++o)
      for (int64_t i = 0; i < kIn; ++i) s.y(b, o) += s.x(b, i) * static_cast<float>(i - o) * 0.25f;
  return s;
}
// Forward and backward of one shard, its gradient scaled by `scale`; returns its loss.
double run_shard(nn::Linear& m, const Shard& s, float scale, const Context& ctx) {
  nn::Linear::Cache cache;
  const Tensor pred = m.forward(s.x, &cache, ctx);
  Tensor dpred(pred.shape());
  const double loss = mse_loss(pred, s.y, dpred);
  for (float& v : dpred.values()) v *= scale;
  m.backward(dpred, cache, ctx);
  return loss;
}
FitOptions fit_options() {
  FitOptions o;
  o.steps = 25, o.lr = 0.05, o.warmup = 3, o.clip = 0.5, o.progress = false;
  return o;
}

TEST(ThreadGroup, FitOverTwoThreadRanksEqualsTheShardsInOneProcess) {
  const Context one(ContextOptions{.num_threads = 1});
  Rng rng(11);
  nn::Linear single(kIn, kOut, true, rng);
  AdamW single_opt(single);
  const FitResult want = fit(single, single_opt, fit_options(), [&](int64_t s) {
    const double l0 = run_shard(single, shard(s, 0), 0.5f, one);
    const double l1 = run_shard(single, shard(s, 1), 0.5f, one);
    return StepResult{(l0 + l1) / 2, 0, 0};
  });
  std::vector<FitResult> got(2);
  std::vector<Tensor> weights(2);
  run_data_parallel(2, [&](int rank, const DataParallel& dp) {
    const Context ctx(ContextOptions{.num_threads = 1});
    Rng init(11);
    nn::Linear m(kIn, kOut, true, init);
    AdamW opt(m);
    FitOptions o = fit_options();
    o.data_parallel = dp;
    o.context = &ctx;
    got[static_cast<size_t>(rank)] = fit(m, opt, o, [&](int64_t s) {
      return StepResult{run_shard(m, shard(s, rank), 1.0f, ctx), 0, 0};
    });
    weights[static_cast<size_t>(rank)] = Tensor::copy_of(m.weight().value.view());
  });
  for (int rank = 0; rank < 2; ++rank) {
    SCOPED_TRACE(rank);
    EXPECT_EQ(got[static_cast<size_t>(rank)].losses, want.losses);
    EXPECT_TRUE(testing::bitwise_equal(weights[static_cast<size_t>(rank)], single.weight().value));
  }
  EXPECT_LT(want.losses.back(),
            want.losses.front() / 4);  // it learns: the comparison means something
}

}  // namespace
}  // namespace attn::train
