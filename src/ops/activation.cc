// SPDX-License-Identifier: MIT
// Element-wise activations: fixed contiguous chunks on the context's threads (so any
// thread count gives the same bits), GELU through the SIMD rows of activation_kernels.cc. Views
// with other strides go through contiguous copies.
#include "attn/ops/activation.h"

#include <algorithm>

#include "core/parallel.h"
#include "ops/internal/activation_kernels.h"
#include "ops/internal/checks.h"

namespace attn::ops {

namespace {

// Elements per task, and the work of one element in multiply-add equivalents (GELU: an exp, a
// division and ~15 multiply-adds; ReLU: a compare) for the threading threshold.
constexpr int64_t kChunk = 4096;
constexpr double kGeluCost = 30.0, kReluCost = 1.0;

// rows(begin, count) over [0, n) in chunks, in parallel when the work pays.
template <typename F>
void chunked(const Context& ctx, int64_t n, double cost, F&& rows) {
  internal::parallel_for(ctx, (n + kChunk - 1) / kChunk, cost * static_cast<double>(kChunk),
                         [&](int64_t chunk, int) {
                           const int64_t begin = chunk * kChunk;
                           rows(begin, std::min(kChunk, n - begin));
                         });
}

// out = f(x) with f applied to contiguous rows: f(x_row, out_row, count).
template <typename F>
void unary(const char* fn, ConstTensorView x, TensorView out, const Context& ctx, double cost,
           F&& f) {
  internal::check_defined(fn, "x", x);
  internal::check_shape(fn, "out", out, x.shape(), "same as x");
  internal::check_output_or_in_place(fn, "out", out, x);
  if (x.is_contiguous() && out.is_contiguous()) {
    chunked(ctx, x.numel(), cost,
            [&](int64_t i, int64_t n) { f(x.data() + i, out.data() + i, n); });
    return;
  }
  const Tensor xc = Tensor::copy_of(x);
  Tensor oc(x.shape());
  chunked(ctx, x.numel(), cost, [&](int64_t i, int64_t n) { f(xc.data() + i, oc.data() + i, n); });
  copy(ConstTensorView(oc.view()), out);
}

// dx += f'(x) · dout with df(x_row, dout_row, dx_row, count) accumulating.
template <typename F>
void unary_backward(const char* fn, ConstTensorView x, ConstTensorView dout, TensorView dx,
                    const Context& ctx, double cost, F&& df) {
  internal::check_defined(fn, "x", x);
  internal::check_shape(fn, "dout", dout, x.shape(), "same as x");
  internal::check_shape(fn, "dx", dx, x.shape(), "same as x");
  internal::check_output(fn, "dx", dx, x, dout);
  if (x.is_contiguous() && dout.is_contiguous() && dx.is_contiguous()) {
    chunked(ctx, x.numel(), cost,
            [&](int64_t i, int64_t n) { df(x.data() + i, dout.data() + i, dx.data() + i, n); });
    return;
  }
  const Tensor xc = Tensor::copy_of(x), gc = Tensor::copy_of(dout);
  Tensor dc = Tensor::copy_of(ConstTensorView(dx));
  chunked(ctx, x.numel(), cost,
          [&](int64_t i, int64_t n) { df(xc.data() + i, gc.data() + i, dc.data() + i, n); });
  copy(ConstTensorView(dc.view()), dx);
}

void relu_row(const float* x, float* y, int64_t n) {  // may run in place (y == x)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
void relu_backward_row(const float* __restrict__ x, const float* __restrict__ g,
                       float* __restrict__ dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] += x[i] > 0.0f ? g[i] : 0.0f;
}

}  // namespace

void relu_forward(ConstTensorView x, TensorView out, const Context& ctx) {
  unary("relu_forward", x, out, ctx, kReluCost, relu_row);
}

void gelu_forward(ConstTensorView x, TensorView out, const Context& ctx) {
  unary("gelu_forward", x, out, ctx, kGeluCost, internal::kernels::gelu_row);
}

void relu_backward(ConstTensorView x, ConstTensorView dout, TensorView dx, const Context& ctx) {
  unary_backward("relu_backward", x, dout, dx, ctx, kReluCost, relu_backward_row);
}

void gelu_backward(ConstTensorView x, ConstTensorView dout, TensorView dx, const Context& ctx) {
  unary_backward("gelu_backward", x, dout, dx, ctx, kGeluCost,
                 internal::kernels::gelu_backward_row);
}

}  // namespace attn::ops
