// SPDX-License-Identifier: MIT
// attn bench attention: time the fused kernel (and the reference for small N) and report GFLOP/s as
// a share of the peak FMA throughput the command measures itself, plus peak resident memory.
//
// Flop convention: 4·HS per unmasked score in the forward (2·HS for q·k, 2·HS for p·v), 10·HS in
// the backward (the five products of the minimal algorithm: q·k, dO·v, pᵀdO, dSᵀq, dS·k). Masked
// scores are not counted, so a window of ±w is credited with O(T·w) work. Our backward recomputes
// two products to stay deterministic, so its share of peak understates the raw arithmetic rate by
// up to 7/5. Memory: peak RSS covers the inputs, outputs and gradients the bench allocates plus the
// kernel's tiles. With --dtype both, the float and bf16 cases are alive together (they run in
// alternation), so both rows give the RSS of the two: compare RSS across separate --dtype f32 and
// --dtype bf16 runs (KV MiB is the storage of k and v itself).
//
// Time: "ms" is the median over --repeats rounds after a warm-up round, "best" the fastest round
// (on a shared machine other work only ever slows a round down); GFLOP/s and %peak are from the
// median. The fused variants of a length run in alternation within each round.
//
// --dtype bf16 stores q, k and v as bf16 (the same normal draws, rounded): the forward uses native
// bf16 products where ops::bf16_dot_products() (kernel "bf16-native"), else widens tiles to float
// ("bf16-widen"); "x f32" is the median over rounds of the float kernel's time over the bf16
// kernel's in the same round.
#include <algorithm>
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
                                       "; x f32 = fused f32 ms / bf16 ms, median over rounds\n")
            << std::left << std::setw(8) << "N" << std::setw(13) << "kernel" << std::setw(6)
            << "pass" << std::right << std::setw(12) << "ms" << std::setw(10) << "best ms"
            << std::setw(10) << "GFLOP/s" << std::setw(8) << "%peak" << std::setw(12)
            << "peakRSS MiB" << std::setw(9) << "KV MiB" << std::setw(8) << "x f32"
            << "\n";
}

// The inputs, outputs and calls of one variant at one length N. Held by pointer: the timing loop
// calls its passes in turn with those of the other variants.
struct Case {
  Variant variant;
  int64_t T = 0;
  double pairs = 0.0, kv_mib = 0.0;  // visible (query, key) pairs over batch and heads; k + v MiB
  ops::AttentionMask mask;
  double scale = 0.0;
  Tensor q, k, v, out, lse, dq, dk, dv;
  TensorBF16 qh, kh, vh;

  void forward(const Context& ctx) {
    if (variant.reference)
      ops::reference::attention_forward(q, k, v, mask, {}, scale, out, lse, {}, ctx);
    else if (variant.bf16)
      ops::attention_forward(ConstTensorViewBF16(qh.view()), kh.view(), vh.view(), mask, {}, scale,
                             out, lse, {}, ctx);
    else
      ops::attention_forward(q, k, v, mask, {}, scale, out, lse, {}, ctx);
  }
  // dO = O, the gradient of the loss ½‖O‖²: the backward reads dO and O and writes neither, so
  // one buffer serves both and the case needs 7 (not 8) B·NH·N·HS tensors (896 MiB at N = 65536).
  void backward(const Context& ctx) {
    const ConstTensorView dout = out;
    if (variant.reference)
      ops::reference::attention_backward(q, k, v, out, lse, dout, mask, {}, scale, dq, dk, dv, {},
                                         ctx);
    else if (variant.bf16)
      ops::attention_backward(ConstTensorViewBF16(qh.view()), kh.view(), vh.view(), out, lse, dout,
                              mask, {}, scale, dq, dk, dv, {}, ctx);
    else
      ops::attention_backward(q, k, v, out, lse, dout, mask, {}, scale, dq, dk, dv, {}, ctx);
  }
};

std::unique_ptr<Case> make_case(const BenchOptions& o, const ops::AttentionMask& mask,
                                const Variant& variant, int64_t N) {
  auto c = std::make_unique<Case>();
  c->variant = variant;
  Rng rng(1);  // every variant the same draws
  // Decoding: T queries at the last T positions of the N keys (a cache), aligned bottom-right.
  c->T = o.queries > 0 ? o.queries : N;
  c->mask = mask;
  if (c->T < N) c->mask.query_offset = N - c->T;
  const Shape q_shape{o.batch, o.heads, c->T, o.head_dim},
      kv_shape{o.batch, o.heads, N, o.head_dim};
  // bf16 storage: the same draws rounded, and no float copy (peak RSS counts bf16 q, k, v).
  if (variant.bf16) {
    c->qh = random_normal_bf16(q_shape, rng), c->kh = random_normal_bf16(kv_shape, rng);
    c->vh = random_normal_bf16(kv_shape, rng);
  } else {
    c->q = random_normal(q_shape, rng), c->k = random_normal(kv_shape, rng);
    c->v = random_normal(kv_shape, rng);
  }
  c->kv_mib = 2.0 * static_cast<double>(kv_shape.numel()) * (variant.bf16 ? 2.0 : 4.0) / 1048576.0;
  c->out = Tensor(q_shape), c->lse = Tensor(Shape{o.batch, o.heads, c->T});
  c->dq = Tensor(q_shape), c->dk = Tensor(kv_shape), c->dv = Tensor(kv_shape);
  c->scale = ops::default_attention_scale(o.head_dim);
  c->pairs = visible_pairs(c->mask, c->T, N) * static_cast<double>(o.batch * o.heads);
  return c;
}

// One pass of one variant, timed over the rounds: the median and the best round's ms, and for a
// bf16 variant the median over rounds of the float kernel's ms over this one's in the same round
// (0 otherwise).
struct PassTiming {
  std::string pass;
  double median_ms = 0.0, best_ms = 0.0, speedup = 0.0;
};

// Times one pass of every case, run in turn within each of `repeats` rounds after a warm-up round:
// on a shared machine the load of other work comes and goes over seconds, and running the variants
// in alternation puts it on all of them alike, so that their ratio is taken within a round.
std::vector<PassTiming> time_pass(const std::string& pass, int repeats,
                                  const std::vector<std::unique_ptr<Case>>& cases,
                                  const Context& ctx) {
  auto run = [&](Case& c) { pass == "fwd" ? c.forward(ctx) : c.backward(ctx); };
  for (const auto& c : cases) run(*c);  // warm-up
  std::vector<std::vector<double>> ms(cases.size());
  for (int r = 0; r < repeats; ++r)
    for (size_t i = 0; i < cases.size(); ++i) ms[i].push_back(wall_ms([&] { run(*cases[i]); }));
  const auto f32 = std::find_if(cases.begin(), cases.end(), [](const auto& c) {
    return !c->variant.bf16 && !c->variant.reference;
  });
  std::vector<PassTiming> timings;
  for (size_t i = 0; i < cases.size(); ++i) {
    PassTiming t{pass, median(ms[i]), *std::min_element(ms[i].begin(), ms[i].end()), 0.0};
    if (cases[i]->variant.bf16 && f32 != cases.end()) {
      const auto& base = ms[static_cast<size_t>(f32 - cases.begin())];
      std::vector<double> ratio;
      for (size_t r = 0; r < ms[i].size(); ++r) ratio.push_back(base[r] / ms[i][r]);
      t.speedup = median(ratio);
    }
    timings.push_back(t);
  }
  return timings;
}

// The rows of one case's passes, into `rows` and (without --json) the table.
void report_case(const BenchOptions& o, const Case& c, int64_t N,
                 const std::vector<const PassTiming*>& passes, double rss_mib, double peak,
                 int threads, nlohmann::json& rows) {
  const std::string kernel = c.variant.name();
  for (const PassTiming* t : passes) {
    const double per_pair = static_cast<double>(o.head_dim) * (t->pass == "fwd" ? 4.0 : 10.0);
    const double gflops = c.pairs * per_pair / (t->median_ms * 1e-3) / 1e9;
    rows.push_back({{"N", N},
                    {"T", c.T},
                    {"kernel", kernel},
                    {"dtype", c.variant.bf16 ? "bf16" : "f32"},
                    {"pass", t->pass},
                    {"ms", t->median_ms},
                    {"best_ms", t->best_ms},
                    {"gflops", gflops},
                    {"percent_of_peak", 100.0 * gflops / peak},
                    {"peak_rss_mib", rss_mib},
                    {"kv_mib", c.kv_mib},
                    {"threads", threads},
                    {"peak_gflops", peak},
                    {"simd", ops::simd_target()}});
    if (t->speedup > 0.0) rows.back()["speedup_vs_f32"] = t->speedup;
    if (!o.json)
      std::cout << std::left << std::setw(8) << N << std::setw(13) << kernel << std::setw(6)
                << t->pass << std::right << std::setprecision(2) << std::setw(12) << t->median_ms
                << std::setw(10) << t->best_ms << std::setprecision(1) << std::setw(10) << gflops
                << std::setw(8) << 100.0 * gflops / peak << std::setw(12) << rss_mib << std::setw(9)
                << c.kv_mib << std::setw(8)
                << (t->speedup > 0.0 ? std::to_string(t->speedup).substr(0, 4) : std::string("-"))
                << "\n"
                << std::flush;
  }
}

// Times and reports the cases of one length N: the fused variants in alternation (time_pass), then
// the reference alone (one run after a warm-up; it is there to show the gap, not to be compared
// closely).
void bench_length(const BenchOptions& o, const ops::AttentionMask& mask, int64_t N, double peak,
                  const Context& ctx, nlohmann::json& rows) {
  const std::vector<Variant> variants = variants_of(o.dtype);
  for (const bool reference : {false, true}) {
    if (reference && N > o.reference_max) continue;
    reset_peak_rss();
    std::vector<std::unique_ptr<Case>> cases;
    for (const Variant& variant : variants)
      if (variant.reference == reference) cases.push_back(make_case(o, mask, variant, N));
    if (cases.empty()) continue;
    const int repeats = reference ? 1 : o.repeats;
    std::vector<std::vector<PassTiming>> by_pass{time_pass("fwd", repeats, cases, ctx)};
    if (o.backward) by_pass.push_back(time_pass("bwd", repeats, cases, ctx));
    const double rss = peak_rss_mib();
    for (size_t c = 0; c < cases.size(); ++c) {
      std::vector<const PassTiming*> passes;
      for (const auto& timings : by_pass) passes.push_back(&timings[c]);
      report_case(o, *cases[c], N, passes, rss, peak, ctx.num_threads(), rows);
    }
  }
}

void run_bench(const BenchOptions& o) {
  Context ctx(ContextOptions{.num_threads = checked_threads("bench attention", o.threads)});
  check_counts({{"--heads", o.heads}, {"--head-dim", o.head_dim}, {"--batch", o.batch}});
  const ops::AttentionMask mask = o.mask.build(o.heads, o.batch);
  if (o.repeats < 1) usage_fail("--repeats", "must be >= 1, got ", o.repeats);
  (void)variants_of(o.dtype);        // checks --dtype before the peak is measured
  apply_simd_target(o.simd_target);  // the peak below is measured on that target too
  const double peak = bench::measure_peak_gflops(ctx);
  nlohmann::json rows = nlohmann::json::array();
  if (!o.json) print_header(o, ctx, peak);
  for (int64_t N : parse_int_list("--seq", o.seq)) {
    if (N < 1) usage_fail("--seq", "lengths must be >= 1");
    if (o.queries > N)
      usage_fail("--queries", "must be at most each --seq length, got ", o.queries, " > ", N);
    bench_length(o, mask, N, peak, ctx, rows);
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
