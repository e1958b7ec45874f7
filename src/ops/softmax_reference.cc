// SPDX-License-Identifier: MIT
// Reference softmax over the last dimension, double accumulation.
#include <algorithm>
#include <cmath>
#include <limits>

#include "attn/ops/softmax.h"
#include "ops/internal/norm_checks.h"
#include "ops/internal/rows.h"

namespace attn::ops::reference {

namespace {

template <typename T>
void forward_impl(BasicView<const T> x, BasicView<T> out) {
  internal::check_softmax_forward_args(x, out);
  const int64_t D = x.dim(-1), xs = x.stride(-1), os = out.stride(-1);
  const auto xr = internal::row_offsets(x), orow = internal::row_offsets(out);
  for (size_t r = 0; r < xr.size(); ++r) {
    const T* xp = x.data() + xr[r];
    T* op = out.data() + orow[r];
    double row_max = -std::numeric_limits<double>::infinity();
    for (int64_t d = 0; d < D; ++d) row_max = std::max(row_max, static_cast<double>(xp[d * xs]));
    if (row_max == -std::numeric_limits<double>::infinity()) {  // all masked: zeros, not NaN
      for (int64_t d = 0; d < D; ++d) op[d * os] = T(0);
      continue;
    }
    double sum = 0.0;
    for (int64_t d = 0; d < D; ++d) sum += std::exp(static_cast<double>(xp[d * xs]) - row_max);
    for (int64_t d = 0; d < D; ++d)
      op[d * os] = static_cast<T>(std::exp(static_cast<double>(xp[d * xs]) - row_max) / sum);
  }
}

// y = softmax(x) has Jacobian diag(y) − y yᵀ, so dx = y ⊙ (dy − ⟨dy, y⟩).
template <typename T>
void backward_impl(BasicView<const T> out, BasicView<const T> dout, BasicView<T> dx) {
  internal::check_softmax_backward_args(out, dout, dx);
  const int64_t D = out.dim(-1);
  const auto yr = internal::row_offsets(out), gr = internal::row_offsets(dout),
             xr = internal::row_offsets(dx);
  for (size_t r = 0; r < yr.size(); ++r) {
    double dot = 0.0;
    for (int64_t d = 0; d < D; ++d)
      dot += static_cast<double>(out.data()[yr[r] + d * out.stride(-1)]) *
             static_cast<double>(dout.data()[gr[r] + d * dout.stride(-1)]);
    for (int64_t d = 0; d < D; ++d) {
      const double y = out.data()[yr[r] + d * out.stride(-1)];
      const double g = dout.data()[gr[r] + d * dout.stride(-1)];
      dx.data()[xr[r] + d * dx.stride(-1)] += static_cast<T>(y * (g - dot));
    }
  }
}

}  // namespace

void softmax_forward(ConstTensorView x, TensorView out, const Context&) {
  forward_impl<float>(x, out);
}
void softmax_forward(ConstTensorViewD x, TensorViewD out, const Context&) {
  forward_impl<double>(x, out);
}
void softmax_backward(ConstTensorView out, ConstTensorView dout, TensorView dx, const Context&) {
  backward_impl<float>(out, dout, dx);
}
void softmax_backward(ConstTensorViewD out, ConstTensorViewD dout, TensorViewD dx, const Context&) {
  backward_impl<double>(out, dout, dx);
}

}  // namespace attn::ops::reference
