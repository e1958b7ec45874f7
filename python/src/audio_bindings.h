// SPDX-License-Identifier: MIT
// attn.audio's C++ side (python/src/audio_bindings.cc).
#pragma once

#include <pybind11/pybind11.h>

namespace attn::python {
void register_audio(pybind11::module_& m);
}  // namespace attn::python
