// SPDX-License-Identifier: MIT
// train::fit: the one training loop every experiment uses. The caller supplies the data (a batch
// per step) and the loss with its gradients (forward + backward of its model: there is no tape);
// fit does the rest: zero_grad, clipping, the optimiser step on a warm-up + cosine schedule,
// held-out evaluation, a progress bar, CSV metrics, checkpoints every N steps and resuming from
// one.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "attn/nn/module.h"
#include "attn/train/optim.h"

namespace attn::train {

// What one training step measured. correct/count: optional token or example counts for an accuracy.
struct StepResult {
  double loss = 0.0;
  int64_t correct = 0, count = 0;
};

// Data-parallel training (docs/distributed.md): every rank of a job runs train_step on its own
// shard of the global batch (its loss the mean over that shard; shards of equal size), and fit
// averages the gradients over the ranks, in buckets, before clipping and the optimiser step, so
// that every rank takes the same step. The reported loss and counts are the ranks' average and
// sum; only rank 0 draws the progress bar and writes the CSV and the checkpoints (any number of
// ranks can resume from one). train does not depend on MPI: the sums come in as functions, e.g.
// attn::dist::Communicator::allreduce_sum.
struct DataParallel {
  int rank = 0, size = 1;                               // size 1: one process, nothing reduced
  std::function<void(std::span<float>)> allreduce_sum;  // in place, over every rank
  std::function<void(std::span<double>)> allreduce_sum_double;
  int64_t bucket_floats = int64_t{1} << 20;  // gradients are summed about this many at a time
};

struct FitOptions {
  int64_t steps = 1000;            // total optimiser steps (a resumed run continues up to this)
  double lr = 1e-3, min_lr = 0.0;  // peak and final learning rate of the schedule
  int64_t warmup = 0;              // linear warm-up steps, in [0, steps]
  double clip = 0.0;               // gradient-norm clipping; 0 = off
  int64_t eval_every = 0;          // steps between evaluations (0: only after the last step)
  double target_metric = 0.0;      // stop after an evaluation whose metric reaches this (0: never)
  int64_t checkpoint_every = 0;    // steps between checkpoints (0: only after the last step)
  std::string checkpoint_path;     // "" = no checkpoints
  bool resume = false;  // start from checkpoint_path if it exists (model, optimiser, step)
  std::map<std::string, std::string> checkpoint_metadata;  // saved with every checkpoint
  std::string csv_path;  // "" = no CSV; rows: step, lr, loss, grad_norm, train_accuracy, eval
  bool progress = true;  // a progress bar on progress_out
  // Threads for clipping and the optimiser step (the model's ops use the context train_step
  // passes them); null: thread_context().
  const Context* context = nullptr;
  std::ostream* progress_out = &std::cerr;
  DataParallel data_parallel;
};

struct FitResult {
  int64_t first_step = 0;      // > 0 when resumed from a checkpoint
  int64_t steps = 0;           // steps completed in total (first_step + those run now)
  double seconds = 0.0;        // wall time of the steps run now
  double step_seconds = 0.0;   // of which in training steps (zero_grad, train_step, clipping, the
                               // optimiser): no evaluation, CSV or checkpoint
  std::vector<double> losses;  // per step run now
  std::vector<int64_t> eval_steps;   // steps after which evaluate ran
  std::vector<double> eval_metrics;  // what it returned
  double last_eval = std::nan("");   // NaN if evaluate never ran
  bool reached_target = false;
};

// Called after every step: step (1-based), lr, loss, grad norm (before clipping), eval metric or
// NaN.
struct StepInfo {
  int64_t step;
  double lr, loss, grad_norm, eval;
};

// The loop. train_step(step) draws its batch, runs forward and backward of the model (gradients
// accumulate into the model's parameters, which fit has zeroed) and returns the loss.
// evaluate(step), optional, returns a held-out metric where higher is better (accuracy). For a
// resumed run to repeat the uninterrupted one bit for bit, make the batch a function of the step
// (e.g. Rng(seed + step)).
FitResult fit(nn::Module& model, Optimizer& optimizer, const FitOptions& options,
              const std::function<StepResult(int64_t step)>& train_step,
              const std::function<double(int64_t step)>& evaluate = {},
              const std::function<void(const StepInfo&)>& on_step = {});

// The same with the data set and the loss apart: next_batch(step) -> Batch, loss_and_grad(batch).
template <typename Batch>
FitResult fit(nn::Module& model, Optimizer& optimizer, const FitOptions& options,
              const std::function<Batch(int64_t step)>& next_batch,
              const std::function<StepResult(const Batch& batch)>& loss_and_grad,
              const std::function<double(int64_t step)>& evaluate = {},
              const std::function<void(const StepInfo&)>& on_step = {}) {
  return fit(
      model, optimizer, options, [&](int64_t step) { return loss_and_grad(next_batch(step)); },
      evaluate, on_step);
}

}  // namespace attn::train
