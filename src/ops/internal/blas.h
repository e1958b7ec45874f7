// SPDX-License-Identifier: MIT
// Thin helpers around OpenBLAS's cblas_sgemm: operands that are not in BLAS layout are copied into
// contiguous temporaries (and outputs copied back), so callers may pass any strided view.
#pragma once

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::internal {

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

// C (M×N) = alpha · op(A) · op(B) + beta · C, row-major, one OpenBLAS call on the calling thread.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const BlasMatrix& a, const BlasMatrix& b, float beta, BlasOutput& c);

// C = alpha · op(A) · op(B) + beta · C on raw row-major pointers, on the calling thread (callers
// that run their own parallel loop: the recurrent layers' per-step GEMMs, the
// convolutions' per-image GEMMs).
void gemm_raw(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
              int64_t ldc);

// The same product on the context's threads: C is cut into fixed blocks of rows (or of columns,
// when C is wider than tall), sizes chosen from the shape alone, and each block is one
// single-threaded sgemm, run in parallel when the work pays for it. So the result does not depend
// on the thread count, and OpenBLAS's own thread pool never runs beside ours (two pools spinning on
// two cores made `attn train` 2.5x slower with 2 threads than with 1).
void parallel_sgemm(const Context& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                    float alpha, const BlasMatrix& a, const BlasMatrix& b, float beta,
                    BlasOutput& c);

}  // namespace attn::internal
