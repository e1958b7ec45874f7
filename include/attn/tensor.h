// SPDX-License-Identifier: MIT
// Shape, owning tensors (BasicTensor) and non-owning strided views (BasicView).
// Owning and viewing types are kept apart: a view never frees, a tensor is always contiguous.
// Strides are in elements, never bytes. float is the working type; double exists for the reference
// implementations and for finite-difference checks; bf16 (attn/bfloat16.h) is a storage type that
// attention accepts for q, k and v.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "attn/bfloat16.h"
#include "attn/error.h"

namespace attn {

inline constexpr int kMaxRank = 6;

// Dimension sizes, outermost first (PyTorch order). Construction rejects negative sizes, ranks
// above kMaxRank and element counts that overflow int64.
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(std::span<const int64_t> dims);

  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[static_cast<size_t>(i)]; }
  int64_t numel() const;
  const int64_t* begin() const { return dims_.data(); }
  const int64_t* end() const { return dims_.data() + rank_; }
  std::string str() const;  // "(2, 3, 4)"
  friend bool operator==(const Shape& a, const Shape& b);

 private:
  void validate() const;
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

using Strides = std::array<int64_t, kMaxRank>;

// Contiguous (row-major) strides of a shape.
Strides contiguous_strides(const Shape& shape);

// A non-owning strided view of T (T may be const). A default-constructed view is "undefined" and is
// how optional arguments (a bias, a probabilities output) are left out.
template <typename T>
class BasicView {
 public:
  using value_type = std::remove_const_t<T>;

  BasicView() = default;
  BasicView(T* data, const Shape& shape) : BasicView(data, shape, contiguous_strides(shape)) {}
  BasicView(T* data, const Shape& shape, const Strides& strides)
      : data_(data), shape_(shape), strides_(strides), defined_(true) {
    for (int i = 0; i < shape.rank(); ++i) {
      if (strides[static_cast<size_t>(i)] < 0)
        fail<ShapeError>("TensorView", "negative stride ", strides[static_cast<size_t>(i)],
                         " in dimension ", i, " of shape ", shape.str(), " is not supported");
    }
    if (data == nullptr && shape.numel() > 0)
      fail<ShapeError>("TensorView", "null data for non-empty shape ", shape.str());
  }
  // A mutable view converts to a const view.
  template <typename U, typename = std::enable_if_t<std::is_same_v<T, const U>>>
  BasicView(const BasicView<U>& other)  // NOLINT(google-explicit-constructor)
      : data_(other.data()),
        shape_(other.shape()),
        strides_(other.strides()),
        defined_(other.defined()) {}

  bool defined() const { return defined_; }
  T* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  const Strides& strides() const { return strides_; }
  int rank() const { return shape_.rank(); }
  // Size and stride of dimension i; negative i counts from the end, as in PyTorch.
  int64_t dim(int i) const { return shape_[normalize_dim(i)]; }
  int64_t stride(int i) const { return strides_[static_cast<size_t>(normalize_dim(i))]; }
  int64_t numel() const { return shape_.numel(); }
  bool is_contiguous() const;

  // Element access without bounds checks in release builds (ATTN_DCHECK in debug).
  template <typename... I>
  T& operator()(I... idx) const {
    static_assert(sizeof...(I) <= kMaxRank);
    ATTN_DCHECK(static_cast<int>(sizeof...(I)) == rank());
    const int64_t index[] = {static_cast<int64_t>(idx)...};
    int64_t offset = 0;
    for (size_t d = 0; d < sizeof...(I); ++d) {
      ATTN_DCHECK(index[d] >= 0 && index[d] < shape_[static_cast<int>(d)]);
      offset += index[d] * strides_[d];
    }
    return data_[offset];
  }
  T& at_offset(int64_t offset) const { return data_[offset]; }

  // Views of part of this view; every one checks its arguments and throws ShapeError.
  BasicView slice(int dim, int64_t start, int64_t stop, int64_t step = 1) const;
  BasicView select(int dim, int64_t index) const;  // drops the dimension
  BasicView transpose(int dim0, int dim1) const;
  BasicView permute(std::initializer_list<int> order) const;
  BasicView unsqueeze(int dim) const;
  BasicView reshape(const Shape& shape) const;  // contiguous views only

 private:
  int normalize_dim(int i, int rank_plus = 0) const;
  T* data_ = nullptr;
  Shape shape_;
  Strides strides_{};
  bool defined_ = false;
};

using TensorView = BasicView<float>;
using ConstTensorView = BasicView<const float>;
using TensorViewD = BasicView<double>;
using ConstTensorViewD = BasicView<const double>;
using TensorViewBF16 = BasicView<bf16>;
using ConstTensorViewBF16 = BasicView<const bf16>;

// Owning, contiguous, 64-byte aligned, zero-initialised storage.
template <typename T>
class BasicTensor {
 public:
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, bf16>);
  BasicTensor() = default;
  explicit BasicTensor(const Shape& shape);  // zeros
  static BasicTensor zeros(const Shape& shape) { return BasicTensor(shape); }
  // Storage whose contents are unspecified, for outputs that a kernel overwrites entirely (saves
  // the zeroing pass, which was 9% of a CNN training step). Debug and sanitizer builds fill it with
  // NaN, so a read before the write shows up in the tests.
  static BasicTensor uninitialized(const Shape& shape);
  static BasicTensor full(const Shape& shape, T value);
  static BasicTensor from_values(const Shape& shape, std::span<const T> values);
  // A contiguous copy of any view, converting between float, double and bf16 where needed (to bf16:
  // rounded to nearest even, from double through float).
  template <typename U>
  static BasicTensor copy_of(BasicView<const U> view);
  template <typename U>
  static BasicTensor copy_of(BasicView<U> view) {
    return copy_of(BasicView<const U>(view));
  }

  BasicTensor(BasicTensor&&) noexcept = default;
  BasicTensor& operator=(BasicTensor&&) noexcept = default;
  BasicTensor(const BasicTensor&) = delete;  // copies are explicit: copy_of(t.view())
  BasicTensor& operator=(const BasicTensor&) = delete;

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  int64_t dim(int i) const { return view().dim(i); }
  int64_t numel() const { return defined_ ? shape_.numel() : 0; }  // 0 for an undefined tensor
  std::span<T> values() { return {data(), static_cast<size_t>(numel())}; }
  std::span<const T> values() const { return {data(), static_cast<size_t>(numel())}; }

  BasicView<T> view() { return defined() ? BasicView<T>(data(), shape_) : BasicView<T>(); }
  BasicView<const T> view() const {
    return defined() ? BasicView<const T>(data(), shape_) : BasicView<const T>();
  }
  operator BasicView<T>() { return view(); }              // NOLINT(google-explicit-constructor)
  operator BasicView<const T>() const { return view(); }  // NOLINT(google-explicit-constructor)
  bool defined() const { return defined_; }
  // The same values under another shape of as many elements (ShapeError otherwise); no copy.
  void reshape(const Shape& shape);

  template <typename... I>
  T& operator()(I... idx) {
    return view()(idx...);
  }
  template <typename... I>
  const T& operator()(I... idx) const {
    return view()(idx...);
  }

 private:
  struct NoInit {};
  BasicTensor(const Shape& shape, NoInit);
  struct FreeDeleter {
    size_t bytes = 0;  // as allocated (large buffers go back to a pool for reuse)
    void operator()(T* p) const;
  };
  std::unique_ptr<T, FreeDeleter> data_;
  Shape shape_;
  bool defined_ = false;
};

using Tensor = BasicTensor<float>;
using TensorD = BasicTensor<double>;
using TensorBF16 = BasicTensor<bf16>;

// dst = src element by element (shapes must match; float, double and bf16 convert as in copy_of).
// dst must not overlap src.
template <typename D, typename S>
void copy(BasicView<const S> src, BasicView<D> dst);
template <typename D, typename S>
void copy(BasicView<S> src, BasicView<D> dst) {
  copy(BasicView<const S>(src), dst);
}
// Sets every element of a view.
template <typename T>
void fill(BasicView<T> dst, T value);

// Calls fn(offset) for the element offset of every element of (shape, strides), in row-major order.
// The last dimension is a plain inner loop (the compiler vectorises it for contiguous rows); an
// odometer steps the outer ones.
template <typename F>
void for_each_offset(const Shape& shape, const Strides& strides, F&& fn) {
  const int rank = shape.rank();
  if (shape.numel() == 0) return;
  if (rank == 0) return fn(int64_t{0});
  const int64_t inner = shape[rank - 1], inner_stride = strides[static_cast<size_t>(rank - 1)];
  std::array<int64_t, kMaxRank> index{};
  int64_t offset = 0;
  for (;;) {
    for (int64_t i = 0; i < inner; ++i) fn(offset + i * inner_stride);
    int d = rank - 2;
    for (; d >= 0; --d) {
      const auto ud = static_cast<size_t>(d);
      if (++index[ud] < shape[d]) {
        offset += strides[ud];
        break;
      }
      offset -= (index[ud] - 1) * strides[ud];
      index[ud] = 0;
    }
    if (d < 0) return;
  }
}
template <typename T, typename F>
void for_each_offset(const BasicView<T>& view, F&& fn) {
  for_each_offset(view.shape(), view.strides(), fn);
}

// Calls fn(offset_a, offset_b) for every element of two views of the same shape, in row-major
// order (inner loop over the last dimension, as above).
template <typename A, typename B, typename F>
void for_each_offset_pair(const BasicView<A>& a, const BasicView<B>& b, F&& fn) {
  ATTN_DCHECK(a.shape() == b.shape());
  const int rank = a.rank();
  if (a.numel() == 0) return;
  if (rank == 0) return fn(int64_t{0}, int64_t{0});
  const auto last = static_cast<size_t>(rank - 1);
  const int64_t inner = a.shape()[rank - 1], sa = a.strides()[last], sb = b.strides()[last];
  std::array<int64_t, kMaxRank> index{};
  int64_t oa = 0, ob = 0;
  for (;;) {
    for (int64_t i = 0; i < inner; ++i) fn(oa + i * sa, ob + i * sb);
    int d = rank - 2;
    for (; d >= 0; --d) {
      const auto ud = static_cast<size_t>(d);
      if (++index[ud] < a.shape()[d]) {
        oa += a.strides()[ud];
        ob += b.strides()[ud];
        break;
      }
      oa -= (index[ud] - 1) * a.strides()[ud];
      ob -= (index[ud] - 1) * b.strides()[ud];
      index[ud] = 0;
    }
    if (d < 0) return;
  }
}

// The index of the first NaN or ±Inf element of a view in row-major order (-inf counts only without
// allow_negative_infinity: additive masks use it); nullopt if there is none.
template <typename T>
std::optional<std::vector<int64_t>> first_non_finite(BasicView<const T> view,
                                                     bool allow_negative_infinity = false);
template <typename T>
std::optional<std::vector<int64_t>> first_non_finite(BasicView<T> view,
                                                     bool allow_negative_infinity = false) {
  return first_non_finite(BasicView<const T>(view), allow_negative_infinity);
}
// Throws ValueError "fn: <name> (shape (..)) holds nan at [i, j, ...]<hint>" if first_non_finite
// finds one (kernels propagate NaN and Inf, docs/masks.md; front ends check what users hand them).
void check_finite(std::string_view fn, std::string_view name, BasicView<const float> view,
                  std::string_view hint = "", bool allow_negative_infinity = false);
void check_finite(std::string_view fn, std::string_view name, BasicView<const double> view,
                  std::string_view hint = "", bool allow_negative_infinity = false);

// True if two views share any memory address range (conservative: compares the spans they touch).
template <typename A, typename B>
bool may_overlap(const BasicView<A>& a, const BasicView<B>& b);
// True if distinct indices of the view always address distinct elements (needed for outputs).
template <typename T>
bool has_distinct_elements(const BasicView<T>& view);

}  // namespace attn
