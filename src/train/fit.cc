// SPDX-License-Identifier: MIT
// train::fit (include/attn/train/fit.h).
#include "attn/train/fit.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <optional>

#include "attn/error.h"
#include "attn/train/checkpoint.h"
#include "attn/train/progress.h"

namespace attn::train {

namespace {

void check_options(const FitOptions& o) {
  constexpr const char* fn = "train::fit";
  if (o.steps < 1) fail<ValueError>(fn, "steps must be >= 1, got ", o.steps);
  if (o.warmup < 0 || o.warmup > o.steps)
    fail<ValueError>(fn, "warmup must be in [0, steps = ", o.steps, "], got ", o.warmup);
  if (!(o.lr > 0) || !std::isfinite(o.lr)) fail<ValueError>(fn, "lr must be > 0, got ", o.lr);
  if (!(o.min_lr >= 0) || o.min_lr > o.lr)
    fail<ValueError>(fn, "min_lr must be in [0, lr], got ", o.min_lr);
  if (!(o.clip >= 0)) fail<ValueError>(fn, "clip must be >= 0 (0 = off), got ", o.clip);
  if (o.eval_every < 0 || o.checkpoint_every < 0)
    fail<ValueError>(fn, "eval_every and checkpoint_every must be >= 0");
  if (!(o.target_metric >= 0))
    fail<ValueError>(fn, "target_metric must be >= 0 (0 = never stop early)");
  if (o.resume && o.checkpoint_path.empty()) fail<ValueError>(fn, "resume needs a checkpoint_path");
  const DataParallel& dp = o.data_parallel;
  if (dp.size < 1 || dp.rank < 0 || dp.rank >= dp.size)
    fail<ValueError>(fn, "data_parallel needs 0 <= rank < size, got rank ", dp.rank, " of ",
                     dp.size);
  if (dp.size > 1 && (!dp.allreduce_sum || !dp.allreduce_sum_double))
    fail<ValueError>(fn, "data_parallel over ", dp.size,
                     " ranks needs allreduce_sum and allreduce_sum_double");
  if (dp.bucket_floats < 1) fail<ValueError>(fn, "data_parallel.bucket_floats must be >= 1");
}

// Averages every gradient over the ranks. Buckets are filled from the last parameter back, the
// order a backward finishes them in; each bucket is one allreduce of about bucket_floats values.
void average_gradients(nn::Module& model, const DataParallel& dp, std::vector<float>& bucket) {
  std::vector<nn::Parameter*> params;
  for (auto& [name, p] : model.named_parameters()) params.push_back(p);
  const float inv = 1.0f / static_cast<float>(dp.size);
  std::vector<std::span<float>> pending;  // the gradients (or their pieces) in the bucket
  size_t used = 0;
  auto flush = [&] {
    if (used == 0) return;
    dp.allreduce_sum(std::span<float>(bucket.data(), used));
    size_t at = 0;
    for (const std::span<float> g : pending) {
      for (size_t i = 0; i < g.size(); ++i) g[i] = bucket[at + i] * inv;
      at += g.size();
    }
    pending.clear();
    used = 0;
  };
  size_t total = 0;
  for (const nn::Parameter* p : params) total += static_cast<size_t>(p->grad.numel());
  const size_t cap = std::max<size_t>(1, std::min(static_cast<size_t>(dp.bucket_floats), total));
  bucket.resize(cap);
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    std::span<float> g = (*it)->grad.values();
    while (!g.empty()) {  // a gradient larger than a bucket is split over several
      const size_t n = std::min(g.size(), cap - used);
      std::copy(g.begin(), g.begin() + static_cast<std::ptrdiff_t>(n),
                bucket.begin() + static_cast<std::ptrdiff_t>(used));
      pending.push_back(g.first(n));
      used += n;
      g = g.subspan(n);
      if (used == cap) flush();
    }
  }
  flush();
}

// The ranks' mean loss and summed counts.
StepResult combine_over_ranks(const StepResult& s, const DataParallel& dp) {
  double v[3] = {s.loss, static_cast<double>(s.correct), static_cast<double>(s.count)};
  dp.allreduce_sum_double(v);
  return {v[0] / dp.size, static_cast<int64_t>(v[1]), static_cast<int64_t>(v[2])};
}

bool due(int64_t step, int64_t every, int64_t last) {
  return step == last || (every > 0 && step % every == 0);
}

}  // namespace

FitResult fit(nn::Module& model, Optimizer& optimizer, const FitOptions& o,
              const std::function<StepResult(int64_t)>& train_step,
              const std::function<double(int64_t)>& evaluate,
              const std::function<void(const StepInfo&)>& on_step) {
  check_options(o);
  if (!train_step) fail<ValueError>("train::fit", "train_step is required");
  FitResult r;
  const DataParallel& dp = o.data_parallel;
  const bool writer = dp.rank == 0;  // the rank that writes the CSV, the bar and the checkpoints
  std::vector<float> bucket;
  if (o.resume && std::filesystem::exists(o.checkpoint_path)) {
    r.first_step = load_checkpoint(o.checkpoint_path, model, &optimizer);
    if (r.first_step < 0 || r.first_step > o.steps)
      fail<ValueError>("train::fit", o.checkpoint_path, " is at step ", r.first_step,
                       ", outside [0, steps = ", o.steps, "]");
  }
  r.steps = r.first_step;
  std::optional<CsvLog> csv;
  if (!o.csv_path.empty() && writer)
    csv.emplace(
        o.csv_path,
        std::vector<std::string>{"step", "lr", "loss", "grad_norm", "train_accuracy", "eval"},
        /*append=*/r.first_step > 0);
  ProgressBar bar(*o.progress_out, o.steps, o.progress && writer);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t step = r.first_step; step < o.steps; ++step) {
    const auto step_start = std::chrono::steady_clock::now();
    model.zero_grad();
    StepResult s = train_step(step);
    if (dp.size > 1) {
      s = combine_over_ranks(s, dp);
      average_gradients(model, dp, bucket);
    }
    if (!std::isfinite(s.loss))
      fail<ValueError>("train::fit", "the loss is ", s.loss, " at step ", step + 1,
                       " (lower lr or enable clipping)");
    const Context& ctx = o.context ? *o.context : thread_context();
    const double norm =
        clip_grad_norm(model, o.clip > 0 ? o.clip : std::numeric_limits<double>::infinity(), ctx);
    const double lr = warmup_cosine_lr(step, o.warmup, o.steps, o.lr, o.min_lr);
    optimizer.step(lr, ctx);
    r.step_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    r.steps = step + 1;
    r.losses.push_back(s.loss);
    double eval = std::nan("");
    if (evaluate && due(r.steps, o.eval_every, o.steps)) {
      eval = evaluate(r.steps);
      r.eval_steps.push_back(r.steps);
      r.eval_metrics.push_back(eval);
      r.last_eval = eval;
    }
    const double train_acc =
        s.count > 0 ? static_cast<double>(s.correct) / static_cast<double>(s.count) : std::nan("");
    if (csv) csv->row({static_cast<double>(r.steps), lr, s.loss, norm, train_acc, eval});
    if (on_step) on_step({r.steps, lr, s.loss, norm, eval});
    bar.update(r.steps, s.loss, std::isnan(r.last_eval) ? -1.0 : r.last_eval);
    r.reached_target = o.target_metric > 0 && !std::isnan(eval) && eval >= o.target_metric;
    const bool last = r.steps == o.steps || r.reached_target;
    if (!o.checkpoint_path.empty() && writer && (last || due(r.steps, o.checkpoint_every, o.steps)))
      save_checkpoint(o.checkpoint_path, model, &optimizer, r.steps, o.checkpoint_metadata);
    if (r.reached_target) break;
  }
  bar.finish();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace attn::train
