// SPDX-License-Identifier: MIT
// Small shapes at 1 and 2 threads: the layers of `attn train reverse` (B=32, T=12, C=64, FF=128,
// 4 heads) one at a time, forward + backward, and a whole training step. What issue 12 asks of
// them: a second thread must help (or at least never hurt).
//
//   build/release/bench/bench_small --benchmark_repetitions=5 --benchmark_report_aggregates_only
//
// The second argument of every case is the thread count; compare /1 with /2 of the same case.
#include <benchmark/benchmark.h>

#include "attn/attn.h"
#include "sequence_task.h"

namespace attn {
namespace {

constexpr int64_t kB = 32, kT = 12, kC = 64, kFF = 128, kNH = 4;

Tensor random(const Shape& shape, uint64_t seed) {
  Rng rng(seed);
  Tensor t(shape);
  for (auto& v : t.values()) v = static_cast<float>(rng.normal());
  return t;
}

void BM_LinearFwdBwd(benchmark::State& state) {
  const int64_t out = state.range(0);
  Context ctx(ContextOptions{.num_threads = static_cast<int>(state.range(1))});
  Rng rng(0);
  nn::Linear lin(kC, out, true, rng);
  const Tensor x = random(Shape{kB, kT, kC}, 1), dy = random(Shape{kB, kT, out}, 2);
  for (auto _ : state) {
    nn::Linear::Cache cache;
    benchmark::DoNotOptimize(lin.forward(x, &cache, ctx));
    benchmark::DoNotOptimize(lin.backward(dy, cache, ctx));
  }
}
BENCHMARK(BM_LinearFwdBwd)->ArgsProduct({{kC, kFF}, {1, 2}})->Unit(benchmark::kMicrosecond);

void BM_LayerNormFwdBwd(benchmark::State& state) {
  Context ctx(ContextOptions{.num_threads = static_cast<int>(state.range(0))});
  nn::LayerNorm ln(kC);
  const Tensor x = random(Shape{kB, kT, kC}, 1), dy = random(Shape{kB, kT, kC}, 2);
  for (auto _ : state) {
    nn::LayerNorm::Cache cache;
    benchmark::DoNotOptimize(ln.forward(x, &cache, ctx));
    benchmark::DoNotOptimize(ln.backward(dy, cache, ctx));
  }
}
BENCHMARK(BM_LayerNormFwdBwd)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

void BM_GeluFwdBwd(benchmark::State& state) {
  Context ctx(ContextOptions{.num_threads = static_cast<int>(state.range(0))});
  nn::Activation gelu(nn::ActivationKind::kGELU);
  const Tensor x = random(Shape{kB, kT, kFF}, 1), dy = random(Shape{kB, kT, kFF}, 2);
  for (auto _ : state) {
    nn::Activation::Cache cache;
    benchmark::DoNotOptimize(gelu.forward(x, &cache, ctx));
    benchmark::DoNotOptimize(gelu.backward(dy, cache, ctx));
  }
}
BENCHMARK(BM_GeluFwdBwd)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

void BM_MultiheadAttentionFwdBwd(benchmark::State& state) {
  Context ctx(ContextOptions{.num_threads = static_cast<int>(state.range(0))});
  Rng rng(0);
  nn::MultiheadAttention mha(kC, kNH, true, rng);
  const Tensor x = random(Shape{kB, kT, kC}, 1), dy = random(Shape{kB, kT, kC}, 2);
  for (auto _ : state) {
    nn::MultiheadAttention::Cache cache;
    benchmark::DoNotOptimize(mha.forward(x, x, x, nn::AttentionOptions{}, &cache, ctx));
    benchmark::DoNotOptimize(mha.backward(dy, cache, ctx));
  }
}
BENCHMARK(BM_MultiheadAttentionFwdBwd)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

void BM_AttentionFwdBwd(benchmark::State& state) {
  Context ctx(ContextOptions{.num_threads = static_cast<int>(state.range(0))});
  const Shape shape{kB, kNH, kT, kC / kNH};
  const Tensor q = random(shape, 1), k = random(shape, 2), v = random(shape, 3);
  for (auto _ : state) {
    const auto r = ops::attention(q, k, v, ops::AttentionOptions{}, ConstTensorView(), ctx);
    benchmark::DoNotOptimize(
        ops::attention_grad(q, k, v, r.out, r.lse, r.out, ops::AttentionOptions{}, {}, ctx));
  }
}
BENCHMARK(BM_AttentionFwdBwd)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

// One optimiser step of `attn train reverse` (its default model), batch drawn outside the timing.
void BM_TrainStep(benchmark::State& state) {
  Context ctx(ContextOptions{.num_threads = static_cast<int>(state.range(0))});
  examples::SequenceTaskConfig c;
  c.task = examples::SequenceTask::kReverse;
  Rng rng(0);
  examples::SequenceModel model(c, rng);
  train::AdamW optimizer(model, 0.9, 0.98, 1e-9, c.weight_decay);
  std::vector<int64_t> x, y;
  Rng data(1);
  examples::make_sequence_batch(c, data, c.batch, x, y);
  Tensor dlogits(Shape{c.batch * c.seq_len, c.vocab});
  for (auto _ : state) {
    model.zero_grad();
    examples::SequenceModel::Cache cache;
    const Tensor logits = model.forward(x, c.batch, c.seq_len, &cache, ctx);
    train::cross_entropy(logits.view(), y, dlogits.view());
    model.backward(dlogits.view(), cache, ctx);
    train::clip_grad_norm(model, c.clip, ctx);
    optimizer.step(1e-3, ctx);
  }
  state.counters["steps/s"] =
      benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_TrainStep)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace attn

BENCHMARK_MAIN();
