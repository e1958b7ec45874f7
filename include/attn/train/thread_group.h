// SPDX-License-Identifier: MIT
// Data-parallel training inside one process: ranks as threads, each with its own model replica,
// sharing only the sums fit asks for. The in-process counterpart of MPI's ranks for
// FitOptions::data_parallel (docs/distributed.md): the same fit, the same shards, the same steps.
// A small model splits poorly inside each op (a fork/join per op, activations moving between
// cores); a replica per thread keeps its activations on its core and meets the others once a step.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>

#include "attn/train/fit.h"

namespace attn::train {

class ThreadGroup {
 public:
  explicit ThreadGroup(int size);
  ~ThreadGroup();
  ThreadGroup(const ThreadGroup&) = delete;
  ThreadGroup& operator=(const ThreadGroup&) = delete;

  int size() const;
  // The DataParallel of rank r (0 <= r < size) for FitOptions::data_parallel. Its sums add the
  // ranks' values element by element in rank order ((x₀ + x₁) + x₂ ...), so every rank gets the
  // same bits whatever the threads' timing. Every rank must make the same sums in the same order
  // with spans of the same length; otherwise every rank's sum throws ValueError naming the lengths.
  // The group must outlive the DataParallel.
  DataParallel member(int rank);
  // Makes every sum waiting now, and every later one, throw Error("... <why>"): for a rank that
  // failed, so that the others do not wait for it forever.
  void abort(const std::string& why);

  // The sums themselves (what member's functions call).
  void allreduce_sum(int rank, std::span<float> values);
  void allreduce_sum(int rank, std::span<double> values);

  struct Shared;  // the barrier and what the ranks publish (src/train/thread_group.cc)

 private:
  std::unique_ptr<Shared> s_;
};

// Runs fn(rank, data_parallel) for rank = 0 .. size-1, rank 0 on the calling thread and the others
// on threads of their own, and returns when all have. If any throws, the others' sums throw too
// (ThreadGroup::abort), and the first exception that is not such a follow-on is rethrown here.
void run_data_parallel(int size, const std::function<void(int rank, const DataParallel& dp)>& fn);

}  // namespace attn::train
