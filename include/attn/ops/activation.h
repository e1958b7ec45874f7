// SPDX-License-Identifier: MIT
// Element-wise activations, as torch.nn.ReLU and torch.nn.GELU (approximate='none', the erf form).
#pragma once

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::ops {

// x:   any shape
// out: same shape, overwritten; may be the same view as x (in place)
void relu_forward(ConstTensorView x, TensorView out, const Context& ctx);
// GELU(x) = x · Φ(x) = 0.5 · x · (1 + erf(x / √2))
void gelu_forward(ConstTensorView x, TensorView out, const Context& ctx);

// x: the forward's input;  dout: same shape
// dx: same shape, ACCUMULATED: dx += dout · f'(x)
//   ReLU'(x) = [x > 0] (0 at x = 0, as PyTorch);  GELU'(x) = Φ(x) + x · φ(x), φ the standard normal
//   density
void relu_backward(ConstTensorView x, ConstTensorView dout, TensorView dx, const Context& ctx);
void gelu_backward(ConstTensorView x, ConstTensorView dout, TensorView dx, const Context& ctx);

namespace reference {
// The specification of the four above: the same formulas evaluated in double; also for double data.
void relu_forward(ConstTensorView x, TensorView out, const Context& ctx);
void relu_forward(ConstTensorViewD x, TensorViewD out, const Context& ctx);
void gelu_forward(ConstTensorView x, TensorView out, const Context& ctx);
void gelu_forward(ConstTensorViewD x, TensorViewD out, const Context& ctx);
void relu_backward(ConstTensorView x, ConstTensorView dout, TensorView dx, const Context& ctx);
void relu_backward(ConstTensorViewD x, ConstTensorViewD dout, TensorViewD dx, const Context& ctx);
void gelu_backward(ConstTensorView x, ConstTensorView dout, TensorView dx, const Context& ctx);
void gelu_backward(ConstTensorViewD x, ConstTensorViewD dout, TensorViewD dx, const Context& ctx);
}  // namespace reference

}  // namespace attn::ops
