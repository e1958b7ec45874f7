// SPDX-License-Identifier: MIT
// Google Benchmark targets for the ops so far. GFLOP/s counts 4·HS flops per unmasked score for
// attention forward (2·HS for q·k, 2·HSV for p·v with HSV = HS) and 2·N·IN·OUT for linear.
#include <benchmark/benchmark.h>

#include <algorithm>

#include "attn/attn.h"

namespace {

using namespace attn;

Tensor random(const Shape& shape, uint64_t seed) {
  Rng rng(seed);
  Tensor t(shape);
  for (auto& x : t.values()) x = static_cast<float>(rng.normal());
  return t;
}

void BM_AttentionReferenceForward(benchmark::State& state) {
  const int64_t N = state.range(0), NH = 4, HS = 64;
  const Tensor q = random(Shape{1, NH, N, HS}, 1), k = random(Shape{1, NH, N, HS}, 2),
               v = random(Shape{1, NH, N, HS}, 3);
  Tensor out(Shape{1, NH, N, HS}), lse(Shape{1, NH, N});
  Context ctx;
  for (auto _ : state) ops::reference::attention_forward(q, k, v, {}, {}, 0.125, out, lse, {}, ctx);
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(4 * NH * N * N * HS) / 1e9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AttentionReferenceForward)->Arg(64)->Arg(256)->Unit(benchmark::kMillisecond);

// The fused kernel, same shapes and flop convention; Arg = N, second arg = window (0 = full).
void BM_AttentionForward(benchmark::State& state) {
  const int64_t N = state.range(0), w = state.range(1), NH = 8, HS = 64;
  const Tensor q = random(Shape{1, NH, N, HS}, 1), k = random(Shape{1, NH, N, HS}, 2),
               v = random(Shape{1, NH, N, HS}, 3);
  Tensor out(Shape{1, NH, N, HS}), lse(Shape{1, NH, N});
  ops::AttentionMask mask;
  double pairs = static_cast<double>(N) * static_cast<double>(N);
  if (w > 0) {
    mask.window_left = mask.window_right = w;
    pairs = 0;
    for (int64_t t = 0; t < N; ++t) {
      const auto [lo, hi] = mask.key_interval(0, t, N);
      pairs += static_cast<double>(hi - lo + 1);
    }
  }
  Context ctx;
  for (auto _ : state) ops::attention_forward(q, k, v, mask, {}, 0.125, out, lse, {}, ctx);
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * static_cast<double>(NH * HS) * pairs / 1e9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_AttentionForward)
    ->Args({256, 0})
    ->Args({1024, 0})
    ->Args({16384, 32})
    ->Unit(benchmark::kMillisecond);

void BM_Linear(benchmark::State& state) {
  const int64_t N = state.range(0), IN = 512, OUT = 512;
  const Tensor x = random(Shape{N, IN}, 1), w = random(Shape{OUT, IN}, 2),
               b = random(Shape{OUT}, 3);
  Tensor out(Shape{N, OUT});
  Context ctx;
  for (auto _ : state) ops::linear_forward(x, w, b, out, ctx);
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(2 * N * IN * OUT) / 1e9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Linear)->Arg(128)->Arg(1024)->Unit(benchmark::kMillisecond);

void BM_LinearReference(benchmark::State& state) {
  const int64_t N = state.range(0), IN = 512, OUT = 512;
  const Tensor x = random(Shape{N, IN}, 1), w = random(Shape{OUT, IN}, 2),
               b = random(Shape{OUT}, 3);
  Tensor out(Shape{N, OUT});
  Context ctx;
  for (auto _ : state) ops::reference::linear_forward(x, w, b, out, ctx);
  state.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(2 * N * IN * OUT) / 1e9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_LinearReference)->Arg(128)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
