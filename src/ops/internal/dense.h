// SPDX-License-Identifier: MIT
// Contiguous float buffers for kernels that walk raw pointers: an input view as itself or a
// contiguous copy, an output view as itself or a temporary written back by flush. Internal header.
#pragma once

#include "attn/tensor.h"

namespace attn::internal {

// A contiguous float view of v: v itself, or a copy.
struct Dense {
  Tensor copy;
  const float* data;
  explicit Dense(ConstTensorView v) {
    if (v.defined() && !v.is_contiguous()) copy = Tensor::copy_of(v);
    data = !v.defined() ? nullptr : copy.defined() ? copy.data() : v.data();
  }
};

// An output: written in place when contiguous, else through a temporary that flush() copies (or,
// for an accumulated output, adds) back.
struct DenseOut {
  TensorView view;
  Tensor temp;
  float* data = nullptr;
  explicit DenseOut(TensorView v) : view(v) {
    if (!v.defined()) return;
    if (!v.is_contiguous()) temp = Tensor(v.shape());
    data = temp.defined() ? temp.data() : v.data();
  }
  void flush_overwrite() {
    if (temp.defined()) copy(ConstTensorView(temp.view()), view);
  }
  void flush_accumulate() {
    if (!temp.defined()) return;
    const ConstTensorView t = temp.view();
    for_each_offset_pair(t, view,
                         [&](int64_t a, int64_t b) { view.at_offset(b) += t.at_offset(a); });
  }
};

}  // namespace attn::internal
