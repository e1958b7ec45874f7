// SPDX-License-Identifier: MIT
// attn's fused attention forward beside ggml's ggml_flash_attn_ext on the same inputs, in one
// process, on the same threads: ms of each, their ratio, attn's share of the measured FMA peak, and
// the largest difference between the two outputs. ggml runs with f32 K and V and f32 precision
// (ggml_flash_attn_ext_set_prec), its mask a dense f16 tensor of -inf and 0 (ggml has no mask
// parameters), so a window costs it the full N × N; above --ggml-max-mask-mib it is not run.
//
// ggml is not a dependency of attn: this program is built only when CMake is configured with
// -DATTN_COMPARE_GGML=ON and CMAKE_PREFIX_PATH pointing at a ggml installed from its own source
// (docs/kernels.md says which version was measured).
//
//   build/release/bench/compare_ggml --seq 1024,4096 [--window 32,32] [--threads 2] [--repeats 5]
//                                    [--simd-target AVX2]
#include <ggml-cpu.h>
#include <ggml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "attn/attn.h"
#include "peak.h"
#include "timing.h"

namespace {

using attn::Shape;
using attn::Tensor;

using attn::bench::median;
using attn::bench::wall_ms;

Tensor random(const Shape& shape, attn::Rng& rng) {
  Tensor t(shape);
  for (auto& x : t.values()) x = static_cast<float>(rng.normal());
  return t;
}

struct Options {
  std::string seq = "1024,4096";
  int64_t heads = 8, head_dim = 64;
  int left = -1, right = -1;
  bool causal = false;
  int threads = 2, repeats = 5;
  double ggml_max_mask_mib = 2048;
};

std::vector<int64_t> parse_list(const std::string& text) {
  std::vector<int64_t> v;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t comma = text.find(',', pos);
    v.push_back(std::stoll(text.substr(pos, comma - pos)));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return v;
}

// ggml's output [HSV, NH, T] against attn's (1, NH, T, HSV): the largest absolute difference.
double max_difference(const Tensor& ours, const ggml_tensor* theirs, int64_t NH, int64_t T,
                      int64_t HSV) {
  const auto* g = static_cast<const float*>(theirs->data);
  double worst = 0.0;
  for (int64_t h = 0; h < NH; ++h)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < HSV; ++c)
        worst = std::max(worst, std::abs(static_cast<double>(ours(0, h, t, c)) -
                                         static_cast<double>(g[(t * NH + h) * HSV + c])));
  return worst;
}

void run_case(const Options& o, int64_t N, double peak) {
  const int64_t NH = o.heads, HS = o.head_dim;
  attn::Rng rng(1);
  const Shape shape{1, NH, N, HS};
  const Tensor q = random(shape, rng), k = random(shape, rng), v = random(shape, rng);
  Tensor out(shape), lse(Shape{1, NH, N});
  attn::ops::AttentionMask mask;
  mask.causal = o.causal;
  mask.window_left = o.left, mask.window_right = o.right;
  const double scale = attn::ops::default_attention_scale(HS);
  attn::Context ctx(attn::ContextOptions{.num_threads = o.threads});
  auto run_attn = [&] {
    attn::ops::attention_forward(q, k, v, mask, {}, scale, out, lse, {}, ctx);
  };
  double pairs = 0.0;
  for (int64_t t = 0; t < N; ++t) {
    const auto [lo, hi] = mask.key_interval(0, t, N);
    pairs += static_cast<double>(std::max<int64_t>(0, hi - lo + 1));
  }

  // ggml: q, k, v in its ne order [HS, N, NH] are the same bytes as attn's (1, NH, N, HS).
  const bool structured = mask.has_structure();
  const double mask_mib =
      structured ? static_cast<double>(N) * static_cast<double>(N) * 2 / 1048576 : 0;
  ggml_context* g = nullptr;
  ggml_cgraph* graph = nullptr;
  ggml_tensor* res = nullptr;
  if (mask_mib <= o.ggml_max_mask_mib) {
    const size_t bytes = static_cast<size_t>(5 * N * NH * HS) * sizeof(float) +
                         static_cast<size_t>(mask_mib * 1048576) + (size_t{64} << 20);
    g = ggml_init(ggml_init_params{bytes, nullptr, false});
    ggml_tensor* gq = ggml_new_tensor_3d(g, GGML_TYPE_F32, HS, N, NH);
    ggml_tensor* gk = ggml_new_tensor_3d(g, GGML_TYPE_F32, HS, N, NH);
    ggml_tensor* gv = ggml_new_tensor_3d(g, GGML_TYPE_F32, HS, N, NH);
    std::copy(q.data(), q.data() + q.numel(), static_cast<float*>(gq->data));
    std::copy(k.data(), k.data() + k.numel(), static_cast<float*>(gk->data));
    std::copy(v.data(), v.data() + v.numel(), static_cast<float*>(gv->data));
    ggml_tensor* gmask = nullptr;
    if (structured) {
      gmask = ggml_new_tensor_2d(g, GGML_TYPE_F16, N, N);
      auto* m = static_cast<ggml_fp16_t*>(gmask->data);
      const ggml_fp16_t zero = ggml_fp32_to_fp16(0.0f), hidden = ggml_fp32_to_fp16(-INFINITY);
      for (int64_t t = 0; t < N; ++t)
        for (int64_t s = 0; s < N; ++s) m[t * N + s] = mask.key_visible(0, t, s) ? zero : hidden;
    }
    res = ggml_flash_attn_ext(g, gq, gk, gv, gmask, static_cast<float>(scale), 0.0f, 0.0f);
    ggml_flash_attn_ext_set_prec(res, GGML_PREC_F32);
    graph = ggml_new_graph(g);
    ggml_build_forward_expand(graph, res);
  }
  // The two alternate, run by run, so that a busy moment of a shared machine hits both.
  std::vector<double> attn_runs, ggml_runs;
  run_attn();
  if (g) ggml_graph_compute_with_ctx(g, graph, o.threads);
  for (int r = 0; r < o.repeats; ++r) {
    attn_runs.push_back(wall_ms(run_attn));
    if (g) ggml_runs.push_back(wall_ms([&] { ggml_graph_compute_with_ctx(g, graph, o.threads); }));
  }
  const double attn_ms = median(attn_runs);
  const double ggml_ms = g ? median(ggml_runs) : std::nan("");
  const double diff = g ? max_difference(out, res, NH, N, HS) : std::nan("");
  if (g) ggml_free(g);
  const double gflops = pairs * static_cast<double>(NH * HS) * 4.0 / (attn_ms * 1e-3) / 1e9;
  std::printf("%-8lld %10.2f %7.1f %10.2f %11.3f %12.2e\n", static_cast<long long>(N), attn_ms,
              100.0 * gflops / peak, ggml_ms, attn_ms / ggml_ms, diff);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string window;
  CLI::App app{"attn's fused forward beside ggml's flash_attn_ext (f32), same data and threads"};
  app.add_option("--seq", o.seq, "Sequence lengths N (T = S = N)")->capture_default_str();
  app.add_option("--heads", o.heads, "Heads NH")->capture_default_str();
  app.add_option("--head-dim", o.head_dim, "Head size HS")->capture_default_str();
  app.add_option("--window", window, "LEFT,RIGHT: truncated attention (ggml: a dense mask)");
  app.add_flag("--causal", o.causal, "Causal mask");
  app.add_option("--threads", o.threads, "Threads for both")->capture_default_str();
  app.add_option("--repeats", o.repeats, "Timed runs per case (median)")->capture_default_str();
  std::string simd_target;
  app.add_option("--simd-target", simd_target,
                 "Force attn's SIMD target lower (AVX2, SSE4, ...; ggml runs as it was built)");
  app.add_option("--ggml-max-mask-mib", o.ggml_max_mask_mib,
                 "Skip ggml when its dense f16 mask would exceed this")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!window.empty()) {
    const auto w = parse_list(window);
    o.left = static_cast<int>(w[0]);
    o.right = static_cast<int>(w.size() > 1 ? w[1] : w[0]);
  }
  try {
    attn::ops::set_simd_target(simd_target);
  } catch (const attn::Error& e) {
    std::fprintf(stderr, "compare_ggml: %s\n", e.what());
    return 2;
  }
  attn::Context ctx(attn::ContextOptions{.num_threads = o.threads});
  const double peak = attn::bench::measure_peak_gflops(ctx);
  std::printf(
      "attn vs ggml %s: %d threads, SIMD %s, measured FMA peak %.1f GFLOP/s; NH=%lld HS=%lld%s%s\n",
      ggml_version(), o.threads, attn::ops::simd_target(), peak, static_cast<long long>(o.heads),
      static_cast<long long>(o.head_dim), o.causal ? " causal" : "",
      window.empty() ? "" : (" window " + window).c_str());
  std::printf("%-8s %10s %7s %10s %11s %12s\n", "N", "attn ms", "%peak", "ggml ms", "attn/ggml",
              "max |diff|");
  for (int64_t N : parse_list(o.seq)) run_case(o, N, peak);
  return 0;
}
