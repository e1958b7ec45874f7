// SPDX-License-Identifier: MIT
// Shared test harness: random tensors, strided copies, closeness checks that report the worst
// element, and central finite differences in double.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>

#include "attn/attn.h"

namespace attn::testing {

inline constexpr double kEpsF32 = 1.1920928955078125e-07;  // float32 machine epsilon
inline constexpr double kInfinity = std::numeric_limits<double>::infinity();

template <typename T>
BasicTensor<T> random_tensor(const Shape& shape, Rng& rng, double scale = 1.0) {
  BasicTensor<T> t(shape);
  for (auto& x : t.values()) x = static_cast<T>(scale * rng.normal());
  return t;
}

// A tensor's values held in a larger, permuted, padded buffer: the view is non-contiguous in every
// dimension and starts misaligned, but holds the same values as `src`.
template <typename T>
struct Strided {
  BasicTensor<T> storage;
  BasicView<T> view;
};

template <typename T>
Strided<T> strided_copy(BasicView<const T> src) {
  const int r = src.rank();
  std::vector<int64_t> padded;  // storage dims in reversed order, each padded by 1 or 2
  for (int j = 0; j < r; ++j) padded.push_back(src.dim(r - 1 - j) + 1 + (j % 2));
  Strided<T> s;
  s.storage = BasicTensor<T>(Shape(padded));
  BasicView<T> v = s.storage.view();
  for (int j = 0; j < r; ++j) v = v.slice(j, 1, 1 + src.dim(r - 1 - j));
  // Reverse the dimension order back: storage dim j holds source dim r-1-j.
  for (int i = 0; i < r / 2; ++i) v = v.transpose(i, r - 1 - i);
  s.view = v;
  copy(src, s.view);
  return s;
}
template <typename T>
Strided<T> strided_copy(const BasicTensor<T>& src) {
  return strided_copy(src.view());
}

// |actual - expected| <= atol + rtol·|expected| everywhere (inf must match inf exactly). On
// failure, names the worst element and the number of failures.
template <typename A, typename E>
::testing::AssertionResult all_close(BasicView<const A> actual, BasicView<const E> expected,
                                     double atol, double rtol = 0.0) {
  if (!(actual.shape() == expected.shape()))
    return ::testing::AssertionFailure()
           << "shape " << actual.shape().str() << " vs expected " << expected.shape().str();
  double worst = -1.0, worst_a = 0.0, worst_e = 0.0, max_abs = 0.0;
  int64_t worst_index = -1, failures = 0, index = 0;
  for_each_offset_pair(actual, expected, [&](int64_t oa, int64_t oe) {
    const double a = static_cast<double>(actual.at_offset(oa)),
                 e = static_cast<double>(expected.at_offset(oe));
    double excess;
    if (std::isinf(e) || std::isinf(a) || std::isnan(a) || std::isnan(e)) {
      excess = (a == e) ? -1.0 : kInfinity;
    } else {
      max_abs = std::max(max_abs, std::abs(a - e));
      excess = std::abs(a - e) - (atol + rtol * std::abs(e));
    }
    if (excess > 0) ++failures;
    if (excess > worst) {
      worst = excess;
      worst_a = a;
      worst_e = e;
      worst_index = index;
    }
    ++index;
  });
  if (failures == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << failures << " of " << index << " elements differ; worst at flat index " << worst_index
         << ": actual " << worst_a << " expected " << worst_e << " (atol " << atol << ", rtol "
         << rtol << ", max abs error " << max_abs << ")";
}
template <typename A, typename E>
::testing::AssertionResult all_close(const BasicTensor<A>& a, const BasicTensor<E>& e, double atol,
                                     double rtol = 0.0) {
  return all_close<A, E>(a.view(), e.view(), atol, rtol);
}

// Largest |x| of a view (0 for empty views).
template <typename T>
double max_abs(BasicView<const T> v) {
  double m = 0.0;
  for_each_offset(
      v, [&](int64_t o) { m = std::max(m, std::abs(static_cast<double>(v.at_offset(o)))); });
  return m;
}

// Central differences of a scalar loss with respect to every element of x (double, in place,
// restored). Truncation error is O(eps²·f'''), rounding error O(δ/eps) with δ ≈ 1e-16·|loss|: eps =
// 1e-6 balances them near 1e-10 for the O(1) functions tested here.
inline TensorD numeric_gradient(const std::function<double()>& loss, TensorViewD x,
                                double eps = 1e-6) {
  TensorD grad(x.shape());
  int64_t i = 0;
  for_each_offset(x, [&](int64_t o) {
    const double saved = x.at_offset(o);
    x.at_offset(o) = saved + eps;
    const double up = loss();
    x.at_offset(o) = saved - eps;
    const double down = loss();
    x.at_offset(o) = saved;
    grad.data()[i++] = (up - down) / (2 * eps);
  });
  return grad;
}

// Σ a ⊙ b in double, for losses L = <out, G>.
template <typename T, typename U>
double dot(BasicView<const T> a, BasicView<const U> b) {
  double acc = 0.0;
  for_each_offset_pair(a, b, [&](int64_t oa, int64_t ob) {
    acc += static_cast<double>(a.at_offset(oa)) * static_cast<double>(b.at_offset(ob));
  });
  return acc;
}

// Expects `statement` to throw E whose message contains every fragment.
#define ATTN_EXPECT_THROW_MSG(statement, E, ...)                                \
  do {                                                                          \
    try {                                                                       \
      statement;                                                                \
      ADD_FAILURE() << "expected " #E " from: " #statement;                     \
    } catch (const E& e_) {                                                     \
      for (const char* fragment_ : {__VA_ARGS__})                               \
        EXPECT_NE(std::string(e_.what()).find(fragment_), std::string::npos)    \
            << "message \"" << e_.what() << "\" lacks \"" << fragment_ << "\""; \
    }                                                                           \
  } while (0)

// Path of a file under tests/golden (ATTN_GOLDEN_DIR is set by CMake).
inline std::string golden_path(const std::string& relative) {
  return std::string(ATTN_GOLDEN_DIR) + "/" + relative;
}

}  // namespace attn::testing
