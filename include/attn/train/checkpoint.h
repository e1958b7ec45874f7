// SPDX-License-Identifier: MIT
// Checkpoints as safetensors: "model.<state_dict name>" for parameters, "optim.<state name>" for
// the optimiser, and metadata {"step": ..., plus anything the caller adds}.
#pragma once

#include <map>
#include <string>

#include "attn/nn/module.h"
#include "attn/train/optim.h"

namespace attn::train {

void save_checkpoint(const std::string& path, const nn::Module& model, const Optimizer* optimizer,
                     int64_t step, const std::map<std::string, std::string>& metadata = {});
// Loads parameters (strictly) and, if given, the optimiser state; returns the saved step.
int64_t load_checkpoint(const std::string& path, nn::Module& model, Optimizer* optimizer);

}  // namespace attn::train
