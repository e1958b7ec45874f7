// SPDX-License-Identifier: MIT
// Toy sequence tasks that a small transformer learns in seconds (an example of train::fit; used by
// `attn train copy|reverse|sort` and `make demo`): copy (y_t = x_t), reverse
// (y_t = x_{T-1-t}: every output must attend to one far position, found through the positional
// encoding) and sort (y = sorted x: every output must count over the whole sequence). Model: token
// embedding ·√C + sinusoidal PE → TransformerEncoder (pre-norm, GELU) → Linear head; loss:
// cross-entropy per token.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attn/context.h"
#include "attn/nn/attention.h"
#include "attn/nn/layers.h"
#include "attn/nn/transformer.h"
#include "attn/train/fit.h"
#include "attn/train/optim.h"

namespace attn::examples {

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
  double target_accuracy =
      0.99;  // stop once the held-out token accuracy reaches this (<= 0: never)
  uint64_t seed = 0;
};

// Inputs and targets for `batch` random sequences, row-major (batch, seq_len).
void make_sequence_batch(const SequenceTaskConfig& config, Rng& rng, int64_t batch,
                         std::vector<int64_t>& inputs, std::vector<int64_t>& targets);

// FitOptions with no progress bar, CSV or checkpoints.
inline train::FitOptions quiet_fit() {
  train::FitOptions o;
  o.progress = false;
  return o;
}

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
  Tensor forward(const std::vector<int64_t>& tokens, int64_t B, int64_t T, Cache* cache,
                 const Context& ctx);
  void backward(ConstTensorView dlogits, const Cache& cache, const Context& ctx);

  nn::Embedding embed;
  nn::TransformerEncoder encoder;
  nn::Linear head;

 private:
  float embedding_scale() const;
  int64_t C_;
};

// Trains with AdamW through train::fit: warm-up + cosine schedule, gradient clipping, held-out
// token accuracy every eval_every steps (stopping at target_accuracy). fit_options supplies what
// fit does beyond that (progress bar, CSV, checkpoints, resume); its schedule fields are taken from
// config. The batch of step s is drawn from Rng(seed, s), so a fixed seed and thread count give the
// same run bit for bit, and a resumed run continues the same curve.
train::FitResult train_sequence_task(const SequenceTaskConfig& config, SequenceModel& model,
                                     train::Optimizer& optimizer, const Context& ctx,
                                     train::FitOptions fit_options = quiet_fit());
// A rough upper estimate of the bytes one training step keeps alive (activations and caches of
// every layer, logits, their gradients, parameters and optimiser state), to refuse sizes that
// cannot fit before starting them.
double estimate_training_bytes(const SequenceTaskConfig& config);

// Token accuracy of the model on `batch` fresh sequences drawn from rng.
double evaluate_sequence_task(const SequenceTaskConfig& config, SequenceModel& model, Rng& rng,
                              int64_t batch, const Context& ctx);

}  // namespace attn::examples
