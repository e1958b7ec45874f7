// SPDX-License-Identifier: MIT
#include "attn/nn/module.h"

#include <set>

namespace attn::nn {

namespace {

std::string join(const std::string& prefix, const std::string& name) {
  if (prefix.empty()) return name;
  if (name.empty()) return prefix;
  return prefix + "." + name;
}

std::string list(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace

std::vector<std::pair<std::string, Parameter*>> Module::named_parameters() {
  std::vector<std::pair<std::string, Parameter*>> out;
  for (const auto& [name, p] : params_) out.emplace_back(name, p.get());
  for (const auto& [name, child] : children_)
    for (auto& [child_name, p] : child->named_parameters())
      out.emplace_back(join(name, child_name), p);
  return out;
}

std::vector<std::pair<std::string, const Parameter*>> Module::named_parameters() const {
  std::vector<std::pair<std::string, const Parameter*>> out;
  for (auto& [name, p] : const_cast<Module*>(this)->named_parameters()) out.emplace_back(name, p);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::named_buffers() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (const auto& [name, b] : buffers_) out.emplace_back(name, b.get());
  for (const auto& [name, child] : children_)
    for (auto& [child_name, b] : child->named_buffers())
      out.emplace_back(join(name, child_name), b);
  return out;
}

std::vector<std::pair<std::string, const Tensor*>> Module::named_buffers() const {
  std::vector<std::pair<std::string, const Tensor*>> out;
  for (auto& [name, b] : const_cast<Module*>(this)->named_buffers()) out.emplace_back(name, b);
  return out;
}

Parameter& Module::parameter(const std::string& name) {
  std::vector<std::string> names;
  for (auto& [n, p] : named_parameters()) {
    if (n == name) return *p;
    names.push_back(n);
  }
  fail<ValueError>("Module::parameter", "no parameter named '", name, "' (have: ", list(names),
                   ")");
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, p] : named_parameters()) n += p->value.numel();
  return n;
}

void Module::zero_grad() {
  for (auto& [name, p] : named_parameters()) fill(p->grad.view(), 0.0f);
}

void Module::set_training(bool training) {
  training_ = training;
  for (auto& [name, child] : children_) child->set_training(training);
}

std::vector<std::pair<std::string, ConstTensorView>> Module::state_dict() const {
  std::vector<std::pair<std::string, ConstTensorView>> out;
  for (const auto& [name, p] : named_parameters()) out.emplace_back(name, p->value.view());
  for (const auto& [name, b] : named_buffers()) out.emplace_back(name, b->view());
  return out;
}

LoadReport Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  LoadReport report;
  std::set<std::string> used;
  std::vector<std::pair<std::string, Tensor*>> targets;  // every parameter's value, then buffers
  for (auto& [name, p] : named_parameters()) targets.emplace_back(name, &p->value);
  for (auto& entry : named_buffers()) targets.push_back(entry);
  for (auto& [name, t] : targets) {
    const auto it = state.find(name);
    if (it == state.end()) {
      report.missing_keys.push_back(name);
      continue;
    }
    if (!(it->second.shape() == t->shape()))
      fail<ShapeError>("load_state_dict", "'", name, "' has shape ", it->second.shape().str(),
                       " in the state but ", t->shape().str(), " in the model");
    used.insert(name);
  }
  for (const auto& [name, t] : state)
    if (!used.count(name)) report.unexpected_keys.push_back(name);
  if (strict && (!report.missing_keys.empty() || !report.unexpected_keys.empty()))
    fail<ValueError>("load_state_dict", "strict load failed: missing keys [",
                     list(report.missing_keys), "], unexpected keys [",
                     list(report.unexpected_keys), "]");
  // Copy only after every check passed, so a failed load leaves the module unchanged.
  for (auto& [name, t] : targets) {
    const auto it = state.find(name);
    if (it != state.end()) copy(it->second.view(), t->view());
  }
  return report;
}

Parameter& Module::register_parameter(const std::string& name, const Shape& shape) {
  for (const auto& [n, p] : params_)
    if (n == name)
      fail<ValueError>("Module::register_parameter", "parameter '", name, "' registered twice");
  auto p = std::make_unique<Parameter>();
  p->value = Tensor(shape);
  p->grad = Tensor(shape);
  params_.emplace_back(name, std::move(p));
  return *params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, const Shape& shape) {
  for (const auto& [n, b] : buffers_)
    if (n == name)
      fail<ValueError>("Module::register_buffer", "buffer '", name, "' registered twice");
  buffers_.emplace_back(name, std::make_unique<Tensor>(shape));
  return *buffers_.back().second;
}

void Module::register_module(const std::string& name, Module& child) {
  children_.emplace_back(name, &child);
}

}  // namespace attn::nn
