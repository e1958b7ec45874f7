// SPDX-License-Identifier: MIT
// Module: the one named parameter registry every layer uses. A module registers its parameters and
// its sub-modules in its constructor; named_parameters() walks them depth first with dotted names
// identical to PyTorch's state_dict keys ("layers.0.self_attn.in_proj_weight"), and optimisers,
// zero_grad, save/load and the bindings all iterate that one list.
//
// Layers follow one pattern (no autograd tape):
//   Tensor forward(inputs..., Cache* cache, const Context& ctx);   cache == nullptr: inference,
//   nothing kept Tensor backward(dout, const Cache& cache, const Context& ctx); returns d(input),
//   ACCUMULATES into the
//                                                                  parameters' grad tensors
// Each layer's Cache struct names every saved activation with its shape.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::nn {

// A learnable tensor and its gradient (same shape, zero until a backward accumulates into it).
struct Parameter {
  Tensor value;
  Tensor grad;
};

// What load_state_dict found, as PyTorch's _IncompatibleKeys.
struct LoadReport {
  std::vector<std::string> missing_keys;  // parameters the state did not provide (left unchanged)
  std::vector<std::string> unexpected_keys;  // state entries no parameter has
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // Registered parameters and children are referenced by address, so modules stay where they are
  // built.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = delete;
  Module& operator=(Module&&) = delete;

  // Every parameter, depth first in registration order, with its dotted name.
  std::vector<std::pair<std::string, Parameter*>> named_parameters();
  std::vector<std::pair<std::string, const Parameter*>> named_parameters() const;
  // The parameter with this dotted name; throws ValueError listing the valid names if there is
  // none.
  Parameter& parameter(const std::string& name);
  int64_t num_parameters() const;  // total element count
  void zero_grad();

  // Training mode (dropout active) vs evaluation; applies to every sub-module, as torch's
  // train()/eval().
  void set_training(bool training);
  bool training() const { return training_; }

  // Buffers: state that is saved and loaded but not learned (BatchNorm's running statistics), as
  // torch's register_buffer. Optimisers never see them; named_buffers() walks them like parameters.
  std::vector<std::pair<std::string, Tensor*>> named_buffers();
  std::vector<std::pair<std::string, const Tensor*>> named_buffers() const;

  // (name, value view) pairs to save, e.g. with io::write_safetensors: every parameter, then every
  // buffer.
  std::vector<std::pair<std::string, ConstTensorView>> state_dict() const;
  // Copies matching entries into the parameters and buffers. A shape mismatch always throws ShapeError naming
  // the key; with strict, missing or unexpected keys throw ValueError listing them (as torch's
  // strict=True).
  LoadReport load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

 protected:
  // Adds a zero-initialised parameter (and gradient) of this shape under `name`.
  Parameter& register_parameter(const std::string& name, const Shape& shape);
  // Adds a zero-initialised buffer of this shape under `name`.
  Tensor& register_buffer(const std::string& name, const Shape& shape);
  // Adds a child whose parameters appear as "name.<child names>"; an empty name splices the child's
  // parameters in at this level (used where PyTorch has no sub-module, e.g. FeedForward in an
  // encoder layer).
  void register_module(const std::string& name, Module& child);

 private:
  std::vector<std::pair<std::string, std::unique_ptr<Parameter>>> params_;
  std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> buffers_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
};

}  // namespace attn::nn
