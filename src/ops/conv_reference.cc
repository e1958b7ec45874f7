// SPDX-License-Identifier: MIT
// The specification of conv2d: the definition as nested loops over every output and kernel tap,
// accumulated in double. Padding taps read zero.
#include <vector>

#include "attn/ops/conv.h"
#include "ops/internal/conv_checks.h"

namespace attn::ops::reference {
namespace {

using internal::ConvDims;

template <typename T>
double D(T v) {
  return static_cast<double>(v);
}

// Calls fn(b, o, oh, ow, c, kh, kw, ih, iw) for every tap that lands inside the image; c is the
// input channel (absolute), o the output channel.
template <typename F>
void for_each_tap(const ConvDims& d, const Conv2dOptions& p, F&& fn) {
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t o = 0; o < d.C_out; ++o) {
      const int64_t g = o / d.cout_g();
      for (int64_t oh = 0; oh < d.OH; ++oh)
        for (int64_t ow = 0; ow < d.OW; ++ow)
          for (int64_t cg = 0; cg < d.cin_g(); ++cg)
            for (int64_t kh = 0; kh < d.KH; ++kh) {
              const int64_t ih = oh * p.stride_h - p.pad_h + kh * p.dilation_h;
              if (ih < 0 || ih >= d.H) continue;
              for (int64_t kw = 0; kw < d.KW; ++kw) {
                const int64_t iw = ow * p.stride_w - p.pad_w + kw * p.dilation_w;
                if (iw < 0 || iw >= d.W) continue;
                fn(b, o, oh, ow, g * d.cin_g() + cg, cg, kh, kw, ih, iw);
              }
            }
    }
}

template <typename T>
void forward_impl(BasicView<const T> x, BasicView<const T> w, BasicView<const T> bias,
                  const Conv2dOptions& p, BasicView<T> out) {
  const ConvDims d =
      internal::check_conv2d_forward_args("reference::conv2d_forward", x, w, bias, p, out);
  std::vector<double> acc(static_cast<size_t>(d.B * d.C_out * d.OH * d.OW), 0.0);
  auto at = [&](int64_t b, int64_t o, int64_t oh, int64_t ow) -> double& {
    return acc[static_cast<size_t>(((b * d.C_out + o) * d.OH + oh) * d.OW + ow)];
  };
  for_each_tap(d, p,
               [&](int64_t b, int64_t o, int64_t oh, int64_t ow, int64_t c, int64_t cg, int64_t kh,
                   int64_t kw, int64_t ih,
                   int64_t iw) { at(b, o, oh, ow) += D(x(b, c, ih, iw)) * D(w(o, cg, kh, kw)); });
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t o = 0; o < d.C_out; ++o)
      for (int64_t oh = 0; oh < d.OH; ++oh)
        for (int64_t ow = 0; ow < d.OW; ++ow)
          out(b, o, oh, ow) =
              static_cast<T>(at(b, o, oh, ow) + (bias.defined() ? D(bias(o)) : 0.0));
}

template <typename T>
void backward_impl(BasicView<const T> x, BasicView<const T> w, BasicView<const T> dout,
                   const Conv2dOptions& p, BasicView<T> dx, BasicView<T> dw, BasicView<T> dbias) {
  const ConvDims d = internal::check_conv2d_backward_args("reference::conv2d_backward", x, w, dout,
                                                          p, dx, dw, dbias);
  TensorD gx(x.shape()), gw(w.shape()), gb(Shape{d.C_out});
  for_each_tap(d, p,
               [&](int64_t b, int64_t o, int64_t oh, int64_t ow, int64_t c, int64_t cg, int64_t kh,
                   int64_t kw, int64_t ih, int64_t iw) {
                 const double g = D(dout(b, o, oh, ow));
                 gx(b, c, ih, iw) += g * D(w(o, cg, kh, kw));
                 gw(o, cg, kh, kw) += g * D(x(b, c, ih, iw));
               });
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t o = 0; o < d.C_out; ++o)
      for (int64_t oh = 0; oh < d.OH; ++oh)
        for (int64_t ow = 0; ow < d.OW; ++ow) gb(o) += D(dout(b, o, oh, ow));
  auto add = [](const TensorD& from, BasicView<T> to) {
    if (!to.defined()) return;
    const ConstTensorViewD f = from.view();
    for_each_offset_pair(f, to, [&](int64_t a, int64_t b) {
      to.at_offset(b) = static_cast<T>(D(to.at_offset(b)) + f.at_offset(a));
    });
  };
  add(gx, dx);
  add(gw, dw);
  add(gb, dbias);
}

}  // namespace

void conv2d_forward(ConstTensorView x, ConstTensorView w, ConstTensorView bias,
                    const Conv2dOptions& options, TensorView out, const Context&) {
  forward_impl<float>(x, w, bias, options, out);
}
void conv2d_forward(ConstTensorViewD x, ConstTensorViewD w, ConstTensorViewD bias,
                    const Conv2dOptions& options, TensorViewD out, const Context&) {
  forward_impl<double>(x, w, bias, options, out);
}
void conv2d_backward(ConstTensorView x, ConstTensorView w, ConstTensorView dout,
                     const Conv2dOptions& options, TensorView dx, TensorView dw, TensorView dbias,
                     const Context&) {
  backward_impl<float>(x, w, dout, options, dx, dw, dbias);
}
void conv2d_backward(ConstTensorViewD x, ConstTensorViewD w, ConstTensorViewD dout,
                     const Conv2dOptions& options, TensorViewD dx, TensorViewD dw,
                     TensorViewD dbias, const Context&) {
  backward_impl<double>(x, w, dout, options, dx, dw, dbias);
}

}  // namespace attn::ops::reference
