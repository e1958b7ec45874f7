// SPDX-License-Identifier: MIT
// Geometry and argument checks of the pooling ops, shared by the fast and reference versions.
#pragma once

#include "attn/ops/pool.h"
#include "ops/internal/checks.h"

namespace attn::internal {

// A pooling window set with its defaults resolved (stride 0 -> kernel) and the output size.
struct PoolDims {
  int64_t B, C, H, W, OH, OW;
  ops::Pool2dOptions o;  // stride filled in
  // The window of output (oh, ow) on the input grid, before clipping to the image (max pooling
  // steps through it by dilation).
  int64_t h0(int64_t oh) const { return oh * o.stride_h - o.pad_h; }
  int64_t w0(int64_t ow) const { return ow * o.stride_w - o.pad_w; }
};

// Validates options against x (B, C, H, W); avg = true forbids dilation (avg pooling has none).
PoolDims pool2d_dims(const char* fn, const Shape& x, const ops::Pool2dOptions& options, bool avg);

// The divisor of avg pooling window (oh, ow) and its in-image row and column ranges [h0, h1) ×
// [w0, w1): PyTorch's rule (the window is cut at the padded border first, then at the image).
struct AvgWindow {
  int64_t h0, h1, w0, w1, divisor;
};
AvgWindow avg_window(const PoolDims& d, int64_t oh, int64_t ow);

// Adaptive pooling's window along one axis: [floor(i·in/out), ceil((i+1)·in/out)).
inline int64_t adaptive_start(int64_t i, int64_t in, int64_t out) { return (i * in) / out; }
inline int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}
// Output cell (oh, ow)'s window [h0, h1) × [w0, w1) of an H×W plane pooled to OH×OW.
struct AdaptiveWindow {
  int64_t h0, h1, w0, w1;
  int64_t size() const { return (h1 - h0) * (w1 - w0); }
};
inline AdaptiveWindow adaptive_window(int64_t oh, int64_t ow, int64_t H, int64_t W, int64_t OH,
                                      int64_t OW) {
  return {adaptive_start(oh, H, OH), adaptive_end(oh, H, OH), adaptive_start(ow, W, OW),
          adaptive_end(ow, W, OW)};
}

template <typename T>
PoolDims check_pool2d_forward_args(const char* fn, const BasicView<const T>& x,
                                   const ops::Pool2dOptions& o, const BasicView<T>& out, bool avg) {
  check_rank(fn, "x", x, 4);
  const PoolDims d = pool2d_dims(fn, x.shape(), o, avg);
  check_shape(fn, "out", out, Shape{d.B, d.C, d.OH, d.OW}, "(B, C, OH, OW)");
  check_output(fn, "out", out, x);
  return d;
}

template <typename T>
PoolDims check_pool2d_backward_args(const char* fn, const BasicView<const T>& x,
                                    const ops::Pool2dOptions& o, const BasicView<const T>& dout,
                                    const BasicView<T>& dx, bool avg) {
  check_rank(fn, "x", x, 4);
  const PoolDims d = pool2d_dims(fn, x.shape(), o, avg);
  check_shape(fn, "dout", dout, Shape{d.B, d.C, d.OH, d.OW}, "(B, C, OH, OW)");
  check_shape(fn, "dx", dx, x.shape(), "same as x");
  check_output(fn, "dx", dx, x, dout);
  return d;
}

// Adaptive pooling: `big` (B, C, H, W) and `small` (B, C, OH, OW) agree on B and C.
template <typename A, typename B>
void check_adaptive_args(const char* fn, const char* big_name, const BasicView<A>& big,
                         const char* small_name, const BasicView<B>& small) {
  check_rank(fn, big_name, big, 4);
  check_rank(fn, small_name, small, 4);
  if (big.dim(0) != small.dim(0) || big.dim(1) != small.dim(1))
    fail<ShapeError>(fn, big_name, " has shape ", big.shape().str(), " but ", small_name,
                     " has shape ", small.shape().str(), ": B and C must agree");
  if (small.dim(2) < 1 || small.dim(3) < 1 || big.dim(2) < 1 || big.dim(3) < 1)
    fail<ShapeError>(fn, "empty spatial size: ", big_name, " ", big.shape().str(), ", ", small_name,
                     " ", small.shape().str());
}

}  // namespace attn::internal
