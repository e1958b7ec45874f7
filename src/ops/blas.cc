// SPDX-License-Identifier: MIT
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <climits>

#include "ops/internal/blas.h"

namespace attn::internal {

namespace {
bool blas_layout(const ConstTensorView& v) {
  if (v.rank() != 2) return false;
  const int64_t rows = v.dim(0), cols = v.dim(1);
  const bool unit_cols = cols <= 1 || v.stride(1) == 1;
  const bool ld_ok = rows <= 1 || v.stride(0) >= std::max<int64_t>(cols, 1);
  return unit_cols && ld_ok;
}
int64_t leading_dim(const ConstTensorView& v) {
  return v.dim(0) <= 1 ? std::max<int64_t>(v.dim(1), 1) : v.stride(0);
}
int blas_int(int64_t x) {
  if (x > INT_MAX)
    fail<ShapeError>("sgemm", "dimension ", x, " exceeds what OpenBLAS's 32-bit int can index");
  return static_cast<int>(x);
}
}  // namespace

void set_blas_threads(int n) {
  static std::atomic<int> current{-1};
  if (current.exchange(n) != n) openblas_set_num_threads(n);
}

BlasInput::BlasInput(ConstTensorView v) {
  if (blas_layout(v)) {
    m_ = {v.data(), v.dim(0), v.dim(1), leading_dim(v)};
  } else {
    copy_ = Tensor::copy_of(v);
    m_ = {copy_.data(), v.dim(0), v.dim(1), std::max<int64_t>(v.dim(1), 1)};
  }
}

BlasOutput::BlasOutput(TensorView v, bool accumulate) : view_(v) {
  if (blas_layout(v)) {
    data_ = v.data();
    ld_ = leading_dim(v);
  } else {
    copy_ = accumulate ? Tensor::copy_of(v) : Tensor(v.shape());
    data_ = copy_.data();
    ld_ = std::max<int64_t>(v.dim(1), 1);
  }
}

void BlasOutput::flush() {
  if (copy_.defined()) copy(ConstTensorView(copy_.view()), view_);
}

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const BlasMatrix& a, const BlasMatrix& b, float beta, BlasOutput& c) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // BLAS may skip the beta scaling when K is 0; do it explicitly.
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        c.data()[i * c.ld() + j] = beta == 0.0f ? 0.0f : beta * c.data()[i * c.ld() + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, blas_int(M), blas_int(N), blas_int(K), alpha,
              a.data, blas_int(a.ld), b.data, blas_int(b.ld), beta, c.data(), blas_int(c.ld()));
}

}  // namespace attn::internal
