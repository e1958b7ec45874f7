// SPDX-License-Identifier: MIT
// attn.nn's C++ side: the library's modules as pybind11 classes (python/src/module_bindings.cc).
#pragma once

#include <pybind11/pybind11.h>

namespace attn::python {
void register_modules(pybind11::module_& m);
}  // namespace attn::python
