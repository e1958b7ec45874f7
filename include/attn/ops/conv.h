// SPDX-License-Identifier: MIT
// 2-D and 1-D convolution over NCHW / NCL tensors, with torch.nn.functional.conv2d/conv1d's
// semantics: stride, zero padding, dilation, groups (depthwise when groups == C_in) and an optional
// bias. Cross-correlation, as every deep-learning library means by "convolution".
#pragma once

#include <cstdint>

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::ops {

// Geometry of a 2-D convolution (a 1-D one is the H = 1 case: kernel_h = 1, stride_h = 1, ...).
// Output size along an axis: (in + 2·pad − dilation·(kernel − 1) − 1) / stride + 1, which must be
// >= 1.
struct Conv2dOptions {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;  // C_in and C_out must both be multiples of it
};

// The output shape (B, C_out, OH, OW) for x (B, C_in, H, W) and w (C_out, C_in/groups, KH, KW);
// throws ShapeError / ValueError naming `fn` if they do not fit together.
Shape conv2d_output_shape(const char* fn, const Shape& x, const Shape& w,
                          const Conv2dOptions& options);

// x:    (B, C_in, H, W)
// w:    (C_out, C_in / groups, KH, KW)
// bias: (C_out)              optional ({} = none)
// out:  (B, C_out, OH, OW)   overwritten
// Fast path: per image and group, im2col into per-worker scratch and one single-threaded sgemm
// (W_g · col); a 1×1 kernel with stride 1 and no padding multiplies x in place. Images run in
// parallel, so the result does not depend on the thread count. Non-contiguous views are copied.
void conv2d_forward(ConstTensorView x, ConstTensorView w, ConstTensorView bias,
                    const Conv2dOptions& options, TensorView out, const Context& ctx);

// dout:  (B, C_out, OH, OW)
// dx:    (B, C_in, H, W)             ACCUMULATED ({} to skip): col2im(W_gᵀ · dout)
// dw:    (C_out, C_in/groups, KH, KW) ACCUMULATED ({} to skip): Σ_b dout · colᵀ
// dbias: (C_out)                     ACCUMULATED ({} to skip): Σ over B, OH, OW
// dw sums fixed chunks of images (chunk count from B alone) and then the chunks in order, so it too
// is the same for any thread count.
void conv2d_backward(ConstTensorView x, ConstTensorView w, ConstTensorView dout,
                     const Conv2dOptions& options, TensorView dx, TensorView dw, TensorView dbias,
                     const Context& ctx);

// 1-D: x (B, C_in, L), w (C_out, C_in/groups, K), bias (C_out), out (B, C_out, OL), with
// stride/padding/dilation along L. The same kernels as conv2d on the (B, C, 1, L) view; same
// contracts (out overwritten, gradients accumulated).
struct Conv1dOptions {
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
};
Conv2dOptions as_conv2d(const Conv1dOptions& options);
void conv1d_forward(ConstTensorView x, ConstTensorView w, ConstTensorView bias,
                    const Conv1dOptions& options, TensorView out, const Context& ctx);
void conv1d_backward(ConstTensorView x, ConstTensorView w, ConstTensorView dout,
                     const Conv1dOptions& options, TensorView dx, TensorView dw, TensorView dbias,
                     const Context& ctx);

namespace reference {
// Same contracts; the definition as seven nested loops, double accumulation, single-threaded.
void conv2d_forward(ConstTensorView x, ConstTensorView w, ConstTensorView bias,
                    const Conv2dOptions& options, TensorView out, const Context& ctx);
void conv2d_forward(ConstTensorViewD x, ConstTensorViewD w, ConstTensorViewD bias,
                    const Conv2dOptions& options, TensorViewD out, const Context& ctx);
void conv2d_backward(ConstTensorView x, ConstTensorView w, ConstTensorView dout,
                     const Conv2dOptions& options, TensorView dx, TensorView dw, TensorView dbias,
                     const Context& ctx);
void conv2d_backward(ConstTensorViewD x, ConstTensorViewD w, ConstTensorViewD dout,
                     const Conv2dOptions& options, TensorViewD dx, TensorViewD dw,
                     TensorViewD dbias, const Context& ctx);
}  // namespace reference

}  // namespace attn::ops
