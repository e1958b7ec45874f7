// SPDX-License-Identifier: MIT
// Fully connected layer y = x Wᵀ + b, with PyTorch's weight layout (OUT, IN).
#pragma once

#include <string>

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

// The OpenBLAS kernel set this process runs ("Haswell", "SkylakeX", "Zen", "Prescott", ...).
std::string blas_core();
// An OPENBLAS_CORETYPE that suits this CPU better than OpenBLAS's own pick, or "" when its pick is
// fine. OpenBLAS takes CPUs newer than it knows for a generic SSE3 "Prescott": Debian 12's 0.3.21
// does so on Emerald Rapids Xeons (model 207), where sgemm then runs about 3× slower (the speech
// encoder of `attn speech encode`: 1.5 s instead of 0.45 s). The variable is read when OpenBLAS
// loads, so a process must be restarted with it set; the attn CLI does that itself.
std::string suggested_blas_coretype();

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
