// SPDX-License-Identifier: MIT
// A PyTorch fixture file (tests/golden/<dir>/<name>.safetensors, written by a scripts/gen_*.py):
// tensors named param.*, in.*, out.*, grad.* and a JSON "config" in the metadata.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "attn/attn.h"
#include "testing/testing.h"

namespace attn::testing {

struct GoldenFixture {
  io::SafetensorsFile file;
  nlohmann::json config;
  explicit GoldenFixture(const std::string& relative)
      : file(io::read_safetensors(golden_path(relative + ".safetensors"))),
        config(nlohmann::json::parse(file.metadata.at("config"))) {}
  bool has(const std::string& name) const { return file.tensors.count(name) > 0; }
  ConstTensorView at(const std::string& name) const {
    const auto it = file.tensors.find(name);
    if (it == file.tensors.end()) throw std::runtime_error("fixture has no tensor " + name);
    return it->second.view();
  }
  ConstTensorView maybe(const std::string& name) const {
    return has(name) ? at(name) : ConstTensorView();
  }
  // The tensors named <prefix><name>, keyed by name ("param." gives a state dict).
  std::map<std::string, Tensor> with_prefix(const std::string& prefix) const {
    std::map<std::string, Tensor> out;
    for (const auto& [k, v] : file.tensors)
      if (k.rfind(prefix, 0) == 0) out.emplace(k.substr(prefix.size()), Tensor::copy_of(v.view()));
    return out;
  }
  std::map<std::string, Tensor> params() const { return with_prefix("param."); }
};

}  // namespace attn::testing
