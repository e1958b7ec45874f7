// SPDX-License-Identifier: MIT
// Shape validation, view arithmetic (slice, transpose, reshape) and aligned owning storage
// (large buffers recycled through core/buffer_pool.h).
#include "attn/tensor.h"

#include "attn/context.h"
#include "core/buffer_pool.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <sstream>
#include <type_traits>

namespace attn {

// ---------------------------------------------------------------------------------------------------
// Shape

Shape::Shape(std::initializer_list<int64_t> dims)
    : Shape(std::span<const int64_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const int64_t> dims) {
  if (dims.size() > static_cast<size_t>(kMaxRank))
    fail<ShapeError>("Shape", "rank ", dims.size(), " exceeds the maximum rank ", kMaxRank);
  rank_ = static_cast<int>(dims.size());
  std::copy(dims.begin(), dims.end(), dims_.begin());
  validate();
}

void Shape::validate() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) {
    const int64_t d = dims_[static_cast<size_t>(i)];
    if (d < 0) fail<ShapeError>("Shape", "dimension ", i, " is negative in ", str());
    if (d != 0 && n > INT64_MAX / d)
      fail<ShapeError>("Shape", "element count of ", str(), " overflows int64");
    n *= d;
  }
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<size_t>(i)];
  return n;
}

std::string Shape::str() const {
  std::ostringstream os;
  os << '(';
  for (int i = 0; i < rank_; ++i) os << (i ? ", " : "") << dims_[static_cast<size_t>(i)];
  if (rank_ == 1) os << ',';
  os << ')';
  return os.str();
}

bool operator==(const Shape& a, const Shape& b) {
  return a.rank_ == b.rank_ && std::equal(a.begin(), a.end(), b.begin());
}

Strides contiguous_strides(const Shape& shape) {
  Strides s{};
  int64_t acc = 1;
  for (int i = shape.rank() - 1; i >= 0; --i) {
    s[static_cast<size_t>(i)] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------
// BasicView

template <typename T>
int BasicView<T>::normalize_dim(int i, int rank_plus) const {
  const int r = rank() + rank_plus;
  const int j = i < 0 ? i + r : i;
  if (j < 0 || j >= r)
    fail<ShapeError>("TensorView", "dimension ", i, " is out of range for shape ", shape_.str());
  return j;
}

template <typename T>
bool BasicView<T>::is_contiguous() const {
  int64_t expected = 1;
  for (int i = rank() - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[static_cast<size_t>(i)] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

template <typename T>
BasicView<T> BasicView<T>::slice(int dim, int64_t start, int64_t stop, int64_t step) const {
  const int d = normalize_dim(dim);
  const int64_t n = shape_[d];
  if (step < 1) fail<ShapeError>("TensorView::slice", "step must be >= 1, got ", step);
  if (start < 0 || stop < start || stop > n)
    fail<ShapeError>("TensorView::slice", "range [", start, ", ", stop,
                     ") is invalid for dimension ", d, " of shape ", shape_.str());
  std::array<int64_t, kMaxRank> dims{};
  std::copy(shape_.begin(), shape_.end(), dims.begin());
  dims[static_cast<size_t>(d)] = (stop - start + step - 1) / step;
  Strides st = strides_;
  st[static_cast<size_t>(d)] *= step;
  T* p =
      dims[static_cast<size_t>(d)] == 0 ? data_ : data_ + start * strides_[static_cast<size_t>(d)];
  return BasicView(p, Shape(std::span<const int64_t>(dims.data(), static_cast<size_t>(rank()))),
                   st);
}

template <typename T>
BasicView<T> BasicView<T>::select(int dim, int64_t index) const {
  const int d = normalize_dim(dim);
  if (index < 0 || index >= shape_[d])
    fail<ShapeError>("TensorView::select", "index ", index, " is out of range for dimension ", d,
                     " of shape ", shape_.str());
  std::vector<int64_t> dims;
  Strides st{};
  for (int i = 0, j = 0; i < rank(); ++i) {
    if (i == d) continue;
    dims.push_back(shape_[i]);
    st[static_cast<size_t>(j++)] = strides_[static_cast<size_t>(i)];
  }
  return BasicView(data_ + index * strides_[static_cast<size_t>(d)], Shape(dims), st);
}

template <typename T>
BasicView<T> BasicView<T>::transpose(int dim0, int dim1) const {
  const auto a = static_cast<size_t>(normalize_dim(dim0));
  const auto b = static_cast<size_t>(normalize_dim(dim1));
  std::array<int64_t, kMaxRank> dims{};
  std::copy(shape_.begin(), shape_.end(), dims.begin());
  Strides st = strides_;
  std::swap(dims[a], dims[b]);
  std::swap(st[a], st[b]);
  return BasicView(data_, Shape(std::span<const int64_t>(dims.data(), static_cast<size_t>(rank()))),
                   st);
}

template <typename T>
BasicView<T> BasicView<T>::permute(std::initializer_list<int> order) const {
  if (static_cast<int>(order.size()) != rank())
    fail<ShapeError>("TensorView::permute", "order has ", order.size(), " entries for shape ",
                     shape_.str());
  std::array<bool, kMaxRank> seen{};
  std::vector<int64_t> dims;
  Strides st{};
  size_t j = 0;
  for (int o : order) {
    const int d = normalize_dim(o);
    if (seen[static_cast<size_t>(d)])
      fail<ShapeError>("TensorView::permute", "dimension ", d, " appears twice");
    seen[static_cast<size_t>(d)] = true;
    dims.push_back(shape_[d]);
    st[j++] = strides_[static_cast<size_t>(d)];
  }
  return BasicView(data_, Shape(dims), st);
}

template <typename T>
BasicView<T> BasicView<T>::unsqueeze(int dim) const {
  if (rank() >= kMaxRank)
    fail<ShapeError>("TensorView::unsqueeze", "shape ", shape_.str(),
                     " already has the maximum rank");
  const int d = normalize_dim(dim, 1);
  std::vector<int64_t> dims(shape_.begin(), shape_.end());
  dims.insert(dims.begin() + d, 1);
  Strides st{};
  for (int i = 0, j = 0; i <= rank(); ++i) {
    if (i == d) {
      st[static_cast<size_t>(i)] = d < rank() ? strides_[static_cast<size_t>(d)] * shape_[d] : 1;
    } else {
      st[static_cast<size_t>(i)] = strides_[static_cast<size_t>(j++)];
    }
  }
  return BasicView(data_, Shape(dims), st);
}

template <typename T>
BasicView<T> BasicView<T>::reshape(const Shape& shape) const {
  if (shape.numel() != numel())
    fail<ShapeError>("TensorView::reshape", "cannot reshape ", shape_.str(), " (", numel(),
                     " elements) to ", shape.str(), " (", shape.numel(), " elements)");
  if (!is_contiguous())
    fail<ShapeError>("TensorView::reshape", "view of shape ", shape_.str(),
                     " is not contiguous; copy it first (Tensor::copy_of)");
  return BasicView(data_, shape);
}

template class BasicView<float>;
template class BasicView<const float>;
template class BasicView<double>;
template class BasicView<const double>;
template class BasicView<bf16>;
template class BasicView<const bf16>;

// ---------------------------------------------------------------------------------------------------
// BasicTensor

template <typename T>
void BasicTensor<T>::FreeDeleter::operator()(T* p) const {
  internal::release_buffer(p, bytes);
}

template <typename T>
BasicTensor<T>::BasicTensor(const Shape& shape) : BasicTensor(shape, NoInit{}) {
  if (data_) std::memset(data_.get(), 0, static_cast<size_t>(shape.numel()) * sizeof(T));
}

template <typename T>
void BasicTensor<T>::reshape(const Shape& shape) {
  if (!defined_ || shape.numel() != shape_.numel())
    fail<ShapeError>("Tensor::reshape", "cannot reshape ", defined_ ? shape_.str() : "undefined",
                     " to ", shape.str());
  shape_ = shape;
}

template <typename T>
BasicTensor<T> BasicTensor<T>::uninitialized(const Shape& shape) {
  BasicTensor t(shape, NoInit{});
#if !defined(NDEBUG) || defined(ATTN_ENABLE_DCHECK)
  if constexpr (std::is_same_v<T, bf16>)
    std::fill(t.values().begin(), t.values().end(), bf16::from_bits(0x7fc0));
  else
    std::fill(t.values().begin(), t.values().end(), std::numeric_limits<T>::quiet_NaN());
#endif
  return t;
}

template <typename T>
BasicTensor<T>::BasicTensor(const Shape& shape, NoInit) : shape_(shape), defined_(true) {
  const int64_t n = shape.numel();
  if (n > 0) {
    if (static_cast<uint64_t>(n) > SIZE_MAX / sizeof(T) - 64)
      fail<ShapeError>("Tensor", "shape ", shape.str(), " is too large to allocate");
    // aligned_alloc needs a size that is a multiple of the alignment.
    const size_t bytes = (static_cast<size_t>(n) * sizeof(T) + 63) / 64 * 64;
    check_memory_budget("Tensor", static_cast<double>(bytes), "a tensor of shape " + shape.str());
    void* p = internal::acquire_buffer(bytes);
    if (p == nullptr)
      fail<Error>("Tensor", "out of memory allocating ", bytes, " bytes for ", shape.str());
    data_ = std::unique_ptr<T, FreeDeleter>(static_cast<T*>(p), FreeDeleter{bytes});
  }
}

template <typename T>
BasicTensor<T> BasicTensor<T>::full(const Shape& shape, T value) {
  BasicTensor t(shape);
  std::fill(t.values().begin(), t.values().end(), value);
  return t;
}

template <typename T>
BasicTensor<T> BasicTensor<T>::from_values(const Shape& shape, std::span<const T> values) {
  if (static_cast<int64_t>(values.size()) != shape.numel())
    fail<ShapeError>("Tensor::from_values", values.size(), " values given for shape ", shape.str(),
                     " (", shape.numel(), " elements)");
  BasicTensor t(shape);
  std::copy(values.begin(), values.end(), t.values().begin());
  return t;
}

template <typename T>
template <typename U>
BasicTensor<T> BasicTensor<T>::copy_of(BasicView<const U> view) {
  if (!view.defined()) fail<ShapeError>("Tensor::copy_of", "view is undefined");
  BasicTensor t = uninitialized(view.shape());
  copy(view, t.view());
  return t;
}

template class BasicTensor<float>;
template class BasicTensor<double>;
template Tensor Tensor::copy_of<float>(BasicView<const float>);
template Tensor Tensor::copy_of<double>(BasicView<const double>);
template TensorD TensorD::copy_of<float>(BasicView<const float>);
template TensorD TensorD::copy_of<double>(BasicView<const double>);
template class BasicTensor<bf16>;
template TensorBF16 TensorBF16::copy_of<float>(BasicView<const float>);
template TensorBF16 TensorBF16::copy_of<double>(BasicView<const double>);
template TensorBF16 TensorBF16::copy_of<bf16>(BasicView<const bf16>);
template Tensor Tensor::copy_of<bf16>(BasicView<const bf16>);
template TensorD TensorD::copy_of<bf16>(BasicView<const bf16>);

// ---------------------------------------------------------------------------------------------------
// Element-wise helpers

namespace {
// One element of copy(): bf16 from double goes through float (bf16 has no double constructor).
template <typename D, typename S>
D convert_element(S x) {
  if constexpr (std::is_same_v<D, bf16> && std::is_same_v<S, double>)
    return bf16(static_cast<float>(x));
  else
    return static_cast<D>(x);
}
}  // namespace

template <typename D, typename S>
void copy(BasicView<const S> src, BasicView<D> dst) {
  if (!(src.shape() == dst.shape()))
    fail<ShapeError>("copy", "src has shape ", src.shape().str(), " but dst has shape ",
                     dst.shape().str());
  if (may_overlap(src, dst) &&
      static_cast<const void*>(src.data()) != static_cast<const void*>(dst.data()))
    fail<ValueError>("copy", "src and dst overlap");
  if constexpr (std::is_same_v<D, S>) {
    if (src.is_contiguous() && dst.is_contiguous()) {  // most copies: one memmove
      if (src.numel() > 0)
        std::memmove(dst.data(), src.data(), sizeof(D) * static_cast<size_t>(src.numel()));
      return;
    }
  }
  for_each_offset_pair(src, dst, [&](int64_t s, int64_t d) {
    dst.at_offset(d) = convert_element<D>(src.at_offset(s));
  });
}

template void copy<float, float>(BasicView<const float>, BasicView<float>);
template void copy<double, float>(BasicView<const float>, BasicView<double>);
template void copy<float, double>(BasicView<const double>, BasicView<float>);
template void copy<double, double>(BasicView<const double>, BasicView<double>);
template void copy<bf16, float>(BasicView<const float>, BasicView<bf16>);
template void copy<bf16, double>(BasicView<const double>, BasicView<bf16>);
template void copy<bf16, bf16>(BasicView<const bf16>, BasicView<bf16>);
template void copy<float, bf16>(BasicView<const bf16>, BasicView<float>);
template void copy<double, bf16>(BasicView<const bf16>, BasicView<double>);

template <typename T>
void fill(BasicView<T> dst, T value) {
  if (dst.defined() && dst.is_contiguous()) {
    std::fill(dst.data(), dst.data() + dst.numel(), value);
    return;
  }
  for_each_offset(dst, [&](int64_t o) { dst.at_offset(o) = value; });
}
template void fill<float>(BasicView<float>, float);
template void fill<double>(BasicView<double>, double);

namespace {
// [first, last] byte addresses a view can touch; empty views touch nothing.
template <typename T>
bool byte_span(const BasicView<T>& v, uintptr_t& first, uintptr_t& last) {
  if (!v.defined() || v.numel() == 0) return false;
  int64_t extent = 0;
  for (int i = 0; i < v.rank(); ++i)
    extent += (v.shape()[i] - 1) * v.strides()[static_cast<size_t>(i)];
  first = reinterpret_cast<uintptr_t>(v.data());
  last = first + static_cast<uintptr_t>(extent + 1) * sizeof(T) - 1;
  return true;
}
}  // namespace

template <typename A, typename B>
bool may_overlap(const BasicView<A>& a, const BasicView<B>& b) {
  uintptr_t a0, a1, b0, b1;
  if (!byte_span(a, a0, a1) || !byte_span(b, b0, b1)) return false;
  return a0 <= b1 && b0 <= a1;
}

#define ATTN_INSTANTIATE_OVERLAP(A, B) \
  template bool may_overlap<A, B>(const BasicView<A>&, const BasicView<B>&);
ATTN_INSTANTIATE_OVERLAP(float, float)
ATTN_INSTANTIATE_OVERLAP(const float, float)
ATTN_INSTANTIATE_OVERLAP(float, const float)
ATTN_INSTANTIATE_OVERLAP(const float, const float)
ATTN_INSTANTIATE_OVERLAP(double, double)
ATTN_INSTANTIATE_OVERLAP(const double, double)
ATTN_INSTANTIATE_OVERLAP(double, const double)
ATTN_INSTANTIATE_OVERLAP(const double, const double)
ATTN_INSTANTIATE_OVERLAP(const float, double)
ATTN_INSTANTIATE_OVERLAP(const double, float)
ATTN_INSTANTIATE_OVERLAP(bf16, bf16)
ATTN_INSTANTIATE_OVERLAP(const bf16, bf16)
ATTN_INSTANTIATE_OVERLAP(bf16, const bf16)
ATTN_INSTANTIATE_OVERLAP(float, const bf16)
ATTN_INSTANTIATE_OVERLAP(const bf16, float)
ATTN_INSTANTIATE_OVERLAP(const float, bf16)
ATTN_INSTANTIATE_OVERLAP(double, const bf16)
ATTN_INSTANTIATE_OVERLAP(const bf16, double)
#undef ATTN_INSTANTIATE_OVERLAP

template <typename T>
bool has_distinct_elements(const BasicView<T>& view) {
  // Sort the dimensions of size > 1 by stride; each stride must step over everything the smaller
  // strides can reach, otherwise two indices map to the same element.
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size)
  for (int i = 0; i < view.rank(); ++i)
    if (view.shape()[i] > 1)
      dims.emplace_back(view.strides()[static_cast<size_t>(i)], view.shape()[i]);
  std::sort(dims.begin(), dims.end());
  int64_t reach = 1;  // elements spanned by the dimensions seen so far
  for (const auto& [stride, size] : dims) {
    if (stride < reach) return false;
    reach = stride * (size - 1) + reach;
  }
  return true;
}
template bool has_distinct_elements<float>(const BasicView<float>&);
template bool has_distinct_elements<double>(const BasicView<double>&);
template bool has_distinct_elements<bf16>(const BasicView<bf16>&);

template <typename T>
std::optional<std::vector<int64_t>> first_non_finite(BasicView<const T> view,
                                                     bool allow_negative_infinity) {
  if (!view.defined()) return std::nullopt;
  const auto bad_value = [allow_negative_infinity](T x) {
    return !std::isfinite(x) && !(allow_negative_infinity && x < 0);
  };
  int64_t bad = -1;
  if (view.is_contiguous()) {  // the common case: a pass the compiler vectorises, then the search
    const T* p = view.data();
    const int64_t n = view.numel();
    bool any = false;
    for (int64_t i = 0; i < n; ++i) any |= !std::isfinite(p[i]);
    if (any) {
      const T* hit = std::find_if(p, p + n, bad_value);
      if (hit != p + n) bad = hit - p;
    }
  } else {
    int64_t n = 0;
    for_each_offset(view, [&](int64_t offset) {
      if (bad < 0 && bad_value(view.data()[offset])) bad = n;
      ++n;
    });
  }
  if (bad < 0) return std::nullopt;
  std::vector<int64_t> index(static_cast<size_t>(view.rank()));
  for (int d = view.rank() - 1; d >= 0; --d) {
    index[static_cast<size_t>(d)] = bad % view.dim(d);
    bad /= view.dim(d);
  }
  return index;
}
template std::optional<std::vector<int64_t>> first_non_finite(BasicView<const float>, bool);
template std::optional<std::vector<int64_t>> first_non_finite(BasicView<const double>, bool);

namespace {
template <typename T>
void check_finite_impl(std::string_view fn, std::string_view name, BasicView<const T> view,
                       std::string_view hint, bool allow_negative_infinity) {
  const auto index = first_non_finite(view, allow_negative_infinity);
  if (!index) return;
  std::ostringstream where;
  int64_t offset = 0;
  for (size_t i = 0; i < index->size(); ++i) {
    where << (i ? ", " : "") << (*index)[i];
    offset += (*index)[i] * view.strides()[i];
  }
  const T x = view.data()[offset];
  fail<ValueError>(fn, name, " (shape ", view.shape().str(), ") holds ",
                   std::isnan(x) ? "nan"
                   : x > 0       ? "inf"
                                 : "-inf",
                   " at [", where.str(), "]", hint);
}
}  // namespace

void check_finite(std::string_view fn, std::string_view name, BasicView<const float> view,
                  std::string_view hint, bool allow_negative_infinity) {
  check_finite_impl(fn, name, view, hint, allow_negative_infinity);
}
void check_finite(std::string_view fn, std::string_view name, BasicView<const double> view,
                  std::string_view hint, bool allow_negative_infinity) {
  check_finite_impl(fn, name, view, hint, allow_negative_infinity);
}

}  // namespace attn
