// SPDX-License-Identifier: MIT
// Reference activations: ReLU and GELU (erf form) and their derivatives evaluated in double,
// element by element, over views of any strides. The same argument checks as activation.cc.
#include <cmath>
#include <numbers>

#include "attn/ops/activation.h"
#include "ops/internal/checks.h"

namespace attn::ops::reference {

namespace {

template <typename T, typename F>
void unary(const char* fn, BasicView<const T> x, BasicView<T> out, F&& f) {
  internal::check_defined(fn, "x", x);
  internal::check_shape(fn, "out", out, x.shape(), "same as x");
  internal::check_output_or_in_place(fn, "out", out, x);
  for_each_offset_pair(x, out, [&](int64_t ox, int64_t oo) {
    out.data()[oo] = static_cast<T>(f(static_cast<double>(x.data()[ox])));
  });
}

template <typename T, typename F>
void unary_backward(const char* fn, BasicView<const T> x, BasicView<const T> dout, BasicView<T> dx,
                    F&& df) {
  internal::check_defined(fn, "x", x);
  internal::check_shape(fn, "dout", dout, x.shape(), "same as x");
  internal::check_shape(fn, "dx", dx, x.shape(), "same as x");
  internal::check_output(fn, "dx", dx, x, dout);
  // The three views walked with one multi-index (the plainest form: index arithmetic per element).
  const Shape& shape = x.shape();
  const int64_t n = shape.numel();
  for (int64_t flat = 0; flat < n; ++flat) {
    int64_t rest = flat, ox = 0, og = 0, od = 0;
    for (int d = shape.rank() - 1; d >= 0; --d) {
      const int64_t i = rest % shape[d];
      rest /= shape[d];
      ox += i * x.stride(d), og += i * dout.stride(d), od += i * dx.stride(d);
    }
    const double v = static_cast<double>(x.data()[ox]);
    dx.data()[od] = static_cast<T>(static_cast<double>(dx.data()[od]) +
                                   static_cast<double>(dout.data()[og]) * df(v));
  }
}

double relu(double v) { return v > 0.0 ? v : 0.0; }
double relu_grad(double v) { return v > 0.0 ? 1.0 : 0.0; }  // 0 at 0, as PyTorch
double gelu(double v) { return 0.5 * v * (1.0 + std::erf(v / std::numbers::sqrt2)); }
// GELU'(x) = Φ(x) + x·φ(x)
double gelu_grad(double v) {
  return 0.5 * (1.0 + std::erf(v / std::numbers::sqrt2)) +
         v * std::exp(-0.5 * v * v) / std::sqrt(2.0 * std::numbers::pi);
}

}  // namespace

void relu_forward(ConstTensorView x, TensorView out, const Context&) {
  unary<float>("relu_forward", x, out, relu);
}
void relu_forward(ConstTensorViewD x, TensorViewD out, const Context&) {
  unary<double>("relu_forward", x, out, relu);
}
void gelu_forward(ConstTensorView x, TensorView out, const Context&) {
  unary<float>("gelu_forward", x, out, gelu);
}
void gelu_forward(ConstTensorViewD x, TensorViewD out, const Context&) {
  unary<double>("gelu_forward", x, out, gelu);
}
void relu_backward(ConstTensorView x, ConstTensorView dout, TensorView dx, const Context&) {
  unary_backward<float>("relu_backward", x, dout, dx, relu_grad);
}
void relu_backward(ConstTensorViewD x, ConstTensorViewD dout, TensorViewD dx, const Context&) {
  unary_backward<double>("relu_backward", x, dout, dx, relu_grad);
}
void gelu_backward(ConstTensorView x, ConstTensorView dout, TensorView dx, const Context&) {
  unary_backward<float>("gelu_backward", x, dout, dx, gelu_grad);
}
void gelu_backward(ConstTensorViewD x, ConstTensorViewD dout, TensorViewD dx, const Context&) {
  unary_backward<double>("gelu_backward", x, dout, dx, gelu_grad);
}

}  // namespace attn::ops::reference
