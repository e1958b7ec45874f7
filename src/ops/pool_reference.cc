// SPDX-License-Identifier: MIT
// The specification of pooling: every output visits every tap of its window (padding included)
// and tests it against the image; sums in double.
#include <cmath>
#include <limits>

#include "attn/ops/pool.h"
#include "ops/internal/pool_checks.h"

namespace attn::ops::reference {
namespace {

using internal::PoolDims;

bool inside(const PoolDims& d, int64_t ih, int64_t iw) {
  return ih >= 0 && ih < d.H && iw >= 0 && iw < d.W;
}

// (ih, iw) of the first largest in-image tap of the window, or ih = -1 if none.
std::pair<int64_t, int64_t> max_tap(ConstTensorViewD x, const PoolDims& d, int64_t b, int64_t c,
                                    int64_t oh, int64_t ow) {
  std::pair<int64_t, int64_t> best{-1, -1};
  for (int64_t kh = 0; kh < d.o.kernel_h; ++kh)
    for (int64_t kw = 0; kw < d.o.kernel_w; ++kw) {
      const int64_t ih = d.h0(oh) + kh * d.o.dilation_h, iw = d.w0(ow) + kw * d.o.dilation_w;
      if (!inside(d, ih, iw)) continue;
      if (best.first >= 0 && std::isnan(x(b, c, best.first, best.second))) return best;
      if (best.first < 0 || x(b, c, ih, iw) > x(b, c, best.first, best.second) ||
          std::isnan(x(b, c, ih, iw)))
        best = {ih, iw};
    }
  return best;
}

}  // namespace

void max_pool2d_forward(ConstTensorViewD x, const Pool2dOptions& options, TensorViewD out,
                        const Context&) {
  const PoolDims d =
      internal::check_pool2d_forward_args("reference::max_pool2d_forward", x, options, out, false);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t oh = 0; oh < d.OH; ++oh)
        for (int64_t ow = 0; ow < d.OW; ++ow) {
          const auto [ih, iw] = max_tap(x, d, b, c, oh, ow);
          out(b, c, oh, ow) = ih < 0 ? -std::numeric_limits<double>::infinity() : x(b, c, ih, iw);
        }
}

void max_pool2d_backward(ConstTensorViewD x, const Pool2dOptions& options, ConstTensorViewD dout,
                         TensorViewD dx, const Context&) {
  const PoolDims d = internal::check_pool2d_backward_args("reference::max_pool2d_backward", x,
                                                          options, dout, dx, false);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t oh = 0; oh < d.OH; ++oh)
        for (int64_t ow = 0; ow < d.OW; ++ow) {
          const auto [ih, iw] = max_tap(x, d, b, c, oh, ow);
          if (ih >= 0) dx(b, c, ih, iw) += dout(b, c, oh, ow);
        }
}

namespace {
// The divisor of avg window (oh, ow) by the definition: taps inside the padded image, or inside
// the image alone.
int64_t avg_divisor(const PoolDims& d, int64_t oh, int64_t ow) {
  int64_t n = 0;
  for (int64_t kh = 0; kh < d.o.kernel_h; ++kh)
    for (int64_t kw = 0; kw < d.o.kernel_w; ++kw) {
      const int64_t ih = d.h0(oh) + kh, iw = d.w0(ow) + kw;
      const bool in_padded = ih < d.H + d.o.pad_h && iw < d.W + d.o.pad_w;  // >= -pad always
      n += d.o.count_include_pad ? in_padded : inside(d, ih, iw);
    }
  return n;
}
}  // namespace

void avg_pool2d_forward(ConstTensorViewD x, const Pool2dOptions& options, TensorViewD out,
                        const Context&) {
  const PoolDims d =
      internal::check_pool2d_forward_args("reference::avg_pool2d_forward", x, options, out, true);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t oh = 0; oh < d.OH; ++oh)
        for (int64_t ow = 0; ow < d.OW; ++ow) {
          double s = 0.0;
          for (int64_t kh = 0; kh < d.o.kernel_h; ++kh)
            for (int64_t kw = 0; kw < d.o.kernel_w; ++kw)
              if (inside(d, d.h0(oh) + kh, d.w0(ow) + kw))
                s += x(b, c, d.h0(oh) + kh, d.w0(ow) + kw);
          const int64_t n = avg_divisor(d, oh, ow);
          out(b, c, oh, ow) = n > 0 ? s / static_cast<double>(n) : 0.0;
        }
}

void avg_pool2d_backward(ConstTensorViewD x, const Pool2dOptions& options, ConstTensorViewD dout,
                         TensorViewD dx, const Context&) {
  const PoolDims d = internal::check_pool2d_backward_args("reference::avg_pool2d_backward", x,
                                                          options, dout, dx, true);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t c = 0; c < d.C; ++c)
      for (int64_t oh = 0; oh < d.OH; ++oh)
        for (int64_t ow = 0; ow < d.OW; ++ow) {
          const int64_t n = avg_divisor(d, oh, ow);
          if (n == 0) continue;
          for (int64_t kh = 0; kh < d.o.kernel_h; ++kh)
            for (int64_t kw = 0; kw < d.o.kernel_w; ++kw)
              if (inside(d, d.h0(oh) + kh, d.w0(ow) + kw))
                dx(b, c, d.h0(oh) + kh, d.w0(ow) + kw) +=
                    dout(b, c, oh, ow) / static_cast<double>(n);
        }
}

void adaptive_avg_pool2d_forward(ConstTensorViewD x, TensorViewD out, const Context&) {
  const char* fn = "reference::adaptive_avg_pool2d_forward";
  internal::check_adaptive_args(fn, "x", x, "out", out);
  internal::check_output(fn, "out", out, x);
  const int64_t H = x.dim(2), W = x.dim(3), OH = out.dim(2), OW = out.dim(3);
  for (int64_t b = 0; b < x.dim(0); ++b)
    for (int64_t c = 0; c < x.dim(1); ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double s = 0.0;
          int64_t n = 0;
          for (int64_t ih = 0; ih < H; ++ih)
            for (int64_t iw = 0; iw < W; ++iw)
              if (ih >= internal::adaptive_start(oh, H, OH) &&
                  ih < internal::adaptive_end(oh, H, OH) &&
                  iw >= internal::adaptive_start(ow, W, OW) &&
                  iw < internal::adaptive_end(ow, W, OW)) {
                s += x(b, c, ih, iw);
                ++n;
              }
          out(b, c, oh, ow) = s / static_cast<double>(n);
        }
}

void adaptive_avg_pool2d_backward(ConstTensorViewD dout, TensorViewD dx, const Context&) {
  const char* fn = "reference::adaptive_avg_pool2d_backward";
  internal::check_adaptive_args(fn, "dx", dx, "dout", dout);
  internal::check_output(fn, "dx", dx, dout);
  const int64_t H = dx.dim(2), W = dx.dim(3), OH = dout.dim(2), OW = dout.dim(3);
  for (int64_t b = 0; b < dx.dim(0); ++b)
    for (int64_t c = 0; c < dx.dim(1); ++c)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const auto [h0, h1, w0, w1] = internal::adaptive_window(oh, ow, H, W, OH, OW);
          const double g = dout(b, c, oh, ow) / static_cast<double>((h1 - h0) * (w1 - w0));
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) dx(b, c, ih, iw) += g;
        }
}

}  // namespace attn::ops::reference
