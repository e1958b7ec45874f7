// SPDX-License-Identifier: MIT
#include "sequence_task.h"

#include <algorithm>
#include <cmath>

#include "attn/ops/positional.h"
#include "attn/train/loss.h"

namespace attn::examples {

using train::cross_entropy;

SequenceTask parse_sequence_task(const std::string& name) {
  if (name == "copy") return SequenceTask::kCopy;
  if (name == "reverse") return SequenceTask::kReverse;
  if (name == "sort") return SequenceTask::kSort;
  fail<ValueError>("parse_sequence_task", "task must be copy, reverse or sort, got '", name, "'");
}

const char* sequence_task_name(SequenceTask task) {
  switch (task) {
    case SequenceTask::kCopy:
      return "copy";
    case SequenceTask::kReverse:
      return "reverse";
    case SequenceTask::kSort:
      return "sort";
  }
  return "?";
}

void make_sequence_batch(const SequenceTaskConfig& c, Rng& rng, int64_t batch,
                         std::vector<int64_t>& inputs, std::vector<int64_t>& targets) {
  const auto T = static_cast<size_t>(c.seq_len);
  inputs.resize(static_cast<size_t>(batch) * T);
  targets.resize(inputs.size());
  for (int64_t b = 0; b < batch; ++b) {
    auto* x = inputs.data() + static_cast<size_t>(b) * T;
    auto* y = targets.data() + static_cast<size_t>(b) * T;
    for (size_t t = 0; t < T; ++t) x[t] = rng.uniform_int(0, c.vocab - 1);
    std::copy(x, x + T, y);
    if (c.task == SequenceTask::kReverse) std::reverse(y, y + T);
    if (c.task == SequenceTask::kSort) std::sort(y, y + T);
  }
}

namespace {
nn::EncoderLayerConfig layer_config(const SequenceTaskConfig& c) {
  nn::EncoderLayerConfig l;
  l.d_model = c.d_model;
  l.nhead = c.nhead;
  l.dim_feedforward = c.dim_feedforward;
  l.dropout = 0.0;
  l.activation = nn::ActivationKind::kGELU;
  l.norm_first = true;  // pre-norm trains stably without a long warm-up
  return l;
}

void check_config(const SequenceTaskConfig& c) {
  constexpr const char* fn = "train_sequence_task";
  if (c.vocab < 2 || c.seq_len < 1 || c.batch < 1 || c.steps < 1 || c.eval_every < 1 ||
      c.eval_batch < 1)
    fail<ValueError>(fn, "need vocab >= 2 and seq_len, batch, steps, eval_every, eval_batch >= 1");
  if (c.warmup < 0 || c.warmup > c.steps)
    fail<ValueError>(fn, "warmup must be in [0, steps], got ", c.warmup);
  if (!(c.lr > 0) || !(c.clip > 0)) fail<ValueError>(fn, "lr and clip must be > 0");
}
}  // namespace

SequenceModel::SequenceModel(const SequenceTaskConfig& c, Rng& rng)
    : embed(c.vocab, c.d_model, rng),
      encoder(layer_config(c), c.num_layers, true, rng, c.seed),
      head(c.d_model, c.vocab, true, rng),
      C_(c.d_model) {
  register_module("embed", embed);
  register_module("encoder", encoder);
  register_module("head", head);
}

// Embedding rows are N(0, 1) per channel (norm ≈ √C); scaled by 4/√C their norm is ≈ 4, next to the
// sinusoidal PE's √(C/2), so neither the token nor its position drowns the other.
float SequenceModel::embedding_scale() const {
  return static_cast<float>(4.0 / std::sqrt(static_cast<double>(C_)));
}

Tensor SequenceModel::forward(const std::vector<int64_t>& tokens, int64_t B, int64_t T,
                              Cache* cache, const Context& ctx) {
  Tensor x = embed.forward(tokens, B, T, cache ? &cache->embed : nullptr, ctx);
  if (cache) cache->B = B, cache->T = T;
  const float scale = embedding_scale();
  for (float& v : x.values()) v *= scale;
  ops::add_sinusoidal_encoding(x.view(), x.view(), 0, ctx);
  const Tensor h =
      encoder.forward(x.view(), nn::AttentionOptions{}, cache ? &cache->encoder : nullptr, ctx);
  return head.forward(h.view().reshape(Shape{B * T, C_}), cache ? &cache->head : nullptr, ctx);
}

void SequenceModel::backward(ConstTensorView dlogits, const Cache& cache, const Context& ctx) {
  Tensor dh = head.backward(dlogits, cache.head, ctx);
  Tensor dx = encoder.backward(dh.view().reshape(Shape{cache.B, cache.T, C_}), cache.encoder, ctx);
  const float scale = embedding_scale();  // the PE is additive: its gradient passes unchanged
  for (float& v : dx.values()) v *= scale;
  embed.backward(dx.view(), cache.embed, ctx);
}

double evaluate_sequence_task(const SequenceTaskConfig& c, SequenceModel& model, Rng& rng,
                              int64_t batch, const Context& ctx) {
  std::vector<int64_t> x, y;
  make_sequence_batch(c, rng, batch, x, y);
  const Tensor logits = model.forward(x, batch, c.seq_len, nullptr, ctx);
  const auto r = cross_entropy(logits.view(), y, TensorView());
  return static_cast<double>(r.correct) / static_cast<double>(std::max<int64_t>(1, r.count));
}

double estimate_training_bytes(const SequenceTaskConfig& c) {
  const double BT = static_cast<double>(c.batch) * static_cast<double>(c.seq_len);
  const double C = static_cast<double>(c.d_model), FF = static_cast<double>(c.dim_feedforward);
  // Per layer: about ten (B, T, C) tensors (inputs, norms, q, k, v, heads' output, projections) and
  // two (B, T, FF) ones, saved in the cache and met again as gradients.
  const double per_layer = 2.0 * (10.0 * BT * C + 2.0 * BT * FF);
  const double logits = 3.0 * BT * static_cast<double>(c.vocab);
  const double params = 4.0 * static_cast<double>(c.num_layers) * (4.0 * C * C + 2.0 * C * FF) +
                        4.0 * static_cast<double>(c.vocab) * C;
  return 4.0 * (static_cast<double>(c.num_layers) * per_layer + logits + params);
}

namespace {
// A seed for (run seed, step, stream): batches depend on the step alone, so a resumed run draws the
// same.
uint64_t step_seed(uint64_t seed, int64_t step, uint64_t stream) {
  return seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step) * 0xBF58476D1CE4E5B9ull +
         stream;
}
}  // namespace

train::FitResult train_sequence_task(const SequenceTaskConfig& c, SequenceModel& model,
                                     train::Optimizer& optimizer, const Context& ctx,
                                     train::FitOptions o) {
  check_config(c);
  o.steps = c.steps, o.lr = c.lr, o.min_lr = c.min_lr, o.warmup = c.warmup, o.clip = c.clip;
  o.eval_every = c.eval_every;
  o.context = &ctx;
  o.target_metric = std::max(0.0, c.target_accuracy);
  // Data-parallel: rank r trains on sequences [r·b, (r+1)·b) of the step's global batch, b = batch
  // / ranks.
  const train::DataParallel& dp = o.data_parallel;
  if (c.batch % dp.size != 0)
    fail<ValueError>("train_sequence_task", "the batch (", c.batch, ") must be a multiple of the ",
                     dp.size, " data-parallel ranks");
  const int64_t b = c.batch / dp.size;
  std::vector<int64_t> x, y;
  Tensor dlogits(Shape{b * c.seq_len, c.vocab});
  auto step = [&](int64_t s) {
    Rng data_rng(step_seed(c.seed, s, 1));
    make_sequence_batch(c, data_rng, c.batch, x, y);
    if (dp.size > 1) {
      const auto first = static_cast<std::ptrdiff_t>(dp.rank * b * c.seq_len),
                 n = static_cast<std::ptrdiff_t>(b * c.seq_len);
      x = std::vector<int64_t>(x.begin() + first, x.begin() + first + n);
      y = std::vector<int64_t>(y.begin() + first, y.begin() + first + n);
    }
    SequenceModel::Cache cache;
    const Tensor logits = model.forward(x, b, c.seq_len, &cache, ctx);
    const auto ce = cross_entropy(logits.view(), y, dlogits.view());
    model.backward(dlogits.view(), cache, ctx);
    return train::StepResult{ce.loss, ce.correct, ce.count};
  };
  auto evaluate = [&](int64_t s) {
    Rng eval_rng(step_seed(c.seed, s, 2));
    return evaluate_sequence_task(c, model, eval_rng, c.eval_batch, ctx);
  };
  return train::fit(model, optimizer, o, step, evaluate);
}

}  // namespace attn::examples
