// SPDX-License-Identifier: MIT
// Softmax over the last dimension.
#pragma once

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::ops {

// x:   (..., D)   any rank >= 1, any strides
// out: (..., D)   overwritten; softmax over the last dimension. A row that is all -inf gives zeros.
// Fast path: float math, rows in parallel (bitwise the same for any thread count).
void softmax_forward(ConstTensorView x, TensorView out, const Context& ctx);

// out:  (..., D)  the forward's output
// dout: (..., D)
// dx:   (..., D)  ACCUMULATED: dx += out ⊙ (dout − Σ_d dout ⊙ out)
void softmax_backward(ConstTensorView out, ConstTensorView dout, TensorView dx, const Context& ctx);

namespace reference {

// The specification of the two above, double accumulation; also for double data.
// x:   (..., D)   any rank >= 1, any strides
// out: (..., D)   overwritten; softmax over the last dimension. A row that is all -inf gives zeros.
void softmax_forward(ConstTensorView x, TensorView out, const Context& ctx);
void softmax_forward(ConstTensorViewD x, TensorViewD out, const Context& ctx);

// out:  (..., D)  the forward's output
// dout: (..., D)
// dx:   (..., D)  ACCUMULATED: dx += out ⊙ (dout − Σ_d dout ⊙ out)
void softmax_backward(ConstTensorView out, ConstTensorView dout, TensorView dx, const Context& ctx);
void softmax_backward(ConstTensorViewD out, ConstTensorViewD dout, TensorViewD dx,
                      const Context& ctx);

}  // namespace reference
}  // namespace attn::ops
