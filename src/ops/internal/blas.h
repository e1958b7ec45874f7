// SPDX-License-Identifier: MIT
// Thin helpers around OpenBLAS's cblas_sgemm: operands that are not in BLAS layout are copied into
// contiguous temporaries (and outputs copied back), so callers may pass any strided view.
#pragma once

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::internal {

// Sets OpenBLAS's own thread count (a process-wide setting) only when it changes. Inside our own
// parallel regions callers pass 1: nested thread pools cost ~20x per tile.
void set_blas_threads(int n);

// A rank-2 float matrix in BLAS row-major layout: unit stride along columns, leading dimension >=
// cols.
struct BlasMatrix {
  const float* data;
  int64_t rows, cols, ld;
};

// A view in BLAS layout, or a contiguous copy of it when its strides are not.
class BlasInput {
 public:
  explicit BlasInput(ConstTensorView v);
  BlasMatrix matrix() const { return m_; }

 private:
  Tensor copy_;
  BlasMatrix m_;
};

// An output view in BLAS layout, or a contiguous temporary that flush() writes back. With
// accumulate = true the temporary starts as a copy of the view (for beta = 1 GEMMs).
class BlasOutput {
 public:
  BlasOutput(TensorView v, bool accumulate);
  float* data() const { return data_; }
  int64_t ld() const { return ld_; }
  void flush();

 private:
  TensorView view_;
  Tensor copy_;
  float* data_;
  int64_t ld_;
};

// C (M×N) = alpha · op(A) · op(B) + beta · C, row-major.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const BlasMatrix& a, const BlasMatrix& b, float beta, BlasOutput& c);

}  // namespace attn::internal
