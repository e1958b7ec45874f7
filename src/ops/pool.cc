// SPDX-License-Identifier: MIT
// Fast pooling: one task per block of (image, channel) planes, windows clipped to the image once
// per output instead of testing every tap (tested against pool_reference.cc).
#include <algorithm>
#include <cmath>
#include <limits>

#include "attn/ops/pool.h"
#include "core/parallel.h"
#include "ops/internal/dense.h"
#include "ops/internal/pool_checks.h"
#include "ops/internal/pool_kernels.h"

namespace attn::internal {

PoolDims pool2d_dims(const char* fn, const Shape& x, const ops::Pool2dOptions& options, bool avg) {
  PoolDims d{x[0], x[1], x[2], x[3], 0, 0, options};
  ops::Pool2dOptions& o = d.o;
  if (o.stride_h == 0) o.stride_h = o.kernel_h;
  if (o.stride_w == 0) o.stride_w = o.kernel_w;
  if (o.kernel_h < 1 || o.kernel_w < 1)
    fail<ValueError>(fn, "kernel_size must be >= 1, got (", o.kernel_h, ", ", o.kernel_w, ")");
  if (o.stride_h < 1 || o.stride_w < 1)
    fail<ValueError>(fn, "stride must be >= 1 (or 0 for the kernel size), got (", o.stride_h, ", ",
                     o.stride_w, ")");
  if (o.dilation_h < 1 || o.dilation_w < 1)
    fail<ValueError>(fn, "dilation must be >= 1, got (", o.dilation_h, ", ", o.dilation_w, ")");
  if (avg && (o.dilation_h != 1 || o.dilation_w != 1))
    fail<ValueError>(fn, "avg pooling has no dilation, got (", o.dilation_h, ", ", o.dilation_w,
                     ")");
  check_geometry(fn, "kernel_size", o.kernel_h, o.kernel_w);
  check_geometry(fn, "stride", o.stride_h, o.stride_w);
  check_geometry(fn, "dilation", o.dilation_h, o.dilation_w);
  const int64_t eff_h = dilated_extent(fn, o.dilation_h, o.kernel_h),
                eff_w = dilated_extent(fn, o.dilation_w, o.kernel_w);
  if (o.pad_h < 0 || o.pad_w < 0 || o.pad_h > eff_h / 2 || o.pad_w > eff_w / 2)
    fail<ValueError>(fn, "padding (", o.pad_h, ", ", o.pad_w,
                     ") must be >= 0 and at most half the kernel (", eff_h, ", ", eff_w, ")");
  auto out_size = [&](int64_t in, int64_t pad, int64_t eff, int64_t stride) {
    const int64_t span = in + 2 * pad - eff + (o.ceil_mode ? stride - 1 : 0);
    if (span < 0) return int64_t{0};
    int64_t n = span / stride + 1;
    if (o.ceil_mode && (n - 1) * stride >= in + pad) --n;
    return n;
  };
  d.OH = out_size(d.H, o.pad_h, eff_h, o.stride_h);
  d.OW = out_size(d.W, o.pad_w, eff_w, o.stride_w);
  if (d.OH < 1 || d.OW < 1)
    fail<ShapeError>(fn, "a (", o.kernel_h, ", ", o.kernel_w, ") window does not fit x of shape ",
                     x.str(), " with padding (", o.pad_h, ", ", o.pad_w, "): the output is empty");
  return d;
}

AvgWindow avg_window(const PoolDims& d, int64_t oh, int64_t ow) {
  int64_t h0 = d.h0(oh), w0 = d.w0(ow);
  int64_t h1 = std::min(h0 + d.o.kernel_h, d.H + d.o.pad_h);
  int64_t w1 = std::min(w0 + d.o.kernel_w, d.W + d.o.pad_w);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  h0 = std::max<int64_t>(h0, 0);
  w0 = std::max<int64_t>(w0, 0);
  h1 = std::min(h1, d.H);
  w1 = std::min(w1, d.W);
  const int64_t inside = std::max<int64_t>(h1 - h0, 0) * std::max<int64_t>(w1 - w0, 0);
  return {h0, h1, w0, w1, d.o.count_include_pad ? padded : inside};
}

}  // namespace attn::internal

namespace attn::ops {
namespace {

using internal::PoolDims;

// fn(plane) for every (image, channel) plane b·C + c, in parallel; `work` per plane in element
// operations.
template <typename F>
void for_each_plane(const Context& ctx, const PoolDims& d, double work, F&& fn) {
  internal::parallel_for(ctx, d.B * d.C, work, [&](int64_t plane, int) { fn(plane); });
}

// The taps of a window along one axis that land inside the image: k in [lo, hi), the input index
// start + k·dilation.
struct TapRange {
  int64_t lo, hi;
};
TapRange taps(int64_t start, int64_t kernel, int64_t dilation, int64_t size) {
  const int64_t lo = start >= 0 ? 0 : (-start + dilation - 1) / dilation;
  const int64_t last = size - 1 - start;  // the largest k·dilation still inside
  const int64_t hi = last < 0 ? 0 : std::min(kernel, last / dilation + 1);
  return {lo, std::max(lo, hi)};
}

// Offset (ih·W + iw) of the first largest tap of window (oh, ow) in a contiguous H×W plane, or −1
// if the window holds no image element. NaN wins, as in PyTorch.
int64_t argmax_tap(const float* plane, const PoolDims& d, int64_t oh, int64_t ow) {
  const int64_t h0 = d.h0(oh), w0 = d.w0(ow);
  const TapRange th = taps(h0, d.o.kernel_h, d.o.dilation_h, d.H);
  const TapRange tw = taps(w0, d.o.kernel_w, d.o.dilation_w, d.W);
  int64_t best = -1;
  float best_v = 0.0f;
  for (int64_t kh = th.lo; kh < th.hi; ++kh) {
    const int64_t row = (h0 + kh * d.o.dilation_h) * d.W;
    for (int64_t kw = tw.lo; kw < tw.hi; ++kw) {
      const int64_t at = row + w0 + kw * d.o.dilation_w;
      const float v = plane[at];
      if (best < 0 || v > best_v || std::isnan(v)) {
        best = at;
        best_v = v;
        if (std::isnan(v)) return best;
      }
    }
  }
  return best;
}

// The CNN's pooling (2×2, stride 2, no padding or dilation, every window inside the image) without
// the general window walk: a plane of H×W into (H/2)×(W/2). Windows holding a NaN take the general
// path, which implements the NaN rule.
bool is_plain_2x2(const PoolDims& d) {
  const auto& o = d.o;
  return o.kernel_h == 2 && o.kernel_w == 2 && o.stride_h == 2 && o.stride_w == 2 && o.pad_h == 0 &&
         o.pad_w == 0 && o.dilation_h == 1 && o.dilation_w == 1 && 2 * d.OH <= d.H &&
         2 * d.OW <= d.W;
}

// Offset of the first largest of the four taps of window (oh, ow) of a plain 2×2 pooling.
inline int64_t argmax_2x2(const float* plane, const PoolDims& d, int64_t oh, int64_t ow) {
  const int64_t at = 2 * oh * d.W + 2 * ow;
  const float a = plane[at], b = plane[at + 1], c = plane[at + d.W], e = plane[at + d.W + 1];
  if (std::isnan(a + b + c + e)) return argmax_tap(plane, d, oh, ow);
  int64_t best = at;
  float v = a;
  best = b > v ? at + 1 : best, v = std::max(v, b);
  best = c > v ? at + d.W : best, v = std::max(v, c);
  best = e > v ? at + d.W + 1 : best;
  return best;
}

double window_work(const PoolDims& d) {
  return static_cast<double>(d.OH * d.OW * d.o.kernel_h * d.o.kernel_w);
}

}  // namespace

Shape pool2d_output_shape(const char* fn, const Shape& x, const Pool2dOptions& options) {
  if (x.rank() != 4)
    fail<ShapeError>(fn, "x must have rank 4 (B, C, H, W) but has shape ", x.str());
  const PoolDims d = internal::pool2d_dims(fn, x, options, false);
  return Shape{d.B, d.C, d.OH, d.OW};
}

void max_pool2d_forward(ConstTensorView x, const Pool2dOptions& options, TensorView out,
                        const Context& ctx) {
  const PoolDims d =
      internal::check_pool2d_forward_args("max_pool2d_forward", x, options, out, false);
  const internal::Dense xd(x);
  internal::DenseOut od(out);
  const bool plain = is_plain_2x2(d);
  for_each_plane(ctx, d, window_work(d), [&](int64_t plane) {
    const float* px = xd.data + plane * d.H * d.W;
    float* po = od.data + plane * d.OH * d.OW;
    if (plain) {
      // std::max drops NaN, so the plane's taps are also summed: a NaN (or inf − inf) in the sum
      // sends the plane through the general rule below.
      float taps_sum = 0.0f;
      for (int64_t oh = 0; oh < d.OH; ++oh) {
        const float* r0 = px + 2 * oh * d.W;
        const float* r1 = r0 + d.W;
        for (int64_t ow = 0; ow < d.OW; ++ow) {
          const float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], e = r1[2 * ow + 1];
          taps_sum += (a + b) + (c + e);
          po[oh * d.OW + ow] = std::max(std::max(a, b), std::max(c, e));
        }
      }
      if (!std::isnan(taps_sum)) return;
    }
    for (int64_t oh = 0; oh < d.OH; ++oh)
      for (int64_t ow = 0; ow < d.OW; ++ow) {
        const int64_t at = argmax_tap(px, d, oh, ow);
        po[oh * d.OW + ow] = at < 0 ? -std::numeric_limits<float>::infinity() : px[at];
      }
  });
  od.flush_overwrite();
}

void max_pool2d_backward(ConstTensorView x, const Pool2dOptions& options, ConstTensorView dout,
                         TensorView dx, const Context& ctx) {
  const PoolDims d =
      internal::check_pool2d_backward_args("max_pool2d_backward", x, options, dout, dx, false);
  const internal::Dense xd(x), gd(dout);
  internal::DenseOut dxo(dx);
  const bool plain = is_plain_2x2(d);
  for_each_plane(ctx, d, window_work(d), [&](int64_t plane) {
    const float* px = xd.data + plane * d.H * d.W;
    const float* pg = gd.data + plane * d.OH * d.OW;
    float* pdx = dxo.data + plane * d.H * d.W;
    for (int64_t oh = 0; oh < d.OH; ++oh) {
      const int64_t row = 2 * oh * d.W;
      if (plain &&
          internal::kernels::max_pool_2x2_backward_rows(px + row, px + row + d.W, pg + oh * d.OW,
                                                        2 * d.OW, pdx + row, pdx + row + d.W))
        continue;
      for (int64_t ow = 0; ow < d.OW; ++ow) {
        const int64_t at = plain ? argmax_2x2(px, d, oh, ow) : argmax_tap(px, d, oh, ow);
        if (at >= 0) pdx[at] += pg[oh * d.OW + ow];
      }
    }
  });
  dxo.flush_accumulate();
}

void avg_pool2d_forward(ConstTensorView x, const Pool2dOptions& options, TensorView out,
                        const Context& ctx) {
  const PoolDims d =
      internal::check_pool2d_forward_args("avg_pool2d_forward", x, options, out, true);
  const internal::Dense xd(x);
  internal::DenseOut od(out);
  for_each_plane(ctx, d, window_work(d), [&](int64_t plane) {
    const float* px = xd.data + plane * d.H * d.W;
    float* po = od.data + plane * d.OH * d.OW;
    for (int64_t oh = 0; oh < d.OH; ++oh)
      for (int64_t ow = 0; ow < d.OW; ++ow) {
        const internal::AvgWindow win = internal::avg_window(d, oh, ow);
        float s = 0.0f;
        for (int64_t ih = win.h0; ih < win.h1; ++ih)
          for (int64_t iw = win.w0; iw < win.w1; ++iw) s += px[ih * d.W + iw];
        po[oh * d.OW + ow] = win.divisor > 0 ? s / static_cast<float>(win.divisor) : 0.0f;
      }
  });
  od.flush_overwrite();
}

void avg_pool2d_backward(ConstTensorView x, const Pool2dOptions& options, ConstTensorView dout,
                         TensorView dx, const Context& ctx) {
  const PoolDims d =
      internal::check_pool2d_backward_args("avg_pool2d_backward", x, options, dout, dx, true);
  const internal::Dense gd(dout);
  internal::DenseOut dxo(dx);
  for_each_plane(ctx, d, window_work(d), [&](int64_t plane) {
    const float* pg = gd.data + plane * d.OH * d.OW;
    float* pdx = dxo.data + plane * d.H * d.W;
    for (int64_t oh = 0; oh < d.OH; ++oh)
      for (int64_t ow = 0; ow < d.OW; ++ow) {
        const internal::AvgWindow win = internal::avg_window(d, oh, ow);
        if (win.divisor <= 0) continue;
        const float g = pg[oh * d.OW + ow] / static_cast<float>(win.divisor);
        for (int64_t ih = win.h0; ih < win.h1; ++ih)
          for (int64_t iw = win.w0; iw < win.w1; ++iw) pdx[ih * d.W + iw] += g;
      }
  });
  dxo.flush_accumulate();
}

void adaptive_avg_pool2d_forward(ConstTensorView x, TensorView out, const Context& ctx) {
  const char* fn = "adaptive_avg_pool2d_forward";
  internal::check_adaptive_args(fn, "x", x, "out", out);
  internal::check_output(fn, "out", out, x);
  const int64_t B = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), OH = out.dim(2),
                OW = out.dim(3);
  internal::parallel_for(ctx, B * C, static_cast<double>(H * W + OH * OW), [&](int64_t bc, int) {
    const int64_t b = bc / C, c = bc % C;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const auto [h0, h1, w0, w1] = internal::adaptive_window(oh, ow, H, W, OH, OW);
        float s = 0.0f;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) s += x(b, c, ih, iw);
        out(b, c, oh, ow) = s / static_cast<float>((h1 - h0) * (w1 - w0));
      }
  });
}

void adaptive_avg_pool2d_backward(ConstTensorView dout, TensorView dx, const Context& ctx) {
  const char* fn = "adaptive_avg_pool2d_backward";
  internal::check_adaptive_args(fn, "dx", dx, "dout", dout);
  internal::check_output(fn, "dx", dx, dout);
  const int64_t B = dx.dim(0), C = dx.dim(1), H = dx.dim(2), W = dx.dim(3), OH = dout.dim(2),
                OW = dout.dim(3);
  internal::parallel_for(ctx, B * C, static_cast<double>(H * W + OH * OW), [&](int64_t bc, int) {
    const int64_t b = bc / C, c = bc % C;
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const auto [h0, h1, w0, w1] = internal::adaptive_window(oh, ow, H, W, OH, OW);
        const float g = dout(b, c, oh, ow) / static_cast<float>((h1 - h0) * (w1 - w0));
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) dx(b, c, ih, iw) += g;
      }
  });
}

}  // namespace attn::ops
