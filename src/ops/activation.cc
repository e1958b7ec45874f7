// SPDX-License-Identifier: MIT
// Element-wise activations. Memory-bound: one pass, float math with the exact erf.
#include "attn/ops/activation.h"

#include <cmath>
#include <vector>

#include "ops/internal/checks.h"

namespace attn::ops {

namespace {

template <typename F>
void unary(const char* fn, ConstTensorView x, TensorView out, F&& f) {
  internal::check_defined(fn, "x", x);
  internal::check_shape(fn, "out", out, x.shape(), "same as x");
  internal::check_output_or_in_place(fn, "out", out, x);
  for_each_offset_pair(x, out, [&](int64_t ox, int64_t oo) { out.data()[oo] = f(x.data()[ox]); });
}

template <typename F>
void unary_backward(const char* fn, ConstTensorView x, ConstTensorView dout, TensorView dx,
                    F&& df) {
  internal::check_defined(fn, "x", x);
  internal::check_shape(fn, "dout", dout, x.shape(), "same as x");
  internal::check_shape(fn, "dx", dx, x.shape(), "same as x");
  internal::check_output(fn, "dx", dx, x, dout);
  // dout may have its own strides: record its offsets, then walk x and dx together.
  std::vector<int64_t> g;
  g.reserve(static_cast<size_t>(dout.numel()));
  for_each_offset(dout, [&](int64_t o) { g.push_back(o); });
  size_t i = 0;
  for_each_offset_pair(x, dx, [&](int64_t ox, int64_t od) {
    dx.data()[od] += dout.data()[g[i++]] * df(x.data()[ox]);
  });
}

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

}  // namespace

void relu_forward(ConstTensorView x, TensorView out, const Context&) {
  unary("relu_forward", x, out, [](float v) { return v > 0.0f ? v : 0.0f; });
}

void gelu_forward(ConstTensorView x, TensorView out, const Context&) {
  unary("gelu_forward", x, out,
        [](float v) { return 0.5f * v * (1.0f + std::erf(v * kInvSqrt2)); });
}

void relu_backward(ConstTensorView x, ConstTensorView dout, TensorView dx, const Context&) {
  unary_backward("relu_backward", x, dout, dx, [](float v) { return v > 0.0f ? 1.0f : 0.0f; });
}

void gelu_backward(ConstTensorView x, ConstTensorView dout, TensorView dx, const Context&) {
  unary_backward("gelu_backward", x, dout, dx, [](float v) {
    const float cdf = 0.5f * (1.0f + std::erf(v * kInvSqrt2));
    return cdf + v * kInvSqrt2Pi * std::exp(-0.5f * v * v);
  });
}

}  // namespace attn::ops
