// SPDX-License-Identifier: MIT
// attn train copy|reverse|sort: train a small transformer on a toy sequence task and watch it
// learn: a progress bar, metrics.csv, loss.png and a safetensors checkpoint in --out-dir.
#include <filesystem>
#include <iostream>
#include <memory>

#include "attn/attn.h"
#include "commands.h"
#include "sequence_task.h"
#ifdef ATTN_HAVE_DIST
#include <cstdlib>

#include "attn/dist/communicator.h"
#endif

namespace attn::cli {

namespace {

struct TrainOptions {
  examples::SequenceTaskConfig config;
  std::string out_dir = "build/train";
  int threads = 0;
  int data_parallel = 1;  // model replicas, one thread group rank each (train::run_data_parallel)
  int64_t checkpoint_every = 0;
  bool quiet = false, resume = false;
  CLI::Option* warmup_opt = nullptr;
};

// Options checked before any work; the default warm-up shrinks to a tenth of a short run.
void check_options(TrainOptions& o) {
  auto& c = o.config;
  if (c.steps < 1) usage_fail("--steps", "must be >= 1, got ", c.steps);
  if (c.batch < 1) usage_fail("--batch", "must be >= 1, got ", c.batch);
  if (o.data_parallel < 1) usage_fail("--data-parallel", "must be >= 1, got ", o.data_parallel);
  if (c.batch % o.data_parallel != 0)
    usage_fail("--batch", "must be a multiple of --data-parallel (", o.data_parallel, "), got ",
               c.batch);
  if (c.seq_len < 1) usage_fail("--seq-len", "must be >= 1, got ", c.seq_len);
  if (c.vocab < 2) usage_fail("--vocab", "must be >= 2, got ", c.vocab);
  if (c.eval_every < 1) usage_fail("--eval-every", "must be >= 1, got ", c.eval_every);
  check_width_and_heads(c.d_model, c.nhead);
  if (c.dim_feedforward < 1) usage_fail("--ff", "must be >= 1, got ", c.dim_feedforward);
  if (c.num_layers < 1) usage_fail("--layers", "must be >= 1, got ", c.num_layers);
  if (o.checkpoint_every < 0)
    usage_fail("--checkpoint-every", "must be >= 0 (0: at the end only), got ", o.checkpoint_every);
  if (!(c.lr > 0)) usage_fail("--lr", "must be > 0, got ", c.lr);
  if (!(c.clip > 0)) usage_fail("--clip", "must be > 0, got ", c.clip);
  if (!(c.target_accuracy >= 0 && c.target_accuracy <= 1))
    usage_fail("--target-accuracy", "must be in (0, 1], or 0 to never stop early; got ",
               c.target_accuracy);
  if (c.warmup < 0) usage_fail("--warmup", "must be >= 0, got ", c.warmup);
  if (c.warmup > c.steps) {
    if (o.warmup_opt->count() > 0)
      usage_fail("--warmup", "must be at most --steps (", c.steps, "), got ", c.warmup);
    c.warmup = c.steps / 10;
  }
  check_memory_budget("--batch/--seq-len/--d-model/--ff/--layers",
                      examples::estimate_training_bytes(c), "a training step of these sizes");
}

#ifdef ATTN_HAVE_DIST
// Under mpirun (OpenMPI's OMPI_COMM_WORLD_SIZE, or PMI_SIZE) with more than one rank, training is
// data-parallel: MPI starts here and fit averages the gradients over the ranks.
bool launched_by_mpirun() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* v = std::getenv(var); v != nullptr && std::atoi(v) > 1) return true;
  return false;
}
struct DataParallelJob {
  std::unique_ptr<dist::Environment> env;
  std::unique_ptr<dist::Communicator> comm;
};
DataParallelJob start_data_parallel(train::DataParallel& dp) {
  DataParallelJob job;
  if (!launched_by_mpirun()) return job;
  job.env = std::make_unique<dist::Environment>(nullptr, nullptr);
  job.comm = std::make_unique<dist::Communicator>(dist::Communicator::world());
  const dist::Communicator* c = job.comm.get();
  dp.rank = c->rank(), dp.size = c->size();
  dp.allreduce_sum = [c](std::span<float> v) { c->allreduce_sum(v); };
  dp.allreduce_sum_double = [c](std::span<double> v) { c->allreduce_sum(v); };
  return job;
}
#endif

// The threads each replica's ops use: --threads, at most an equal share of the hardware threads
// (0: that share).
int threads_per_replica(const TrainOptions& o) {
  const int threads = checked_threads("train", o.threads);
  if (o.data_parallel == 1) return threads;
  const int share = std::max(1, hardware_threads() / o.data_parallel);
  if (threads > share)
    std::cerr << "attn: train: warning: --threads " << threads << " for each of " << o.data_parallel
              << " replicas is more than the " << hardware_threads() << " hardware threads; using "
              << share << " each\n";
  return threads == 0 ? share : std::min(threads, share);
}

// One rank's training: its own context, model (the same seed on every rank, so the same initial
// weights) and optimiser. Rank 0 announces the run first.
train::FitResult train_rank(const TrainOptions& o, const examples::SequenceTaskConfig& c,
                            const train::FitOptions& fit, int threads) {
  const train::DataParallel& dp = fit.data_parallel;
  Context ctx(ContextOptions{.num_threads = threads, .seed = c.seed});
  Rng rng(c.seed);
  examples::SequenceModel model(c, rng);
  train::AdamW optimizer(model, 0.9, 0.98, 1e-9, c.weight_decay);
  if (dp.rank == 0) {
    std::string parallel =
        std::to_string(ctx.num_threads()) + (ctx.num_threads() == 1 ? " thread" : " threads");
    if (o.data_parallel > 1)
      parallel = "data-parallel over " + std::to_string(dp.size) + " model replicas in threads, " +
                 parallel + " each";
    else if (dp.size > 1)
      parallel += " per rank, data-parallel over " + std::to_string(dp.size) + " ranks";
    std::cout << "task " << examples::sequence_task_name(c.task) << ": vocab " << c.vocab
              << ", length " << c.seq_len << ", model d=" << c.d_model << " heads=" << c.nhead
              << " layers=" << c.num_layers << " (" << model.num_parameters()
              << " parameters), batch " << c.batch << ", up to " << c.steps << " steps, "
              << parallel << "\n"
              << std::flush;
  }
  return examples::train_sequence_task(c, model, optimizer, ctx, fit);
}

void run_train(TrainOptions o, examples::SequenceTask task) {
  check_options(o);
  train::FitOptions fit;
#ifdef ATTN_HAVE_DIST
  const DataParallelJob job = start_data_parallel(fit.data_parallel);
#endif
  const train::DataParallel& dp = fit.data_parallel;
  if (dp.size > 1 && o.data_parallel > 1)
    usage_fail("--data-parallel",
               "replicas in threads are for one process; under mpirun each of the ", dp.size,
               " ranks is a replica already");
  if (o.config.batch % dp.size != 0)
    usage_fail("--batch", "must be a multiple of the ", dp.size, " data-parallel ranks, got ",
               o.config.batch);
  const bool writer = dp.rank == 0;  // only rank 0 prints and writes files
  examples::SequenceTaskConfig c = o.config;
  c.task = task;
  if (!writer) o.quiet = true;
  if (std::filesystem::exists(o.out_dir) && !std::filesystem::is_directory(o.out_dir))
    usage_fail("--out-dir", "'", o.out_dir, "' exists and is not a directory");
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) fail<IoError>("--out-dir", "cannot create '", o.out_dir, "': ", ec.message());
  const std::string name = examples::sequence_task_name(task);
  fit.progress = !o.quiet;
  fit.csv_path = o.out_dir + "/metrics.csv";
  fit.checkpoint_path = o.out_dir + "/checkpoint.safetensors";
  fit.checkpoint_every = o.checkpoint_every;
  fit.resume = o.resume;
  fit.checkpoint_metadata = {{"task", name}, {"seed", std::to_string(c.seed)}};
  const int threads = threads_per_replica(o);  // checked (and warned about) once, not per replica
  train::FitResult result;
  if (o.data_parallel == 1) {
    result = train_rank(o, c, fit, threads);
  } else {
    train::run_data_parallel(o.data_parallel, [&](int rank, const train::DataParallel& member) {
      train::FitOptions mine = fit;
      mine.data_parallel = member;
      train::FitResult r = train_rank(o, c, mine, threads);
      if (rank == 0) result = std::move(r);
    });
  }
  if (!writer) return;
  if (result.first_step > 0) std::cout << "resumed from step " << result.first_step << "\n";
  // Loss per step, and a 25-step moving average on top of it.
  std::vector<double> smooth(result.losses.size());
  double acc = 0.0;
  for (size_t i = 0; i < result.losses.size(); ++i) {
    acc += result.losses[i] - (i >= 25 ? result.losses[i - 25] : 0.0);
    smooth[i] = acc / static_cast<double>(std::min<size_t>(i + 1, 25));
  }
  io::LinePlot plot;
  plot.title = "attn train " + name + ": training loss";
  plot.x_label = "step";
  plot.y_label = "cross-entropy loss (log scale)";
  plot.log_y = true;
  std::vector<double> steps(result.losses.size());
  for (size_t i = 0; i < steps.size(); ++i)
    steps[i] = static_cast<double>(result.first_step) + static_cast<double>(i) + 1.0;
  plot.series = {{"loss per step", result.losses, steps}, {"25-step average", smooth, steps}};
  io::write_line_plot(o.out_dir + "/loss.png", plot);
  const double run = static_cast<double>(result.steps - result.first_step);
  std::printf(
      "%s: %lld steps in %.1f s (%.1f training steps/s), held-out token accuracy %.4f, final loss "
      "%.4f\n",
      name.c_str(), static_cast<long long>(result.steps), result.seconds,
      result.step_seconds > 0 ? run / result.step_seconds : 0.0, result.last_eval,
      result.losses.empty() ? 0.0 : result.losses.back());
  std::cout << "wrote " << o.out_dir
            << "/metrics.csv, loss.png (log-scale loss per step), checkpoint.safetensors\n";
  if (c.target_accuracy > 0)
    std::printf("target accuracy %.4f %s\n", c.target_accuracy,
                result.reached_target ? "reached" : "not reached in the steps given (see --steps)");
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  CLI::App* train_cmd = app.add_subcommand("train",
                                           "Train a model: a small transformer on a toy sequence "
                                           "task, or an image classifier on Fashion-MNIST");
  train_cmd->require_subcommand(1);
  add_train_fashion_command(train_cmd);
  for (auto task : {examples::SequenceTask::kCopy, examples::SequenceTask::kReverse,
                    examples::SequenceTask::kSort}) {
    const std::string name = examples::sequence_task_name(task);
    CLI::App* sub =
        train_cmd->add_subcommand(name, name == "copy"      ? "Output each input token (y_t = x_t)"
                                        : name == "reverse" ? "Output the sequence reversed"
                                                            : "Output the sequence sorted");
    auto& c = o->config;
    sub->add_option("--vocab", c.vocab, "Token vocabulary size")->capture_default_str();
    sub->add_option("--seq-len", c.seq_len, "Sequence length")->capture_default_str();
    sub->add_option("--d-model", c.d_model, "Model width C")->capture_default_str();
    sub->add_option("--heads", c.nhead, "Attention heads")->capture_default_str();
    sub->add_option("--ff", c.dim_feedforward, "Feed-forward width")->capture_default_str();
    sub->add_option("--layers", c.num_layers, "Encoder layers")->capture_default_str();
    sub->add_option("--batch", c.batch, "Sequences per step")->capture_default_str();
    sub->add_option("--steps", c.steps, "Maximum steps")->capture_default_str();
    CLI::Option* warmup =
        sub->add_option("--warmup", c.warmup,
                        "Warm-up steps (default: 100, or a tenth of --steps if fewer)")
            ->capture_default_str();
    sub->add_option("--lr", c.lr, "Peak learning rate (AdamW)")->capture_default_str();
    sub->add_option("--clip", c.clip, "Gradient-norm clipping")->capture_default_str();
    sub->add_option("--eval-every", c.eval_every, "Steps between held-out evaluations")
        ->capture_default_str();
    sub->add_option("--target-accuracy", c.target_accuracy,
                    "Stop at this held-out token accuracy (0: never)")
        ->capture_default_str();
    sub->add_option("--seed", c.seed, "Seed (same seed and threads: same run, bit for bit)")
        ->capture_default_str();
    sub->add_option("--threads", o->threads,
                    "Threads (0 = all; with --data-parallel, per replica, 0 = an equal share)")
        ->capture_default_str();
    sub->add_option("--data-parallel", o->data_parallel,
                    "Model replicas trained data-parallel in threads of this process, each on "
                    "--batch / N sequences of every step (docs/distributed.md)")
        ->capture_default_str();
    sub->add_option("--out-dir", o->out_dir, "Where metrics.csv, loss.png and the checkpoint go")
        ->capture_default_str();
    sub->add_option("--checkpoint-every", o->checkpoint_every,
                    "Steps between checkpoints (0: at the end only)")
        ->capture_default_str();
    sub->add_flag("--resume", o->resume,
                  "Continue from --out-dir's checkpoint.safetensors if there is one");
    sub->add_flag("--quiet", o->quiet, "No progress bar");
    sub->callback([o, task, warmup] {
      TrainOptions chosen = *o;
      chosen.warmup_opt = warmup;  // this subcommand's --warmup (each task has its own)
      run_train(chosen, task);
    });
  }
}

}  // namespace attn::cli
