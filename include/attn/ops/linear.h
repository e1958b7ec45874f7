// SPDX-License-Identifier: MIT
// Fully connected layer y = x Wᵀ + b, with PyTorch's weight layout (OUT, IN).
#pragma once

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::ops {

// x:    (N, IN)
// w:    (OUT, IN)
// bias: (OUT)       optional ({} = none)
// out:  (N, OUT)    overwritten
// Fast path: OpenBLAS sgemm over blocks of rows on the context's threads (same result for any
// thread count). Views whose last dimension is not unit-stride are copied first.
void linear_forward(ConstTensorView x, ConstTensorView w, ConstTensorView bias, TensorView out,
                    const Context& ctx);

// dout: (N, OUT)
// dx:   (N, IN)     ACCUMULATED: dx += dout W        ({} to skip)
// dw:   (OUT, IN)   ACCUMULATED: dw += doutᵀ x       ({} to skip)
// dbias:(OUT)       ACCUMULATED: dbias += Σ_n dout   ({} to skip)
void linear_backward(ConstTensorView x, ConstTensorView w, ConstTensorView dout, TensorView dx,
                     TensorView dw, TensorView dbias, const Context& ctx);

namespace reference {
// Same contracts as above; plain loops with double accumulation.
void linear_forward(ConstTensorView x, ConstTensorView w, ConstTensorView bias, TensorView out,
                    const Context& ctx);
void linear_forward(ConstTensorViewD x, ConstTensorViewD w, ConstTensorViewD bias, TensorViewD out,
                    const Context& ctx);
void linear_backward(ConstTensorView x, ConstTensorView w, ConstTensorView dout, TensorView dx,
                     TensorView dw, TensorView dbias, const Context& ctx);
void linear_backward(ConstTensorViewD x, ConstTensorViewD w, ConstTensorViewD dout, TensorViewD dx,
                     TensorViewD dw, TensorViewD dbias, const Context& ctx);
}  // namespace reference

}  // namespace attn::ops
