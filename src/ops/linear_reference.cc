// SPDX-License-Identifier: MIT
// Reference linear layer: plain loops, double accumulation.
#include "attn/ops/linear.h"
#include "ops/internal/linear_checks.h"

namespace attn::ops::reference {

namespace {

template <typename T>
void forward_impl(BasicView<const T> x, BasicView<const T> w, BasicView<const T> bias,
                  BasicView<T> out) {
  const auto d = internal::check_linear_forward_args("linear_forward", x, w, bias, out);
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t o = 0; o < d.OUT; ++o) {
      double acc = bias.defined() ? static_cast<double>(bias(o)) : 0.0;
      for (int64_t i = 0; i < d.IN; ++i)
        acc += static_cast<double>(x(n, i)) * static_cast<double>(w(o, i));
      out(n, o) = static_cast<T>(acc);
    }
}

// y = x Wᵀ + b  ⇒  dx = dy W,  dW = dyᵀ x,  db = Σ_n dy.
template <typename T>
void backward_impl(BasicView<const T> x, BasicView<const T> w, BasicView<const T> dout,
                   BasicView<T> dx, BasicView<T> dw, BasicView<T> dbias) {
  const auto d = internal::check_linear_backward_args("linear_backward", x, w, dout, dx, dw, dbias);
  if (dx.defined())
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t i = 0; i < d.IN; ++i) {
        double acc = 0.0;
        for (int64_t o = 0; o < d.OUT; ++o)
          acc += static_cast<double>(dout(n, o)) * static_cast<double>(w(o, i));
        dx(n, i) += static_cast<T>(acc);
      }
  if (dw.defined())
    for (int64_t o = 0; o < d.OUT; ++o)
      for (int64_t i = 0; i < d.IN; ++i) {
        double acc = 0.0;
        for (int64_t n = 0; n < d.N; ++n)
          acc += static_cast<double>(dout(n, o)) * static_cast<double>(x(n, i));
        dw(o, i) += static_cast<T>(acc);
      }
  if (dbias.defined())
    for (int64_t o = 0; o < d.OUT; ++o) {
      double acc = 0.0;
      for (int64_t n = 0; n < d.N; ++n) acc += static_cast<double>(dout(n, o));
      dbias(o) += static_cast<T>(acc);
    }
}

}  // namespace

void linear_forward(ConstTensorView x, ConstTensorView w, ConstTensorView bias, TensorView out,
                    const Context&) {
  forward_impl<float>(x, w, bias, out);
}
void linear_forward(ConstTensorViewD x, ConstTensorViewD w, ConstTensorViewD bias, TensorViewD out,
                    const Context&) {
  forward_impl<double>(x, w, bias, out);
}
void linear_backward(ConstTensorView x, ConstTensorView w, ConstTensorView dout, TensorView dx,
                     TensorView dw, TensorView dbias, const Context&) {
  backward_impl<float>(x, w, dout, dx, dw, dbias);
}
void linear_backward(ConstTensorViewD x, ConstTensorViewD w, ConstTensorViewD dout, TensorViewD dx,
                     TensorViewD dw, TensorViewD dbias, const Context&) {
  backward_impl<double>(x, w, dout, dx, dw, dbias);
}

}  // namespace attn::ops::reference
