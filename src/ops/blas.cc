// SPDX-License-Identifier: MIT
#include <cblas.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

#include "attn/ops/attention.h"
#include "attn/ops/linear.h"
#include "core/parallel.h"
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

// OpenBLAS runs single-threaded, always: attn's parallelism is its own (parallel_sgemm). Set once
// per process, before the first call. The pthreads build of OpenBLAS also starts a pool of server
// threads when it loads, which spin (sched_yield) for about 0.1 s before they sleep, and which
// openblas_set_num_threads(1) leaves running: on a 2-core machine they took the second core from
// attn's own workers (a 2-thread LSTM forward of `attn bench sequence-models --seq 100 --d-model
// 64 --batch 2` in a process's first 0.1 s: 16 ms instead of 2). blas_thread_shutdown_ stops
// them; it is not in cblas.h and other builds (OpenMP, serial) lack it, hence the weak reference.
extern "C" int blas_thread_shutdown_(void) __attribute__((weak));

void single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] {
    openblas_set_num_threads(1);
    if (blas_thread_shutdown_) blas_thread_shutdown_();
  });
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

namespace {
// C = alpha · op(A) · op(B) + beta · C on raw row-major pointers.
void gemm_call(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
               int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // BLAS may skip the beta scaling when K is 0; do it explicitly.
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  single_threaded_blas();
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, blas_int(M), blas_int(N), blas_int(K), alpha, a,
              blas_int(lda), b, blas_int(ldb), beta, c, blas_int(ldc));
}

// Rows (or columns) of C per block: at least 16, and at most 8 blocks (enough for the 2-8 threads
// of the machines attn targets, few enough that each call still fills OpenBLAS's register tiles).
int64_t gemm_block(int64_t extent) {
  return std::max<int64_t>(16, ((extent + 7) / 8 + 15) / 16 * 16);
}
}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const BlasMatrix& a, const BlasMatrix& b, float beta, BlasOutput& c) {
  gemm_call(trans_a, trans_b, M, N, K, alpha, a.data, a.ld, b.data, b.ld, beta, c.data(), c.ld());
}

void gemm_raw(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
              int64_t ldc) {
  gemm_call(trans_a, trans_b, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
}

void parallel_sgemm(const Context& ctx, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                    float alpha, const BlasMatrix& a, const BlasMatrix& b, float beta,
                    BlasOutput& c) {
  const bool by_rows = M >= N;
  const int64_t extent = by_rows ? M : N, block = gemm_block(extent);
  const int64_t blocks = (extent + block - 1) / block;
  const double work =
      static_cast<double>(block) * static_cast<double>(by_rows ? N : M) * static_cast<double>(K);
  parallel_for(ctx, blocks, work, [&](int64_t i, int) {
    const int64_t lo = i * block, n = std::min(block, extent - lo);
    if (by_rows)  // rows lo.. of C and of op(A) (rows of A, or columns of Aᵀ)
      gemm_call(trans_a, trans_b, n, N, K, alpha, a.data + (trans_a ? lo : lo * a.ld), a.ld, b.data,
                b.ld, beta, c.data() + lo * c.ld(), c.ld());
    else  // columns lo.. of C and of op(B)
      gemm_call(trans_a, trans_b, M, n, K, alpha, a.data, a.ld, b.data + (trans_b ? lo * b.ld : lo),
                b.ld, beta, c.data() + lo, c.ld());
  });
}

}  // namespace attn::internal

namespace attn::ops {

std::string blas_core() {
  const char* name = openblas_get_corename();
  return name ? std::string(name) : std::string();
}

std::string suggested_blas_coretype() {
  std::string core = blas_core();
  std::transform(core.begin(), core.end(), core.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  // The SSE-era kernel sets OpenBLAS falls back to when it does not know a CPU.
  static const char* const kGeneric[] = {"prescott", "core2", "penryn",  "dunnington",
                                         "nehalem",  "atom",  "katmai",  "coppermine",
                                         "northwood", "banias", "unknown", ""};
  if (std::find(std::begin(kGeneric), std::end(kGeneric), core) == std::end(kGeneric)) return "";
  const std::vector<std::string> simd = available_simd_targets();
  auto has = [&](const std::string& prefix) {
    return std::any_of(simd.begin(), simd.end(),
                       [&](const std::string& t) { return t.rfind(prefix, 0) == 0; });
  };
  if (has("AVX3")) return "SkylakeX";
  if (has("AVX2")) return "Haswell";
  return "";
}

}  // namespace attn::ops
