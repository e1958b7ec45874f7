// SPDX-License-Identifier: MIT
// Batch normalisation over the channel axis, torch.nn.functional.batch_norm's semantics. Inputs are
// (B, C, L): BatchNorm1d's (B, C) is (B, C, 1) and BatchNorm2d's (B, C, H, W) is (B, C, H·W).
#pragma once

#include <cstdint>

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::ops {

// x:            (B, C, L)
// weight, bias: (C)   optional ({} = 1 and 0)
// running_mean, running_var: (C) optional; in batch-statistics mode they are UPDATED in place:
//               r ← (1 − momentum)·r + momentum·batch value, the variance unbiased (n / (n − 1))
// batch_stats:  true (training, or no running statistics): normalise by the batch's mean and biased
//               variance over B·L values per channel (needs B·L > 1); false (evaluation): by the
//               running statistics
// out:          (B, C, L)  overwritten: (x − mean)·rstd·weight + bias
// save_mean, save_rstd: (C) overwritten: the mean and 1/sqrt(var + eps) used, for the backward
// Fast path: one task per block of channels, sums in double, so any thread count gives the same
// bits.
void batch_norm_forward(ConstTensorView x, ConstTensorView weight, ConstTensorView bias,
                        TensorView running_mean, TensorView running_var, bool batch_stats,
                        double momentum, double eps, TensorView out, TensorView save_mean,
                        TensorView save_rstd, const Context& ctx);

// dout: (B, C, L); save_mean / save_rstd and batch_stats as the forward's.
// dx:      (B, C, L) ACCUMULATED ({} to skip): with batch statistics the mean and variance depend
// on x,
//          dx = rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat)), dxhat = dout·weight; else
//          dout·weight·rstd
// dweight: (C) ACCUMULATED ({} to skip): Σ dout·xhat
// dbias:   (C) ACCUMULATED ({} to skip): Σ dout
void batch_norm_backward(ConstTensorView x, ConstTensorView weight, ConstTensorView save_mean,
                         ConstTensorView save_rstd, bool batch_stats, ConstTensorView dout,
                         TensorView dx, TensorView dweight, TensorView dbias, const Context& ctx);

namespace reference {
// Same contracts: the formulas channel by channel in double, single-threaded.
void batch_norm_forward(ConstTensorViewD x, ConstTensorViewD weight, ConstTensorViewD bias,
                        TensorViewD running_mean, TensorViewD running_var, bool batch_stats,
                        double momentum, double eps, TensorViewD out, TensorViewD save_mean,
                        TensorViewD save_rstd, const Context& ctx);
void batch_norm_backward(ConstTensorViewD x, ConstTensorViewD weight, ConstTensorViewD save_mean,
                         ConstTensorViewD save_rstd, bool batch_stats, ConstTensorViewD dout,
                         TensorViewD dx, TensorViewD dweight, TensorViewD dbias,
                         const Context& ctx);
}  // namespace reference

}  // namespace attn::ops
