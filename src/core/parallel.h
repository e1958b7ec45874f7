// SPDX-License-Identifier: MIT
// parallel_for over independent tasks. Every task owns its outputs and its arithmetic never depends
// on the worker that runs it (a worker's scratch is only ever read after the same task wrote it),
// so results are bitwise identical for any thread count and any assignment of tasks to workers.
// Workers take runs of consecutive tasks from a shared counter (OpenMP dynamic schedule): on a
// shared machine one core is often slower than the other, and a static split left the fast one
// waiting (2 threads at N = 1024: 1.2x one thread with a static split). Runs of consecutive tasks
// keep the forward's "prefetch my next task" right most of the time. Internal header (src/ only).
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <utility>

#include "attn/context.h"

namespace attn::internal {

// Work below which a second thread costs more than it saves, in multiply-adds (or comparable
// element operations): waking the pool and joining it takes a few microseconds, the time of ~1e4
// multiply-adds on one core. An estimate, not a tuned value: the small layers of `attn train
// reverse` (bench/bench_small) all sit well above or well below it.
inline constexpr double kMinWorkPerThread = 2.0e4;
// The threshold in force: kMinWorkPerThread, or what a test set (ScopedMinWorkPerThread) so that
// small shapes run on several threads too and their results can be compared with one thread's.
inline std::atomic<double> g_min_work_per_thread{kMinWorkPerThread};
struct ScopedMinWorkPerThread {
  double saved;
  explicit ScopedMinWorkPerThread(double work) : saved(g_min_work_per_thread.exchange(work)) {}
  ~ScopedMinWorkPerThread() { g_min_work_per_thread = saved; }
};

// Threads worth using for n tasks of `work_per_task` each (multiply-adds): at most the context's,
// at most n, and no more than give each thread the threshold above. Which worker runs which task
// still never matters for the result (tasks own their outputs).
inline int threads_for(const Context& ctx, int64_t n, double work_per_task) {
  const double min_work = std::max(g_min_work_per_thread.load(), 1e-30);
  const double by_work = std::min(static_cast<double>(n) * work_per_task / min_work, 1e9);
  const int64_t cap = std::min<int64_t>(ctx.num_threads(), std::max<int64_t>(n, 1));
  return static_cast<int>(std::clamp<int64_t>(static_cast<int64_t>(by_work), 1, cap));
}

// fn(task, worker) for task in [0, n), on up to `threads` workers. Exceptions inside tasks are
// rethrown after the loop.
template <typename F>
void parallel_for_threads(int threads, int64_t n, F&& fn) {
  threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(n, 1)));
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mutex;
  // About 8 runs per worker: few enough counter hits, small enough to even out an uneven machine.
  const int64_t run = std::max<int64_t>(1, n / (8 * static_cast<int64_t>(threads)));
#pragma omp parallel for schedule(dynamic, run) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) {
    try {
      fn(i, omp_get_thread_num());
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

// All of the context's threads (for tasks that are each large: attention blocks).
template <typename F>
void parallel_for(const Context& ctx, int64_t n, F&& fn) {
  parallel_for_threads(ctx.num_threads(), n, std::forward<F>(fn));
}

// Only as many threads as the work pays for: n tasks of about `work_per_task` multiply-adds each.
template <typename F>
void parallel_for(const Context& ctx, int64_t n, double work_per_task, F&& fn) {
  parallel_for_threads(threads_for(ctx, n, work_per_task), n, std::forward<F>(fn));
}

}  // namespace attn::internal
