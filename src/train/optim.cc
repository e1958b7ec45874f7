// SPDX-License-Identifier: MIT
#include "attn/train/optim.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/parallel.h"
#include "train/internal/optim_kernels.h"

namespace attn::train {

namespace {

std::vector<Tensor> zeros_like_params(nn::Module& m) {
  std::vector<Tensor> out;
  for (auto& [name, p] : m.named_parameters()) out.emplace_back(p->value.shape());
  return out;
}

std::vector<std::pair<std::string, ConstTensorView>> named_state(nn::Module& m,
                                                                 const std::string& kind,
                                                                 const std::vector<Tensor>& t) {
  std::vector<std::pair<std::string, ConstTensorView>> out;
  size_t i = 0;
  for (auto& [name, p] : m.named_parameters()) out.emplace_back(kind + "." + name, t[i++].view());
  return out;
}

void load_named(nn::Module& m, const std::string& kind, const std::map<std::string, Tensor>& state,
                std::vector<Tensor>& t) {
  size_t i = 0;
  for (auto& [name, p] : m.named_parameters()) {
    const auto it = state.find(kind + "." + name);
    if (it == state.end())
      fail<ValueError>("Optimizer::load_state", "missing '", kind, ".", name, "'");
    if (!(it->second.shape() == t[i].shape()))
      fail<ShapeError>("Optimizer::load_state", "'", kind, ".", name, "' has shape ",
                       it->second.shape().str(), " but the parameter has ", t[i].shape().str());
    copy(it->second.view(), t[i].view());
    ++i;
  }
}

// The parameters' elements as fixed chunks, so that an update over many small tensors is one
// parallel loop: chunk i covers elements [begin, end) of parameter `param`.
struct Chunk {
  size_t param;
  nn::Parameter* p;
  size_t begin, end;
};
constexpr size_t kChunkElements = 8192;
std::vector<Chunk> chunks_of(nn::Module& m) {
  std::vector<Chunk> chunks;
  size_t i = 0;
  for (auto& [name, p] : m.named_parameters()) {
    const size_t n = static_cast<size_t>(p->value.numel());
    for (size_t b = 0; b < n; b += kChunkElements)
      chunks.push_back({i, p, b, std::min(n, b + kChunkElements)});
    ++i;
  }
  return chunks;
}

// fn(chunk) over every chunk, in parallel when the work (cost per element) pays.
template <typename F>
void for_each_chunk(const std::vector<Chunk>& chunks, const Context& ctx, double cost, F&& fn) {
  internal::parallel_for(ctx, static_cast<int64_t>(chunks.size()),
                         cost * static_cast<double>(kChunkElements),
                         [&](int64_t c, int) { fn(chunks[static_cast<size_t>(c)]); });
}

void check_lr(const char* fn, double lr) {
  if (!std::isfinite(lr) || lr < 0)
    fail<ValueError>(fn, "learning rate must be finite and >= 0, got ", lr);
}

}  // namespace

Sgd::Sgd(nn::Module& module, double momentum, double weight_decay)
    : Optimizer(module),
      momentum_(momentum),
      weight_decay_(weight_decay),
      buf_(zeros_like_params(module)) {
  if (momentum < 0 || weight_decay < 0)
    fail<ValueError>("Sgd", "momentum and weight_decay must be >= 0");
}

void Sgd::step(double lr, const Context& ctx) {
  check_lr("Sgd::step", lr);
  for_each_chunk(chunks_of(module_), ctx, 4.0, [&](const Chunk& c) {
    auto w = c.p->value.values();
    const auto g = c.p->grad.values();
    auto b = buf_[c.param].values();
    for (size_t k = c.begin; k < c.end; ++k) {
      const double d = static_cast<double>(g[k]) + weight_decay_ * static_cast<double>(w[k]);
      double u = d;
      if (momentum_ > 0) {
        u = steps_ == 0 ? d : momentum_ * static_cast<double>(b[k]) + d;
        b[k] = static_cast<float>(u);
      }
      w[k] = static_cast<float>(static_cast<double>(w[k]) - lr * u);
    }
  });
  ++steps_;
}

std::vector<std::pair<std::string, ConstTensorView>> Sgd::state() const {
  return named_state(module_, "momentum", buf_);
}
void Sgd::load_state(const std::map<std::string, Tensor>& state, int64_t steps) {
  load_named(module_, "momentum", state, buf_);
  steps_ = steps;
}

AdamW::AdamW(nn::Module& module, double beta1, double beta2, double eps, double weight_decay)
    : Optimizer(module),
      beta1_(beta1),
      beta2_(beta2),
      eps_(eps),
      weight_decay_(weight_decay),
      m_(zeros_like_params(module)),
      v_(zeros_like_params(module)) {
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1) || !(eps > 0) || weight_decay < 0)
    fail<ValueError>("AdamW", "need 0 <= beta1, beta2 < 1, eps > 0, weight_decay >= 0; got ", beta1,
                     ", ", beta2, ", ", eps, ", ", weight_decay);
}

void AdamW::step(double lr, const Context& ctx) {
  check_lr("AdamW::step", lr);
  ++steps_;
  const double c1 = 1.0 - std::pow(beta1_, static_cast<double>(steps_));
  const double c2 = 1.0 - std::pow(beta2_, static_cast<double>(steps_));
  const internal::kernels::AdamWStep s{lr, 1.0 - lr * weight_decay_, beta1_, beta2_, eps_, c1, c2};
  for_each_chunk(chunks_of(module_), ctx, 20.0, [&](const Chunk& c) {
    internal::kernels::adamw_update(c.p->value.data() + c.begin, c.p->grad.data() + c.begin,
                                    m_[c.param].data() + c.begin, v_[c.param].data() + c.begin,
                                    c.end - c.begin, s);
  });
}

std::vector<std::pair<std::string, ConstTensorView>> AdamW::state() const {
  auto out = named_state(module_, "exp_avg", m_);
  for (auto& e : named_state(module_, "exp_avg_sq", v_)) out.push_back(e);
  return out;
}

void AdamW::load_state(const std::map<std::string, Tensor>& state, int64_t steps) {
  load_named(module_, "exp_avg", state, m_);
  load_named(module_, "exp_avg_sq", state, v_);
  steps_ = steps;
}

double clip_grad_norm(nn::Module& module, double max_norm, const Context& ctx) {
  if (!(max_norm > 0)) fail<ValueError>("clip_grad_norm", "max_norm must be > 0, got ", max_norm);
  const std::vector<Chunk> chunks = chunks_of(module);
  std::vector<double> partial(chunks.size(), 0.0);
  for_each_chunk(chunks, ctx, 1.0, [&](const Chunk& c) {
    const auto g = c.p->grad.values();
    double sq = 0.0;
    for (size_t k = c.begin; k < c.end; ++k)
      sq += static_cast<double>(g[k]) * static_cast<double>(g[k]);
    partial[static_cast<size_t>(&c - chunks.data())] = sq;  // c is an element of chunks
  });
  double sq = 0.0;
  for (double p : partial) sq += p;
  const double norm = std::sqrt(sq);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    for_each_chunk(chunks, ctx, 1.0, [&](const Chunk& c) {
      auto g = c.p->grad.values();
      for (size_t k = c.begin; k < c.end; ++k)
        g[k] = static_cast<float>(static_cast<double>(g[k]) * coef);
    });
  return norm;
}

double warmup_cosine_lr(int64_t step, int64_t warmup_steps, int64_t total_steps, double base_lr,
                        double min_lr) {
  if (warmup_steps < 0 || total_steps < 1 || warmup_steps > total_steps)
    fail<ValueError>("warmup_cosine_lr",
                     "need 0 <= warmup_steps <= total_steps, total_steps >= 1; got ", warmup_steps,
                     ", ", total_steps);
  if (step < warmup_steps)
    return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (step >= total_steps) return min_lr;
  const double t = static_cast<double>(step - warmup_steps) /
                   static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(std::numbers::pi * t));
}

}  // namespace attn::train
