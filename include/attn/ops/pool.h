// SPDX-License-Identifier: MIT
// 2-D pooling over NCHW tensors with torch.nn.functional's semantics: max_pool2d, avg_pool2d and
// adaptive_avg_pool2d. Each (image, channel) plane is pooled on its own.
#pragma once

#include <cstdint>

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::ops {

// Window geometry. stride 0 means "= kernel" (PyTorch's default). Output size along an axis:
// floor_or_ceil((in + 2·pad − dilation·(kernel − 1) − 1) / stride) + 1; with ceil_mode, a last
// window that would start inside the right padding is dropped (as PyTorch). pad <= kernel / 2.
struct Pool2dOptions {
  int64_t kernel_h = 2, kernel_w = 2;
  int64_t stride_h = 0, stride_w = 0;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;  // max pooling only (avg pooling has none: must be 1)
  bool ceil_mode = false;
  bool count_include_pad = true;  // avg pooling: divide by the window size including padding
};

// (B, C, OH, OW) for x of shape (B, C, H, W); throws naming fn if the options do not fit.
Shape pool2d_output_shape(const char* fn, const Shape& x, const Pool2dOptions& options);

// x:   (B, C, H, W)
// out: (B, C, OH, OW)   overwritten: the largest element of each window (padding never wins; NaN
//                       propagates)
void max_pool2d_forward(ConstTensorView x, const Pool2dOptions& options, TensorView out,
                        const Context& ctx);
// dout: (B, C, OH, OW)
// dx:   (B, C, H, W)    ACCUMULATED: each window's gradient goes to its first largest element
//                       (re-found from x, so nothing is saved between forward and backward)
void max_pool2d_backward(ConstTensorView x, const Pool2dOptions& options, ConstTensorView dout,
                         TensorView dx, const Context& ctx);

// out (B, C, OH, OW) overwritten: each window's mean, padding counted per count_include_pad.
void avg_pool2d_forward(ConstTensorView x, const Pool2dOptions& options, TensorView out,
                        const Context& ctx);
// dx (B, C, H, W) ACCUMULATED: dout spread evenly over each window's in-image elements.
void avg_pool2d_backward(ConstTensorView x, const Pool2dOptions& options, ConstTensorView dout,
                         TensorView dx, const Context& ctx);

// torch.nn.AdaptiveAvgPool2d: output cell (i, j) averages rows [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉) and the
// columns likewise. x (B, C, H, W) -> out (B, C, OH, OW) overwritten; dx ACCUMULATED.
void adaptive_avg_pool2d_forward(ConstTensorView x, TensorView out, const Context& ctx);
void adaptive_avg_pool2d_backward(ConstTensorView dout, TensorView dx, const Context& ctx);

namespace reference {
// Same contracts: for each output, a loop over the whole window checking every tap, in double.
void max_pool2d_forward(ConstTensorViewD x, const Pool2dOptions& options, TensorViewD out,
                        const Context& ctx);
void max_pool2d_backward(ConstTensorViewD x, const Pool2dOptions& options, ConstTensorViewD dout,
                         TensorViewD dx, const Context& ctx);
void avg_pool2d_forward(ConstTensorViewD x, const Pool2dOptions& options, TensorViewD out,
                        const Context& ctx);
void avg_pool2d_backward(ConstTensorViewD x, const Pool2dOptions& options, ConstTensorViewD dout,
                         TensorViewD dx, const Context& ctx);
void adaptive_avg_pool2d_forward(ConstTensorViewD x, TensorViewD out, const Context& ctx);
void adaptive_avg_pool2d_backward(ConstTensorViewD dout, TensorViewD dx, const Context& ctx);
}  // namespace reference

}  // namespace attn::ops
