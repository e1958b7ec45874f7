// SPDX-License-Identifier: MIT
// The long-range experiment of the lecture's RNN comparison: delayed recall. A sequence shows a key
// (one of K classes), then D − 1 distractor tokens, then a query token; the answer, read at the
// query, is the key shown D steps back. An LSTM must carry the key through D updates of its state;
// self-attention reaches it in one step from the query, however far. Both models are trained with
// train::fit at about the same parameter count, for each distance D.
//
// The transformer's positional encoding is the lecture's sinusoidal one: it has no parameters (a
// learned table would need a trained row for every position up to the longest D), it is defined
// at every length, and attention scores between its vectors depend on the offset between two
// positions, which is what "D steps back" is. (This task can also be solved from content alone,
// since keys and distractors come from different vocabularies; the encoding is what a standard
// encoder has, and it does not stand in the way.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attn/attn.h"

namespace attn::examples {

struct RecallConfig {
  int64_t distance = 10;              // D: the query sits D positions after the key (T = D + 1)
  int64_t keys = 8;                   // K classes (chance accuracy 1/K)
  int64_t distractors = 16;           // distractor vocabulary
  int64_t d_model = 64;               // both models' width (LSTM hidden size; transformer C)
  int64_t nhead = 4, num_layers = 1;  // the transformer's
  int64_t batch = 16, steps = 600, warmup = 30;
  double lr = 3e-3, min_lr = 1e-4, clip = 1.0;
  int64_t eval_every = 50, eval_batch = 256, test_batch = 512;
  uint64_t seed = 0;
};

// Tokens (B, D + 1) row-major and the B keys to recall.
void make_recall_batch(const RecallConfig& c, Rng& rng, int64_t batch, std::vector<int64_t>& tokens,
                       std::vector<int64_t>& keys);

enum class RecallModelKind { kLSTM, kTransformer };
const char* recall_model_name(RecallModelKind kind);  // "LSTM" / "transformer"

// A model that reads the sequence and classifies the key at the last position.
class RecallModel : public nn::Module {
 public:
  // logits (B, K) at the last position; `train` keeps what backward needs.
  virtual Tensor forward(const std::vector<int64_t>& tokens, int64_t B, int64_t T, bool train,
                         const Context& ctx) = 0;
  virtual void backward(ConstTensorView dlogits, const Context& ctx) = 0;
};
std::unique_ptr<RecallModel> make_recall_model(RecallModelKind kind, const RecallConfig& c,
                                               Rng& rng);

struct RecallResult {
  RecallModelKind model;
  int64_t distance = 0, parameters = 0, steps = 0;
  double test_accuracy = 0.0;  // on test_batch fresh sequences
  double train_seconds = 0.0;  // training steps only (train::FitResult::step_seconds)
  double final_loss = 0.0;
};

// Trains one model at c.distance with train::fit (AdamW, warm-up + cosine) and tests it.
RecallResult run_recall(RecallModelKind kind, const RecallConfig& c, const Context& ctx,
                        bool progress);

}  // namespace attn::examples
