// SPDX-License-Identifier: MIT
#include "attn/train/checkpoint.h"

#include "attn/io/safetensors.h"

namespace attn::train {

void save_checkpoint(const std::string& path, const nn::Module& model, const Optimizer* optimizer,
                     int64_t step, const std::map<std::string, std::string>& metadata) {
  std::vector<io::NamedTensorView> tensors;
  for (const auto& [name, view] : model.state_dict()) tensors.emplace_back("model." + name, view);
  if (optimizer)
    for (const auto& [name, view] : optimizer->state()) tensors.emplace_back("optim." + name, view);
  auto meta = metadata;
  meta["step"] = std::to_string(step);
  io::write_safetensors(path, tensors, meta);
}

int64_t load_checkpoint(const std::string& path, nn::Module& model, Optimizer* optimizer) {
  io::SafetensorsFile file = io::read_safetensors(path);
  std::map<std::string, Tensor> params, optim;
  for (auto& [name, t] : file.tensors) {
    if (name.rfind("model.", 0) == 0) {
      params.emplace(name.substr(6), std::move(t));
    } else if (name.rfind("optim.", 0) == 0) {
      optim.emplace(name.substr(6), std::move(t));
    } else {
      fail<IoError>("load_checkpoint", path, ": unexpected tensor '", name,
                    "' (expected model.* or optim.*)");
    }
  }
  model.load_state_dict(params, true);
  int64_t step = 0;
  if (const auto it = file.metadata.find("step"); it != file.metadata.end()) {
    try {
      step = std::stoll(it->second);
    } catch (const std::exception&) {
      fail<IoError>("load_checkpoint", path, ": metadata step '", it->second,
                    "' is not an integer");
    }
  }
  if (optimizer) optimizer->load_state(optim, step);
  return step;
}

}  // namespace attn::train
