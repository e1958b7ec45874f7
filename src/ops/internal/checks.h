// SPDX-License-Identifier: MIT
// Argument checks shared by the reference and fast kernels: every public op validates before it
// touches memory, and names the function, the argument and the shapes in its message.
#pragma once

#include <cmath>
#include <initializer_list>
#include <string>

#include "attn/error.h"
#include "attn/tensor.h"

namespace attn::internal {

template <typename T>
void check_defined(const char* fn, const char* name, const BasicView<T>& v) {
  if (!v.defined()) fail<ShapeError>(fn, name, " is required but was not given");
}

template <typename T>
void check_rank(const char* fn, const char* name, const BasicView<T>& v, int rank) {
  check_defined(fn, name, v);
  if (v.rank() != rank)
    fail<ShapeError>(fn, name, " must have rank ", rank, " but has shape ", v.shape().str());
}

template <typename T>
void check_shape(const char* fn, const char* name, const BasicView<T>& v, const Shape& expected,
                 const std::string& why) {
  check_defined(fn, name, v);
  if (!(v.shape() == expected))
    fail<ShapeError>(fn, name, " has shape ", v.shape().str(), " but ", expected.str(),
                     " is expected (", why, ")");
}

// An output must have distinct elements and must not overlap any input.
template <typename O, typename... I>
void check_output(const char* fn, const char* name, const BasicView<O>& out, const I&... inputs) {
  if (!out.defined()) return;
  if (!has_distinct_elements(out))
    fail<ValueError>(fn, name, " (shape ", out.shape().str(),
                     ") has strides that make elements overlap");
  const bool overlaps = (... || may_overlap(out, inputs));
  if (overlaps) fail<ValueError>(fn, name, " overlaps an input; outputs must not alias inputs");
}

// As check_output, but `out` may also be exactly the view `in` (an in-place op).
template <typename O, typename I>
void check_output_or_in_place(const char* fn, const char* name, const BasicView<O>& out,
                              const BasicView<I>& in) {
  if (out.defined() && in.defined() && out.data() == in.data() && out.strides() == in.strides() &&
      out.shape() == in.shape()) {
    if (!has_distinct_elements(out))
      fail<ValueError>(fn, name, " (shape ", out.shape().str(),
                       ") has strides that make elements overlap");
    return;
  }
  check_output(fn, name, out, in);
}

inline void check_finite(const char* fn, const char* name, double x) {
  if (!std::isfinite(x)) fail<ValueError>(fn, name, " must be finite, got ", x);
}

// Geometry given as numbers rather than shapes (a stride, padding, dilation or pool kernel size):
// at most 2^31 - 1 (what PyTorch's int32 kernels take), so that window arithmetic such as
// in + 2·pad or oh·stride stays far from int64 overflow.
constexpr int64_t kMaxGeometry = (int64_t{1} << 31) - 1;
inline void check_geometry(const char* fn, const char* name, int64_t h, int64_t w) {
  if (h > kMaxGeometry || w > kMaxGeometry)
    fail<ValueError>(fn, name, " must be at most ", kMaxGeometry, ", got (", h, ", ", w, ")");
}

// dilation · (kernel − 1) + 1: the input span of a dilated kernel window (dilation, kernel >= 1).
inline int64_t dilated_extent(const char* fn, int64_t dilation, int64_t kernel) {
  int64_t span = 0;
  if (__builtin_mul_overflow(dilation, kernel - 1, &span) || span > kMaxGeometry * kMaxGeometry)
    fail<ValueError>(fn, "a kernel of ", kernel, " with dilation ", dilation,
                     " spans more than 2^62 elements");
  return span + 1;
}

}  // namespace attn::internal
