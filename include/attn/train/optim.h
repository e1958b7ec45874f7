// SPDX-License-Identifier: MIT
// Optimisers over a module's parameter registry (PyTorch's update rules), gradient clipping and the
// warm-up + cosine learning-rate schedule.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "attn/nn/module.h"

namespace attn::train {

class Optimizer {
 public:
  explicit Optimizer(nn::Module& module) : module_(module) {}
  virtual ~Optimizer() = default;
  // One update of every parameter from its grad, at learning rate lr, on ctx's threads (the
  // update is element-wise: the same bits for any thread count). Does not zero the grads.
  virtual void step(double lr, const Context& ctx) = 0;
  void step(double lr) { step(lr, thread_context()); }
  int64_t steps() const { return steps_; }
  // Optimiser state as named tensors (for checkpoints): "<kind>.<param name>", plus the step count
  // in load_state/state_metadata.
  virtual std::vector<std::pair<std::string, ConstTensorView>> state() const = 0;
  virtual void load_state(const std::map<std::string, Tensor>& state, int64_t steps) = 0;

 protected:
  nn::Module& module_;
  int64_t steps_ = 0;
};

// torch.optim.SGD: d = g + wd·p; buf = momentum·buf + d (buf = d on the first step); p -= lr·buf.
class Sgd : public Optimizer {
 public:
  Sgd(nn::Module& module, double momentum = 0.0, double weight_decay = 0.0);
  using Optimizer::step;
  void step(double lr, const Context& ctx) override;
  std::vector<std::pair<std::string, ConstTensorView>> state() const override;
  void load_state(const std::map<std::string, Tensor>& state, int64_t steps) override;

 private:
  double momentum_, weight_decay_;
  std::vector<Tensor> buf_;
};

// torch.optim.AdamW: p -= lr·wd·p; m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²;
// p -= lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + eps).
class AdamW : public Optimizer {
 public:
  AdamW(nn::Module& module, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double weight_decay = 0.01);
  using Optimizer::step;
  void step(double lr, const Context& ctx) override;
  std::vector<std::pair<std::string, ConstTensorView>> state() const override;
  void load_state(const std::map<std::string, Tensor>& state, int64_t steps) override;

 private:
  double beta1_, beta2_, eps_, weight_decay_;
  std::vector<Tensor> m_, v_;
};

// torch.nn.utils.clip_grad_norm_: scales every grad by max_norm / (norm + 1e-6) when the global L2
// norm exceeds max_norm. Returns the norm before clipping. The sum of squares is taken in fixed
// chunks (in double) added in order: the same for any thread count.
double clip_grad_norm(nn::Module& module, double max_norm, const Context& ctx = thread_context());

// Linear warm-up from 0 to base_lr over warmup_steps, then cosine decay to min_lr at total_steps
// (and min_lr after). step counts from 0.
double warmup_cosine_lr(int64_t step, int64_t warmup_steps, int64_t total_steps, double base_lr,
                        double min_lr = 0.0);

}  // namespace attn::train
