// SPDX-License-Identifier: MIT
// The fused attention backward's choice of form (attention_backward.cc), and the knob tests use to
// run either form on any shape.
#pragma once

#include <atomic>
#include <cstdint>

namespace attn::internal {

// One fused pass (5 tile products) when no dBias is asked for and there are at least this many
// (batch, kv head, dilation class) tasks to share out, else two passes (7 products, parallel over
// key blocks, then query blocks). A rule on the shape alone, so a result never depends on the
// thread count: 8 tasks keep 8 threads busy, 4 each on 2 cores.
inline constexpr int64_t kFusedBackwardMinTasks = 8;

// The threshold in force: kFusedBackwardMinTasks, or what a test set (0: fused whenever there is
// no dBias; INT64_MAX: always two passes).
inline std::atomic<int64_t> g_fused_backward_min_tasks{kFusedBackwardMinTasks};
struct ScopedFusedBackwardMinTasks {
  int64_t saved;
  explicit ScopedFusedBackwardMinTasks(int64_t tasks)
      : saved(g_fused_backward_min_tasks.exchange(tasks)) {}
  ~ScopedFusedBackwardMinTasks() { g_fused_backward_min_tasks = saved; }
  ScopedFusedBackwardMinTasks(const ScopedFusedBackwardMinTasks&) = delete;
  ScopedFusedBackwardMinTasks& operator=(const ScopedFusedBackwardMinTasks&) = delete;
};

}  // namespace attn::internal
