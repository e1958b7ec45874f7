// SPDX-License-Identifier: MIT
// Layer normalisation over the last dimension (Ba et al., 2016), as torch.nn.LayerNorm.
#pragma once

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::ops {

// x:      (..., C)  any rank >= 1, any strides
// weight: (C)       optional ({} = no scaling)
// bias:   (C)       optional ({} = no shift)
// eps:    added to the biased variance; must be finite and >= 0
// out:    (..., C)  overwritten: (x − mean) · rstd · weight + bias
// mean:   (...)     overwritten (a rank-0 view if x has rank 1)
// rstd:   (...)     overwritten: 1 / sqrt(var + eps)
// Fast path: float storage, each row's statistics accumulated in double, rows in parallel.
void layer_norm_forward(ConstTensorView x, ConstTensorView weight, ConstTensorView bias, double eps,
                        TensorView out, TensorView mean, TensorView rstd, const Context& ctx);

// x, weight, mean, rstd: as in the forward;  dout: (..., C)
// dx: (..., C), dweight: (C), dbias: (C)  ACCUMULATED; each may be {} to skip it. Bitwise the same
// for any thread count (parameter gradients are summed over fixed row chunks, in order).
void layer_norm_backward(ConstTensorView x, ConstTensorView weight, ConstTensorView mean,
                         ConstTensorView rstd, ConstTensorView dout, TensorView dx,
                         TensorView dweight, TensorView dbias, const Context& ctx);

namespace reference {

// The specification of the two above, double accumulation; also for double data.
// x:      (..., C)  any rank >= 1
// weight: (C)       optional ({} = no scaling)
// bias:   (C)       optional ({} = no shift)
// eps:    added to the biased variance; must be finite and >= 0
// out:    (..., C)  overwritten: (x − mean) · rstd · weight + bias
// mean:   (...)     overwritten (a rank-0 view if x has rank 1)
// rstd:   (...)     overwritten: 1 / sqrt(var + eps)
void layer_norm_forward(ConstTensorView x, ConstTensorView weight, ConstTensorView bias, double eps,
                        TensorView out, TensorView mean, TensorView rstd, const Context& ctx);
void layer_norm_forward(ConstTensorViewD x, ConstTensorViewD weight, ConstTensorViewD bias,
                        double eps, TensorViewD out, TensorViewD mean, TensorViewD rstd,
                        const Context& ctx);

// x, weight, mean, rstd: as in the forward;  dout: (..., C)
// dx: (..., C), dweight: (C), dbias: (C)  ACCUMULATED; each may be {} to skip it
void layer_norm_backward(ConstTensorView x, ConstTensorView weight, ConstTensorView mean,
                         ConstTensorView rstd, ConstTensorView dout, TensorView dx,
                         TensorView dweight, TensorView dbias, const Context& ctx);
void layer_norm_backward(ConstTensorViewD x, ConstTensorViewD weight, ConstTensorViewD mean,
                         ConstTensorViewD rstd, ConstTensorViewD dout, TensorViewD dx,
                         TensorViewD dweight, TensorViewD dbias, const Context& ctx);

}  // namespace reference
}  // namespace attn::ops
