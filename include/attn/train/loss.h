// SPDX-License-Identifier: MIT
// Losses with their gradients, as torch.nn.functional.cross_entropy and mse_loss (reduction
// "mean").
#pragma once

#include <cstdint>
#include <span>

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::train {

struct CrossEntropyResult {
  double loss = 0.0;    // mean over counted rows (0 when none)
  int64_t count = 0;    // rows whose target is not ignore_index
  int64_t correct = 0;  // counted rows whose argmax equals the target
};

// logits:  (N, V) unnormalised scores
// targets: N class ids in [0, V), or ignore_index (those rows add no loss and get zero gradient)
// label_smoothing ε in [0, 1): the target distribution is (1-ε)·onehot + ε/V, as PyTorch
// dlogits:  (N, V) OVERWRITTEN with d(loss)/d(logits) if defined: (softmax − target distribution) /
// count
CrossEntropyResult cross_entropy(ConstTensorView logits, std::span<const int64_t> targets,
                                 TensorView dlogits, int64_t ignore_index = -100,
                                 double label_smoothing = 0.0);

// mean((pred − target)²) over all elements; dpred (same shape) OVERWRITTEN with 2(pred −
// target)/numel if defined.
double mse_loss(ConstTensorView pred, ConstTensorView target, TensorView dpred);

}  // namespace attn::train
