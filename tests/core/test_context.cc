// SPDX-License-Identifier: MIT
#include <atomic>
#include <vector>

#include "core/parallel.h"
#include "testing/testing.h"

namespace attn::testing {
namespace {

TEST(Rng, IsReproducibleAndRoughlyNormal) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
  EXPECT_NE(Rng(42).next_u64(), c.next_u64());
  Rng r(7);
  double sum = 0, sq = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const double x = r.normal();
    sum += x;
    sq += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.05);  // 5 standard errors
  EXPECT_NEAR(sq / n, 1.0, 0.05);
  for (int i = 0; i < 1000; ++i) {
    const int64_t k = r.uniform_int(-3, 3);
    EXPECT_GE(k, -3);
    EXPECT_LE(k, 3);
  }
  ATTN_EXPECT_THROW_MSG(r.uniform_int(2, 1), ValueError, "empty range");
}

TEST(Context, ThreadsAndScratch) {
  Context ctx(ContextOptions{.num_threads = 3, .seed = 9});
  EXPECT_EQ(ctx.num_threads(), 3);
  EXPECT_EQ(ctx.seed(), 9u);
  float* p = ctx.scratch(2, 100);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  p[99] = 1.0f;  // usable (ASan checks the size)
  ATTN_EXPECT_THROW_MSG(ctx.scratch(3, 1), ValueError, "worker 3 is out of range");
  ATTN_EXPECT_THROW_MSG(ctx.set_num_threads(-1), ValueError, "thread count");
  EXPECT_GE(Context().num_threads(), 1);
}

TEST(ParallelFor, RunsEveryTaskOnceAndRethrows) {
  for (int threads : {1, 2, 3}) {
    Context ctx(ContextOptions{.num_threads = threads});
    std::vector<std::atomic<int>> hits(101);
    internal::parallel_for(ctx, 101, [&](int64_t i, int worker) {
      EXPECT_GE(worker, 0);
      EXPECT_LT(worker, threads);
      hits[static_cast<size_t>(i)]++;
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    EXPECT_THROW(internal::parallel_for(ctx, 10,
                                        [](int64_t i, int) {
                                          if (i == 7) throw ValueError("task 7");
                                        }),
                 ValueError);
  }
}

}  // namespace
}  // namespace attn::testing

namespace attn {
namespace {

TEST(MemoryBudget, RefusesAllocationsAboveItNamingTheSize) {
  const int64_t saved = memory_budget_bytes();
  EXPECT_GT(saved, 0);
  set_memory_budget_bytes(1 << 20);  // 1 MiB
  try {
    Tensor ok(Shape{1000});  // 4 KB: fine
    EXPECT_EQ(ok.numel(), 1000);
    ATTN_EXPECT_THROW_MSG(Tensor(Shape{1000, 1000}), ValueError, "Tensor",
                          "a tensor of shape (1000, 1000)", "needs 3.8 MiB",
                          "memory budget of 1.0 MiB");
    Context ctx(ContextOptions{.num_threads = 1});
    ATTN_EXPECT_THROW_MSG(ctx.scratch(0, 1 << 20), ValueError, "Context::scratch",
                          "scratch memory");
  } catch (...) {
    set_memory_budget_bytes(saved);
    throw;
  }
  set_memory_budget_bytes(saved);
  ATTN_EXPECT_THROW_MSG(set_memory_budget_bytes(0), ValueError, "must be > 0");
}

}  // namespace
}  // namespace attn
