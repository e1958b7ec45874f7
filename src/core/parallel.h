// SPDX-License-Identifier: MIT
// parallel_for over independent tasks with a fixed (static) partition, so which worker computes
// which task never depends on timing: results are bitwise identical for any thread count as long as
// each task's arithmetic does not depend on the worker. Internal header (src/ only).
#pragma once

#include <omp.h>

#include <cstdint>
#include <exception>
#include <mutex>

#include "attn/context.h"

namespace attn::internal {

// fn(task, worker) for task in [0, n). Exceptions inside tasks are rethrown after the loop.
template <typename F>
void parallel_for(const Context& ctx, int64_t n, F&& fn) {
  const int threads =
      static_cast<int>(std::min<int64_t>(ctx.num_threads(), std::max<int64_t>(n, 1)));
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mutex;
#pragma omp parallel for schedule(static) num_threads(threads)
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

}  // namespace attn::internal
