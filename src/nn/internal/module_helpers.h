// SPDX-License-Identifier: MIT
// What the layers' constructors and backwards share: PyTorch's uniform initialisation and the
// empty-cache check. Internal header (src/ only).
#pragma once

#include <cstdio>
#include <string>

#include "attn/context.h"
#include "attn/error.h"
#include "attn/nn/module.h"

namespace attn::nn::internal {

// Every value of p U(−bound, bound), in storage order (PyTorch's kaiming_uniform(a = √5) default
// is bound = 1/√fan_in).
inline void init_uniform(Parameter& p, double bound, Rng& rng) {
  for (auto& v : p.value.values()) v = static_cast<float>(rng.uniform(-bound, bound));
}

// A stack of layers whose parameters and gradients (4 + 4 bytes each) would not fit the memory
// budget: every tensor passes the budget alone, so without this 10^6 layers allocated until the
// system ran out of memory.
inline void check_parameter_budget(const char* fn, double parameters) {
  char count[32];
  std::snprintf(count, sizeof count, "%.3g", parameters);
  check_memory_budget(fn, parameters * 2.0 * sizeof(float),
                      std::string(count) + " parameters with their gradients");
}

// A backward called with a cache no forward filled.
inline void require_cache(const char* fn, bool filled) {
  if (!filled) fail<ValueError>(fn, "the cache is empty: run forward with a cache first");
}

}  // namespace attn::nn::internal
