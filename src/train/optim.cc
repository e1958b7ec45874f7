// SPDX-License-Identifier: MIT
#include "attn/train/optim.h"

#include <cmath>
#include <numbers>

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

void Sgd::step(double lr) {
  check_lr("Sgd::step", lr);
  size_t i = 0;
  for (auto& [name, p] : module_.named_parameters()) {
    auto w = p->value.values();
    const auto g = p->grad.values();
    auto b = buf_[i++].values();
    for (size_t k = 0; k < w.size(); ++k) {
      const double d = static_cast<double>(g[k]) + weight_decay_ * static_cast<double>(w[k]);
      double u = d;
      if (momentum_ > 0) {
        u = steps_ == 0 ? d : momentum_ * static_cast<double>(b[k]) + d;
        b[k] = static_cast<float>(u);
      }
      w[k] = static_cast<float>(static_cast<double>(w[k]) - lr * u);
    }
  }
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

void AdamW::step(double lr) {
  check_lr("AdamW::step", lr);
  ++steps_;
  const double c1 = 1.0 - std::pow(beta1_, static_cast<double>(steps_));
  const double c2 = 1.0 - std::pow(beta2_, static_cast<double>(steps_));
  size_t i = 0;
  for (auto& [name, p] : module_.named_parameters()) {
    auto w = p->value.values();
    const auto g = p->grad.values();
    auto m = m_[i].values();
    auto v = v_[i].values();
    ++i;
    for (size_t k = 0; k < w.size(); ++k) {
      double wk = static_cast<double>(w[k]) * (1.0 - lr * weight_decay_);
      const double gk = static_cast<double>(g[k]);
      const double mk = beta1_ * static_cast<double>(m[k]) + (1.0 - beta1_) * gk;
      const double vk = beta2_ * static_cast<double>(v[k]) + (1.0 - beta2_) * gk * gk;
      m[k] = static_cast<float>(mk);
      v[k] = static_cast<float>(vk);
      wk -= lr * (mk / c1) / (std::sqrt(vk / c2) + eps_);
      w[k] = static_cast<float>(wk);
    }
  }
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

double clip_grad_norm(nn::Module& module, double max_norm) {
  if (!(max_norm > 0)) fail<ValueError>("clip_grad_norm", "max_norm must be > 0, got ", max_norm);
  double sq = 0.0;
  for (auto& [name, p] : module.named_parameters())
    for (float g : p->grad.values()) sq += static_cast<double>(g) * static_cast<double>(g);
  const double norm = std::sqrt(sq);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    for (auto& [name, p] : module.named_parameters())
      for (float& g : p->grad.values()) g = static_cast<float>(static_cast<double>(g) * coef);
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
