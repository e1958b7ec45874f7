// SPDX-License-Identifier: MIT
// attn bench attention: time the fused kernel (and the reference for small N) and report GFLOP/s as
// a share of the peak FMA throughput the command measures itself, plus peak resident memory.
//
// Flop convention: 4·HS per unmasked score in the forward (2·HS for q·k, 2·HS for p·v), 10·HS in
// the backward (the five products of the minimal algorithm: q·k, dO·v, pᵀdO, dSᵀq, dS·k). Masked
// scores are not counted, so a window of ±w is credited with O(T·w) work. Our backward recomputes
// two products to stay deterministic, so its share of peak understates the raw arithmetic rate by
// up to 7/5. Memory: peak RSS covers the inputs, outputs and gradients the bench allocates plus the
// kernel's tiles. With --dtype both, the bf16 row's RSS also holds the float row's buffers, which
// the tensor buffer pool keeps for reuse: compare RSS across separate --dtype f32 and --dtype bf16
// runs (KV MiB is the storage of k and v itself).
//
// --dtype bf16 stores q, k and v as bf16 (the same normal draws, rounded): the forward uses native
// bf16 products where ops::bf16_dot_products() (kernel "bf16-native"), else widens tiles to float
// ("bf16-widen"); "x f32" is the float row's time over the bf16 row's, in the same process.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <utility>

#include "attn/attn.h"
#include "bench_util.h"
#include "commands.h"
#include "mask_flags.h"
#include "peak.h"

namespace attn::cli {

namespace {

struct BenchOptions {
  std::string seq = "1024,4096";
  int64_t heads = 8, head_dim = 64, batch = 1;
  int64_t queries = 0;  // T; 0: T = N
  MaskFlags mask;
  bool backward = false, json = false;
  int threads = 0, repeats = 5;
  int64_t reference_max = 1024;
  std::string simd_target;  // "": the best this machine runs
  std::string dtype = "f32";  // f32, bf16 or both (q, k, v storage)
};

// One timed kernel of a case: the fused kernel on float or bf16 inputs, or the reference.
struct Variant {
  bool bf16, reference;
  std::string name() const {
    if (reference) return "reference";
    if (!bf16) return "fused";
    return ops::bf16_dot_products() ? "bf16-native" : "bf16-widen";
  }
};

std::vector<Variant> variants_of(const std::string& dtype) {
  if (dtype == "f32") return {{false, false}, {false, true}};
  if (dtype == "bf16") return {{true, false}};
  if (dtype == "both") return {{false, false}, {true, false}, {false, true}};
  usage_fail("--dtype", "must be f32, bf16 or both, got '", dtype, "'");
}

// Unmasked (query, key) pairs of batch entry 0, counted per query in O(T) (the bench sets no
// dilation).
double visible_pairs(const ops::AttentionMask& m, int64_t T, int64_t S) {
  double total = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    const auto [lo, hi] = m.key_interval(0, t, S);
    total += static_cast<double>(std::max<int64_t>(0, hi - lo + 1));
  }
  return total;
}

void print_header(const BenchOptions& o, const Context& ctx, double peak) {
  std::cout << "machine: " << ctx.num_threads() << " threads, SIMD " << ops::simd_target()
            << ", measured fp32 FMA peak " << std::fixed << std::setprecision(1) << peak
            << " GFLOP/s\n"
            << "B=" << o.batch << " NH=" << o.heads << " HS=" << o.head_dim
            << (o.queries > 0 ? " T=" + std::to_string(o.queries) + " (S = N)" : std::string())
            << " mask:" << o.mask.describe()
            << "; flops: 4*HS (fwd), 10*HS (bwd) per unmasked score\n"
            << (o.dtype == "f32" ? ""
                                 : std::string("bf16 dot products: ") +
                                       (ops::bf16_dot_products() ? "native" : "no (widened)") +
                                       "; x f32 = fused f32 ms / bf16 ms\n")
            << std::left << std::setw(8) << "N" << std::setw(13) << "kernel" << std::setw(6)
            << "pass" << std::right << std::setw(12) << "ms" << std::setw(10) << "GFLOP/s"
            << std::setw(8) << "%peak" << std::setw(12) << "peakRSS MiB" << std::setw(9) << "KV MiB"
            << std::setw(8) << "x f32"
            << "\n";
}

// One variant at one length N, timed: the median ms of each pass, the visible (query, key) pairs
// over the batch and heads, and the memory.
struct Timing {
  int64_t T = 0;
  std::vector<std::pair<std::string, double>> passes;
  double pairs = 0.0, kv_mib = 0.0, rss_mib = 0.0;
};

Timing time_variant(const BenchOptions& o, const ops::AttentionMask& mask, const Variant& variant,
                    int64_t N, const Context& ctx) {
  const bool reference = variant.reference;
  reset_peak_rss();
  Rng rng(1);
  Timing t;
  // Decoding: T queries at the last T positions of the N keys (a cache), aligned bottom-right.
  t.T = o.queries > 0 ? o.queries : N;
  ops::AttentionMask m = mask;
  if (t.T < N) m.query_offset = N - t.T;
  const Shape q_shape{o.batch, o.heads, t.T, o.head_dim}, kv_shape{o.batch, o.heads, N, o.head_dim};
  // bf16 storage: the same draws rounded, and no float copy (peak RSS counts bf16 q, k, v).
  Tensor q, k, v;
  TensorBF16 qh, kh, vh;
  if (variant.bf16) {
    qh = random_normal_bf16(q_shape, rng), kh = random_normal_bf16(kv_shape, rng);
    vh = random_normal_bf16(kv_shape, rng);
  } else {
    q = random_normal(q_shape, rng), k = random_normal(kv_shape, rng);
    v = random_normal(kv_shape, rng);
  }
  t.kv_mib = 2.0 * static_cast<double>(kv_shape.numel()) * (variant.bf16 ? 2.0 : 4.0) / 1048576.0;
  Tensor out(q_shape), lse(Shape{o.batch, o.heads, t.T}), dq(q_shape), dk(kv_shape), dv(kv_shape);
  // dO = O, the gradient of the loss ½‖O‖²: the backward reads dO and O and writes neither, so
  // one buffer serves both and the case needs 7 (not 8) B·NH·N·HS tensors (896 MiB at N = 65536).
  const ConstTensorView dout = out;
  const double scale = ops::default_attention_scale(o.head_dim);
  t.pairs = visible_pairs(m, t.T, N) * static_cast<double>(o.batch * o.heads);
  auto forward = [&] {
    if (reference) {
      ops::reference::attention_forward(q, k, v, m, {}, scale, out, lse, {}, ctx);
    } else if (variant.bf16) {
      ops::attention_forward(ConstTensorViewBF16(qh.view()), kh.view(), vh.view(), m, {}, scale,
                             out, lse, {}, ctx);
    } else {
      ops::attention_forward(q, k, v, m, {}, scale, out, lse, {}, ctx);
    }
  };
  auto backward = [&] {
    if (reference) {
      ops::reference::attention_backward(q, k, v, out, lse, dout, m, {}, scale, dq, dk, dv, {},
                                         ctx);
    } else if (variant.bf16) {
      ops::attention_backward(ConstTensorViewBF16(qh.view()), kh.view(), vh.view(), out, lse, dout,
                              m, {}, scale, dq, dk, dv, {}, ctx);
    } else {
      ops::attention_backward(q, k, v, out, lse, dout, m, {}, scale, dq, dk, dv, {}, ctx);
    }
  };
  const int repeats = reference ? 1 : o.repeats;
  t.passes = {{"fwd", median_ms(repeats, forward)}};
  if (o.backward) t.passes.emplace_back("bwd", median_ms(repeats, backward));
  t.rss_mib = peak_rss_mib();
  return t;
}

// A row per pass of `t`, into `rows` and (without --json) the table. f32_ms holds the float fused
// kernel's fwd / bwd ms at this N, for the bf16 rows' ratio.
void report_variant(const BenchOptions& o, const Variant& variant, int64_t N, const Timing& t,
                    double peak, int threads, double f32_ms[2], nlohmann::json& rows) {
  for (const auto& [pass, ms] : t.passes) {
    const double flops = t.pairs * static_cast<double>(o.head_dim) * (pass == "fwd" ? 4.0 : 10.0);
    const double gflops = flops / (ms * 1e-3) / 1e9;
    const std::string kernel = variant.name();
    double& f32 = f32_ms[pass == "fwd" ? 0 : 1];
    if (!variant.reference && !variant.bf16) f32 = ms;
    const double speedup = variant.bf16 && f32 > 0.0 ? f32 / ms : 0.0;
    rows.push_back({{"N", N},
                    {"T", t.T},
                    {"kernel", kernel},
                    {"dtype", variant.bf16 ? "bf16" : "f32"},
                    {"pass", pass},
                    {"ms", ms},
                    {"gflops", gflops},
                    {"percent_of_peak", 100.0 * gflops / peak},
                    {"peak_rss_mib", t.rss_mib},
                    {"kv_mib", t.kv_mib},
                    {"threads", threads},
                    {"peak_gflops", peak},
                    {"simd", ops::simd_target()}});
    if (speedup > 0.0) rows.back()["speedup_vs_f32"] = speedup;
    if (!o.json)
      std::cout << std::left << std::setw(8) << N << std::setw(13) << kernel << std::setw(6) << pass
                << std::right << std::setprecision(2) << std::setw(12) << ms << std::setprecision(1)
                << std::setw(10) << gflops << std::setw(8) << 100.0 * gflops / peak << std::setw(12)
                << t.rss_mib << std::setw(9) << t.kv_mib << std::setw(8)
                << (speedup > 0.0 ? std::to_string(speedup).substr(0, 4) : std::string("-")) << "\n"
                << std::flush;
  }
}

void run_bench(const BenchOptions& o) {
  Context ctx(ContextOptions{.num_threads = checked_threads("bench attention", o.threads)});
  check_counts({{"--heads", o.heads}, {"--head-dim", o.head_dim}, {"--batch", o.batch}});
  const ops::AttentionMask mask = o.mask.build(o.heads, o.batch);
  if (o.repeats < 1) usage_fail("--repeats", "must be >= 1, got ", o.repeats);
  const std::vector<Variant> variants = variants_of(o.dtype);
  apply_simd_target(o.simd_target);  // the peak below is measured on that target too
  const double peak = bench::measure_peak_gflops(ctx);
  nlohmann::json rows = nlohmann::json::array();
  if (!o.json) print_header(o, ctx, peak);
  for (int64_t N : parse_int_list("--seq", o.seq)) {
    if (N < 1) usage_fail("--seq", "lengths must be >= 1");
    if (o.queries > N)
      usage_fail("--queries", "must be at most each --seq length, got ", o.queries, " > ", N);
    double f32_ms[2] = {0.0, 0.0};  // fwd, bwd of the float fused kernel, for the bf16 ratio
    for (const Variant& variant : variants) {
      if (variant.reference && N > o.reference_max) continue;
      const Timing t = time_variant(o, mask, variant, N, ctx);
      report_variant(o, variant, N, t, peak, ctx.num_threads(), f32_ms, rows);
    }
  }
  if (o.json) std::cout << rows.dump(1) << "\n";
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* bench =
      app.add_subcommand("bench", "Benchmarks (median of repeated runs after a warm-up)");
  bench->require_subcommand(1);
  CLI::App* sub = bench->add_subcommand(
      "attention", "Fused attention kernel: ms, GFLOP/s, % of measured peak, peak RSS");
  sub->add_option("--seq", o->seq, "Sequence lengths N (T = S = N)")->capture_default_str();
  sub->add_option("--queries", o->queries,
                  "Queries T < N against the N keys (decoding against a cache: the last T "
                  "positions, causal and windows aligned bottom-right); default T = N")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--heads", o->heads, "Heads NH")->capture_default_str();
  sub->add_option("--head-dim", o->head_dim, "Head size HS")->capture_default_str();
  sub->add_option("--batch", o->batch, "Batch B")->capture_default_str();
  // Work is counted per query from the key interval, which ignores dilation: no --dilation here.
  add_mask_flags(sub, o->mask, kCausalFlag | kWindowFlag | kChunkFlag | kAlibiFlag);
  sub->add_option("--threads", o->threads, "Threads (0 = all)")->capture_default_str();
  add_simd_target_option(sub, o->simd_target);
  sub->add_option("--dtype", o->dtype,
                  "Storage of q, k, v: f32, bf16 (native bf16 products where the CPU has them, "
                  "else widened to float) or both (f32 and bf16 in one run, with the ratio)")
      ->capture_default_str();
  sub->add_flag("--backward", o->backward, "Also time the backward");
  sub->add_flag("--json", o->json, "Print JSON rows instead of a table");
  sub->add_option("--repeats", o->repeats, "Timed runs per case")->capture_default_str();
  sub->add_option("--reference-max", o->reference_max,
                  "Largest N for which the reference row is printed")
      ->capture_default_str();
  sub->callback([o] { run_bench(*o); });
  add_bench_sequence_models_command(bench);
  add_bench_images_command(bench);
  add_bench_speech_command(bench);
}

}  // namespace attn::cli
