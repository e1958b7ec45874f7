// SPDX-License-Identifier: MIT
// The choice the fused kernel rests on, measured: its tile products through our broadcast
// micro-kernel (internal::kernels::gemm_bcast, Highway) against the same products through
// OpenBLAS's cblas_sgemm, single-threaded, on the shapes the forward and backward issue per tile
// (HS = 64, Bq = 64, Bk = 128). GFLOP/s counts 2·M·N·K per call. The data stays in cache, as it
// does inside the kernel.
//
//   build/release/bench/bench_tiles --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <vector>

#include "ops/internal/attention_kernels.h"

namespace {

// One tile product C[M×N] (+)= A[M×K]·B[K×N]; `a_transposed` stores A as Aᵀ (a_rs = 1, a_ks = M),
// the layout the kernel reads the probability tile in for P·V and dS·K.
struct TileShape {
  int64_t M, N, K;
  bool a_transposed;
};

constexpr TileShape kShapes[] = {
    {128, 64, 64, false},  // forward S = K·Qᵀ:  keys × queries, over HS
    {64, 64, 128, true},   // forward O += P·V:  queries × HSV, over keys (P stored [key][query])
    {128, 64, 64, true},   // backward dK += dSᵀ·Q: keys × HS, over queries
};

struct Operands {
  std::vector<float> a, b, c;
  explicit Operands(const TileShape& s)
      : a(static_cast<size_t>(s.M * s.K), 0.01f),
        b(static_cast<size_t>(s.K * s.N), 0.02f),
        c(static_cast<size_t>(s.M * s.N), 0.0f) {}
};

void set_flops(benchmark::State& state, const TileShape& s) {
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(s.M * s.N * s.K) / 1e9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void BM_TileBroadcastKernel(benchmark::State& state) {
  const TileShape s = kShapes[state.range(0)];
  Operands o(s);
  const int64_t a_rs = s.a_transposed ? 1 : s.K, a_ks = s.a_transposed ? s.M : 1;
  for (auto _ : state) {
    attn::internal::kernels::gemm_bcast(s.M, s.N, s.K, o.a.data(), a_rs, a_ks, o.b.data(), s.N,
                                        o.c.data(), s.N, true);
    benchmark::DoNotOptimize(o.c.data());
  }
  set_flops(state, s);
}
BENCHMARK(BM_TileBroadcastKernel)->DenseRange(0, 2);

void BM_TileOpenBlas(benchmark::State& state) {
  const TileShape s = kShapes[state.range(0)];
  Operands o(s);
  openblas_set_num_threads(1);
  const int M = static_cast<int>(s.M), N = static_cast<int>(s.N), K = static_cast<int>(s.K);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, s.a_transposed ? CblasTrans : CblasNoTrans, CblasNoTrans, M, N, K,
                1.0f, o.a.data(), s.a_transposed ? M : K, o.b.data(), N, 1.0f, o.c.data(), N);
    benchmark::DoNotOptimize(o.c.data());
  }
  set_flops(state, s);
}
BENCHMARK(BM_TileOpenBlas)->DenseRange(0, 2);

}  // namespace

BENCHMARK_MAIN();
