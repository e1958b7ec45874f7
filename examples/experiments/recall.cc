// SPDX-License-Identifier: MIT
#include "recall.h"

#include <cmath>
#include <memory>

namespace attn::examples {

namespace {

// Vocabulary: keys [0, K), distractors [K, K + Dv), the query token K + Dv.
int64_t vocab(const RecallConfig& c) { return c.keys + c.distractors + 1; }

uint64_t mix(uint64_t seed, int64_t step, uint64_t stream) {
  return seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step) * 0xBF58476D1CE4E5B9ull +
         stream;
}

// d loss / d (the (B, T, C) sequence) when only the last position (B, C) reaches the loss.
Tensor last_position_grad(const Tensor& dlast, int64_t B, int64_t T, int64_t C) {
  Tensor d(Shape{B, T, C});
  copy(dlast.view(), d.view().select(1, T - 1));
  return d;
}

// Embedding → LSTM → Linear at the last position.
class LstmRecall : public RecallModel {
 public:
  LstmRecall(const RecallConfig& c, Rng& rng)
      : embed_(vocab(c), c.d_model, rng),
        lstm_({.input_size = c.d_model, .hidden_size = c.d_model, .batch_first = true}, rng),
        head_(c.d_model, c.keys, true, rng),
        C_(c.d_model) {
    register_module("embed", embed_);
    register_module("lstm", lstm_);
    register_module("head", head_);
  }
  Tensor forward(const std::vector<int64_t>& tokens, int64_t B, int64_t T, bool train,
                 const Context& ctx) override {
    const Tensor x = embed_.forward(tokens, B, T, train ? &embed_cache_ : nullptr, ctx);
    const auto out = lstm_.forward(x, {}, {}, {}, train ? &lstm_cache_ : nullptr, ctx);
    B_ = B, T_ = T;
    return head_.forward(out.output.view().select(1, T - 1), train ? &head_cache_ : nullptr, ctx);
  }
  void backward(ConstTensorView dlogits, const Context& ctx) override {
    const Tensor dout = last_position_grad(head_.backward(dlogits, head_cache_, ctx), B_, T_, C_);
    const auto g = lstm_.backward(dout, {}, {}, lstm_cache_, ctx);
    embed_.backward(g.dx, embed_cache_, ctx);
  }

 private:
  nn::Embedding embed_;
  nn::LSTM lstm_;
  nn::Linear head_;
  int64_t C_, B_ = 0, T_ = 0;
  nn::Embedding::Cache embed_cache_;
  nn::RNNBase::Cache lstm_cache_;
  nn::Linear::Cache head_cache_;
};

// Embedding ·4/√C + sinusoidal PE → pre-norm TransformerEncoder → Linear at the last position.
class TransformerRecall : public RecallModel {
 public:
  TransformerRecall(const RecallConfig& c, Rng& rng)
      : embed_(vocab(c), c.d_model, rng),
        encoder_(layer(c), c.num_layers, true, rng, c.seed),
        head_(c.d_model, c.keys, true, rng),
        C_(c.d_model) {
    register_module("embed", embed_);
    register_module("encoder", encoder_);
    register_module("head", head_);
  }
  Tensor forward(const std::vector<int64_t>& tokens, int64_t B, int64_t T, bool train,
                 const Context& ctx) override {
    Tensor x = embed_.forward(tokens, B, T, train ? &embed_cache_ : nullptr, ctx);
    for (float& v : x.values()) v *= scale();
    ops::add_sinusoidal_encoding(x.view(), x.view(), 0, ctx);
    const Tensor h = encoder_.forward(x, {}, train ? &encoder_cache_ : nullptr, ctx);
    B_ = B, T_ = T;
    return head_.forward(h.view().select(1, T - 1), train ? &head_cache_ : nullptr, ctx);
  }
  void backward(ConstTensorView dlogits, const Context& ctx) override {
    const Tensor dh = last_position_grad(head_.backward(dlogits, head_cache_, ctx), B_, T_, C_);
    Tensor dx = encoder_.backward(dh, encoder_cache_, ctx);
    for (float& v : dx.values()) v *= scale();
    embed_.backward(dx, embed_cache_, ctx);
  }

 private:
  static nn::EncoderLayerConfig layer(const RecallConfig& c) {
    nn::EncoderLayerConfig l;
    l.d_model = c.d_model;
    l.nhead = c.nhead;
    l.dim_feedforward = 2 * c.d_model;
    l.dropout = 0.0;
    l.activation = nn::ActivationKind::kGELU;
    l.norm_first = true;
    return l;
  }
  // As examples/sequence_tasks: token rows of norm ≈ 4 beside the PE's √(C/2).
  float scale() const { return static_cast<float>(4.0 / std::sqrt(static_cast<double>(C_))); }
  nn::Embedding embed_;
  nn::TransformerEncoder encoder_;
  nn::Linear head_;
  int64_t C_, B_ = 0, T_ = 0;
  nn::Embedding::Cache embed_cache_;
  nn::TransformerEncoder::Cache encoder_cache_;
  nn::Linear::Cache head_cache_;
};

double accuracy(RecallModel& m, const RecallConfig& c, Rng& rng, int64_t batch,
                const Context& ctx) {
  std::vector<int64_t> x, y;
  make_recall_batch(c, rng, batch, x, y);
  const Tensor logits = m.forward(x, batch, c.distance + 1, false, ctx);
  const auto r = train::cross_entropy(logits, y, TensorView());
  return static_cast<double>(r.correct) / static_cast<double>(std::max<int64_t>(r.count, 1));
}

}  // namespace

void make_recall_batch(const RecallConfig& c, Rng& rng, int64_t batch, std::vector<int64_t>& tokens,
                       std::vector<int64_t>& keys) {
  const int64_t T = c.distance + 1;
  tokens.assign(static_cast<size_t>(batch * T), 0);
  keys.assign(static_cast<size_t>(batch), 0);
  for (int64_t b = 0; b < batch; ++b) {
    int64_t* row = tokens.data() + b * T;
    keys[static_cast<size_t>(b)] = row[0] = rng.uniform_int(0, c.keys - 1);
    for (int64_t t = 1; t < T - 1; ++t) row[t] = c.keys + rng.uniform_int(0, c.distractors - 1);
    row[T - 1] = c.keys + c.distractors;  // the query
  }
}

const char* recall_model_name(RecallModelKind kind) {
  return kind == RecallModelKind::kLSTM ? "LSTM" : "transformer";
}

std::unique_ptr<RecallModel> make_recall_model(RecallModelKind kind, const RecallConfig& c,
                                               Rng& rng) {
  if (kind == RecallModelKind::kLSTM) return std::make_unique<LstmRecall>(c, rng);
  return std::make_unique<TransformerRecall>(c, rng);
}

RecallResult run_recall(RecallModelKind kind, const RecallConfig& c, const Context& ctx,
                        bool progress) {
  if (c.distance < 1) fail<ValueError>("run_recall", "distance must be >= 1, got ", c.distance);
  Rng init(c.seed);
  auto model = make_recall_model(kind, c, init);
  train::AdamW optimizer(*model, 0.9, 0.98, 1e-9, 0.01);
  train::FitOptions o;
  o.steps = c.steps, o.lr = c.lr, o.min_lr = c.min_lr, o.warmup = std::min(c.warmup, c.steps);
  o.clip = c.clip, o.eval_every = c.eval_every, o.context = &ctx, o.progress = progress;
  const int64_t T = c.distance + 1;
  std::vector<int64_t> x, y;
  Tensor dlogits(Shape{c.batch, c.keys});
  auto step = [&](int64_t s) {
    Rng rng(mix(c.seed, s, 1));
    make_recall_batch(c, rng, c.batch, x, y);
    const Tensor logits = model->forward(x, c.batch, T, true, ctx);
    const auto ce = train::cross_entropy(logits, y, dlogits);
    model->backward(dlogits, ctx);
    return train::StepResult{ce.loss, ce.correct, ce.count};
  };
  auto evaluate = [&](int64_t s) {
    Rng rng(mix(c.seed, s, 2));
    return accuracy(*model, c, rng, c.eval_batch, ctx);
  };
  const auto fit = train::fit(*model, optimizer, o, step, evaluate);
  Rng test_rng(mix(c.seed, 0, 3));
  RecallResult r{kind,
                 c.distance,
                 model->num_parameters(),
                 fit.steps,
                 0.0,
                 fit.step_seconds,
                 fit.losses.empty() ? std::nan("") : fit.losses.back()};
  r.test_accuracy = accuracy(*model, c, test_rng, c.test_batch, ctx);
  return r;
}

}  // namespace attn::examples
