// SPDX-License-Identifier: MIT
// Row iteration for ops that work along the last dimension of a view of any rank and strides.
#pragma once

#include <vector>

#include "attn/tensor.h"

namespace attn::internal {

// Element offset of the first element of every row (every index of the leading dimensions), in
// row-major order. A rank-1 view has one row; a view whose last dimension is empty has rows too.
template <typename T>
std::vector<int64_t> row_offsets(const BasicView<T>& v) {
  std::vector<int64_t> offsets;
  const int r = v.rank();
  std::vector<int64_t> lead(v.shape().begin(), v.shape().end() - 1);
  Strides st{};
  for (int i = 0; i + 1 < r; ++i) st[static_cast<size_t>(i)] = v.strides()[static_cast<size_t>(i)];
  for_each_offset(Shape(lead), st, [&](int64_t o) { offsets.push_back(o); });
  return offsets;
}

}  // namespace attn::internal
