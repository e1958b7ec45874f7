// SPDX-License-Identifier: MIT
// Toy sequence tasks that a small transformer learns in seconds: copy (y_t = x_t), reverse
// (y_t = x_{T-1-t}: every output must attend to one far position, found through the positional encoding)
// and sort (y = sorted x: every output must count over the whole sequence). Model: token embedding ·√C +
// sinusoidal PE → TransformerEncoder (pre-norm, GELU) → Linear head; loss: cross-entropy per token.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "attn/context.h"
#include "attn/nn/attention.h"
#include "attn/nn/layers.h"
#include "attn/nn/transformer.h"
#include "attn/train/optim.h"

namespace attn::train {

enum class SequenceTask { kCopy, kReverse, kSort };
SequenceTask parse_sequence_task(const std::string& name);  // "copy", "reverse", "sort"
const char* sequence_task_name(SequenceTask task);

struct SequenceTaskConfig {
  SequenceTask task = SequenceTask::kCopy;
  int64_t vocab = 10, seq_len = 12;
  int64_t d_model = 64, nhead = 4, dim_feedforward = 128, num_layers = 2;
  int64_t batch = 32, steps = 2000, warmup = 100;
  double lr = 3e-3, min_lr = 1e-4, weight_decay = 0.01, clip = 1.0;
  int64_t eval_every = 50, eval_batch = 256;
  double target_accuracy = 0.99;  // stop once the held-out token accuracy reaches this (<= 0: never)
  uint64_t seed = 0;
};

// Inputs and targets for `batch` random sequences, row-major (batch, seq_len).
void make_sequence_batch(const SequenceTaskConfig& config, Rng& rng, int64_t batch, std::vector<int64_t>& inputs,
                         std::vector<int64_t>& targets);

class SequenceModel : public nn::Module {
 public:
  SequenceModel(const SequenceTaskConfig& config, Rng& rng);
  struct Cache {
    nn::Embedding::Cache embed;
    nn::TransformerEncoder::Cache encoder;
    nn::Linear::Cache head;
    int64_t B = 0, T = 0;
  };
  // tokens (B, T) row-major -> logits (B·T, vocab)
  Tensor forward(const std::vector<int64_t>& tokens, int64_t B, int64_t T, Cache* cache, const Context& ctx);
  void backward(ConstTensorView dlogits, const Cache& cache, const Context& ctx);

  nn::Embedding embed;
  nn::TransformerEncoder encoder;
  nn::Linear head;

 private:
  float embedding_scale() const;
  int64_t C_;
};

struct SequenceTaskResult {
  int64_t steps = 0;
  double seconds = 0.0;
  double eval_accuracy = 0.0;  // last held-out token accuracy
  std::vector<double> losses;  // training loss per step
  std::vector<double> eval_steps, eval_accuracies;
};

struct TrainHooks {
  std::function<void(int64_t step, double loss, double eval_accuracy)> on_step;  // after each step
  std::function<void(int64_t step, double lr, double loss, double grad_norm, double eval_accuracy)> on_metrics;
};

// Trains with AdamW, warm-up + cosine schedule and gradient clipping. Fixed seed, same thread count: the
// same run bit for bit. Returns the curves; the model and optimiser are left trained for checkpoints.
SequenceTaskResult train_sequence_task(const SequenceTaskConfig& config, SequenceModel& model, Optimizer& optimizer,
                                       const Context& ctx, const TrainHooks& hooks = {});

// Token accuracy of the model on `batch` fresh sequences drawn from rng.
double evaluate_sequence_task(const SequenceTaskConfig& config, SequenceModel& model, Rng& rng, int64_t batch,
                              const Context& ctx);

}  // namespace attn::train
