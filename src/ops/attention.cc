// SPDX-License-Identifier: MIT
// Fused attention on the CPU: the FlashAttention-2 scheme (tiles of queries × tiles of keys, online
// softmax, lse kept for the backward; the T×S matrix is never materialised), tested against
// attention_reference.cc.
//
// Layout trick: scores are computed transposed, St[key][query], with queries along the vector
// lanes. Then the softmax statistics (max, sum, rescale) of a query block are plain vector
// operations with no horizontal reductions, Q is packed once per query block (Qᵀ), and K, V, dO
// rows are read in place (any row stride; unit stride along the head dimension).
//
// Masks as intervals: every structural mask kind (causal, window, chunk, key length) leaves each
// query one contiguous interval [lo, hi] of keys; dilation splits queries and keys into residue
// classes p ≡ s (mod dilation) inside which the interval rule holds for compressed indices. So a
// query block visits only key blocks that intersect its intervals (windows cost O(T·w)), blocks
// fully inside every interval skip the element mask, and interval sampling gathers only the keys it
// uses.
//
// Determinism: every task (forward: head × batch × class × query block; backward pass 1: batch × kv
// head × class × key block for dK, dV; pass 2: query blocks for dQ and dbias) owns its outputs,
// with a fixed order inside; no atomics, so results are bitwise identical for any thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attn/ops/attention.h"
#include "core/parallel.h"
#include "ops/internal/attention_checks.h"
#include "ops/internal/attention_kernels.h"
#include "ops/internal/attention_tiles.h"

namespace attn::ops {

namespace {

using namespace tiles;  // NOLINT(google-build-using-namespace): this file's own building blocks

// One online-softmax step and its P·V product for the columns cr and the keys [a, a + n) of a tile
// whose scores are in St (rows from key j0, bq apart): acc[i][c] = alpha_i · acc[i][c] + Σ_r
// P[r][i] · v[r][c].
void softmax_and_values(const Plan& plan, const QueryBlock& qb, const HeadViews& hv,
                        const Scratch& sc, int64_t j0, int64_t a, int64_t n, ColumnRange cr,
                        bool masked, const float* tile_max, k::LinePrefetcher* prefetch) {
  const int64_t step = plan.step, bq = plan.bq, c0 = cr.c0, hsv = plan.d.HSV;
  float* P = sc.St + (a - j0) * bq + c0;
  k::online_softmax_tile(P, tile_rows(qb, step, a, n), columns(qb, bq, cr), masked, hv.slope,
                         tile_max ? tile_max + c0 : nullptr, sc.m + c0, sc.l + c0, sc.alpha + c0);
  for (int64_t i = c0; i < std::min(cr.c1, qb.nq); ++i)
    if (sc.alpha[i] != 1.0f) k::scale_row(sc.acc + i * hsv, hsv, sc.alpha[i]);
  const float* values = hv.v + (qb.s0 + step * a) * hv.v_rs;
  if (masked && !rows_finite(values, n, hsv, step * hv.v_rs)) {
    add_visible_per_query(qb, c0, cr.c1, a, n, sc.St + (a - j0) * bq, bq, values, step * hv.v_rs,
                          hsv, sc.acc);
    return;
  }
  k::gemm_bcast(cr.width(), hsv, n, P, 1, bq, values, step * hv.v_rs, sc.acc + c0 * hsv, hsv, true,
                prefetch);
}

// Forward tasks (and those of the probabilities pass) are (head, query block) pairs, head-major: a
// worker's consecutive tasks are consecutive blocks of one head, so the keys and values they share
// stay in cache (and windows stream through them in order).
struct ForwardTask {
  const QueryBlock& qb;
  int64_t h;
};
int64_t forward_task_count(const Plan& plan) {
  return static_cast<int64_t>(plan.blocks.size()) * plan.d.NH;
}
ForwardTask forward_task(const Plan& plan, int64_t task) {
  const int64_t n_blocks = static_cast<int64_t>(plan.blocks.size());
  return {plan.blocks[static_cast<size_t>(task % n_blocks)], task / n_blocks};
}

// Output size from which forward writes out with non-temporal stores: well beyond the L2 caches (2
// × 2 MiB here), so the rows would be evicted before anyone reads them, while reading each line for
// ownership before overwriting it would cost as much memory traffic as writing it. Measured on a
// window ±32 at N = 16384 (32 MiB out): 10% faster; at N = 4096 (8 MiB) it made no difference.
constexpr int64_t kStreamingOutputBytes = int64_t{16} << 20;

// The work of a forward task in multiply-adds (score and P·V products over the keys each column
// group sees).
double forward_block_fmas(const Plan& plan, const QueryBlock& qb) {
  double keys = 0.0;
  for (size_t g = 0; g < qb.group_lo.size(); ++g)
    if (qb.group_lo[g] <= qb.group_hi[g])
      keys += static_cast<double>(qb.group_hi[g] - qb.group_lo[g] + 1);
  return keys * static_cast<double>(kColumnGroup * (plan.d.HS + plan.d.HSV));
}

// Adds to `prefetch` the rows a forward task on block qb will read first from memory: its queries,
// and the keys and values from key index `from` on (the earlier ones the previous task already
// brought in).
void prefetch_rows_of(const Plan& plan, const QueryBlock& qb, const HeadViews& hv, int64_t from,
                      k::LinePrefetcher& prefetch) {
  if (qb.jmin > qb.jmax) return;
  const int64_t step = plan.step, j = std::max(from, qb.jmin), n = qb.jmax + 1 - j;
  prefetch.add(hv.q + qb.t0 * hv.q_rs, qb.nq, plan.d.HS, step * hv.q_rs);
  prefetch.add(hv.k + (qb.s0 + step * j) * hv.k_rs, n, plan.d.HS, step * hv.k_rs);
  prefetch.add(hv.v + (qb.s0 + step * j) * hv.v_rs, n, plan.d.HSV, step * hv.v_rs);
}

void forward_block(const Plan& plan, const QueryBlock& qb, const HeadViews& hv, double scale,
                   const Scratch& sc, float* out, int64_t out_rs, float* lse, int64_t lse_s,
                   bool stream_out, k::LinePrefetcher* prefetch) {
  const AttentionDims& d = plan.d;
  const int64_t step = plan.step, bq = plan.bq;
  std::fill(sc.acc, sc.acc + bq * d.HSV, 0.0f);
  std::fill(sc.m, sc.m + bq, kNegInf);
  std::fill(sc.l, sc.l + bq, 0.0f);
  if (qb.jmin <= qb.jmax) {
    pack_transposed(hv.q, hv.q_rs, qb, step, bq, d.HS, static_cast<float>(scale * kLog2e), sc.qt);
    for (int64_t j0 = qb.jmin; j0 <= qb.jmax; j0 += plan.bk) {
      const int64_t nk = std::min(plan.bk, qb.jmax + 1 - j0);
      const ColumnRange cr = visible_columns(qb, j0, nk);
      if (cr.width() == 0) continue;
      if (tile_is_whole(qb, j0, nk, cr)) {
        const bool masked = !block_fully_visible(qb, j0, nk, cr);
        // Scores the softmax takes as they are: their maxima come out of the score product's
        // registers.
        float* tile_max = !masked && hv.slope == 0.0f && !hv.bias ? sc.tile_max : nullptr;
        score_tile(hv, qb, plan, sc.qt, j0, nk, cr, sc.St, tile_max, prefetch);
        softmax_and_values(plan, qb, hv, sc, j0, j0, nk, cr, masked, tile_max, prefetch);
        continue;
      }
      // Band-following: scores in chunks of kColumnGroup keys, each against the column groups that
      // see it; then softmax and P·V per column group over just the keys it sees.
      for (int64_t r0 = 0; r0 < nk; r0 += kColumnGroup) {
        const int64_t rn = std::min(kColumnGroup, nk - r0);
        const ColumnRange chunk_cols = visible_columns(qb, j0 + r0, rn);
        if (chunk_cols.width() > 0)
          score_tile(hv, qb, plan, sc.qt, j0 + r0, rn, chunk_cols, sc.St + r0 * bq, nullptr,
                     prefetch);
      }
      for (int64_t c = cr.c0; c < cr.c1; c += kColumnGroup) {
        const auto [a, b] = group_rows(qb, static_cast<size_t>(c / kColumnGroup), j0, nk);
        if (a > b) continue;
        const ColumnRange group{c, c + kColumnGroup};
        softmax_and_values(plan, qb, hv, sc, j0, a, b - a + 1, group,
                           !block_fully_visible(qb, a, b - a + 1, group), nullptr, prefetch);
      }
    }
  }
  for (int64_t i = 0; i < qb.nq; ++i) {
    const int64_t t = qb.t0 + step * i;
    // l = 0: no visible key (or every visible score -inf), output 0 and lse -inf. A NaN l (a NaN or
    // +inf score) stays NaN in both.
    const float l = sc.l[i];
    sc.alpha[i] = l == 0.0f ? 0.0f : 1.0f / l;
    const double lse_log2 = static_cast<double>(sc.m[i]) + std::log2(static_cast<double>(l));
    lse[t * lse_s] = l == 0.0f ? kNegInf : static_cast<float>(kLn2 * lse_log2);
  }
  k::store_scaled_rows(sc.acc, qb.nq, d.HSV, sc.alpha, out + qb.t0 * out_rs, step * out_rs,
                       stream_out);
}

void probabilities_pass(const Plan& plan, ConstTensorView q, ConstTensorView kk, ConstTensorView v,
                        const AttentionMask& mask, ConstTensorView bias, double scale,
                        ConstTensorView lse, TensorView probs, const Context& ctx) {
  fill(probs, 0.0f);
  internal::parallel_for(ctx, forward_task_count(plan), [&](int64_t task, int worker) {
    const auto [qb, h] = forward_task(plan, task);
    if (qb.jmin > qb.jmax) return;
    const HeadViews hv = head_views(q, kk, v, mask, bias, plan.d, qb.b, h);
    const Scratch sc = forward_scratch(ctx, worker, plan);
    pack_transposed(hv.q, hv.q_rs, qb, plan.step, plan.bq, plan.d.HS,
                    static_cast<float>(scale * kLog2e), sc.qt);
    for (int64_t i = 0; i < plan.bq; ++i)
      sc.m[i] = i < qb.nq ? static_cast<float>(kLog2e) * lse(qb.b, h, qb.t0 + plan.step * i) : 0.0f;
    for (int64_t j0 = qb.jmin; j0 <= qb.jmax; j0 += plan.bk) {
      const int64_t nk = std::min(plan.bk, qb.jmax + 1 - j0);
      score_tile(hv, qb, plan, sc.qt, j0, nk, all_columns(plan), sc.St);
      k::probs_tile(sc.St, tile_rows(qb, plan.step, j0, nk),
                    columns(qb, plan.bq, all_columns(plan)), true, hv.slope, sc.m);
      for (int64_t r = 0; r < nk; ++r)
        for (int64_t i = 0; i < qb.nq; ++i)
          probs(qb.b, h, qb.t0 + plan.step * i, qb.s0 + plan.step * (j0 + r)) =
              sc.St[r * plan.bq + i];
    }
  });
}
}  // namespace

void attention_forward(ConstTensorView q, ConstTensorView kk, ConstTensorView v,
                       const AttentionMask& mask, ConstTensorView bias, double scale,
                       TensorView out, TensorView lse, TensorView probs, const Context& ctx) {
  const AttentionDims d = internal::check_attention_forward_args(
      "attention_forward", q, kk, v, mask, bias, scale, out, lse, probs);
  Tensor qh, kh, vh;
  q = unit_inner(q, qh);
  kk = unit_inner(kk, kh);
  v = unit_inner(v, vh);
  OutputSlot out_slot(out, false);
  const Plan plan = make_plan(d, mask);
  // No fill: the query blocks of the residue classes cover every query row, and forward_block
  // writes every out and lse element of its rows (the tests start outputs at NaN to hold this).
  const int64_t n_tasks = forward_task_count(plan);
  TensorView o = out_slot.view;
  // An output this large will not be in cache when anything reads it: write it around the cache.
  const bool stream_out =
      d.B * d.NH * d.T * d.HSV * static_cast<int64_t>(sizeof(float)) >= kStreamingOutputBytes;
  internal::parallel_for(ctx, n_tasks, [&](int64_t task, int worker) {
    const auto [qb, h] = forward_task(plan, task);
    const HeadViews hv = head_views(q, kk, v, mask, bias, d, qb.b, h);
    k::LinePrefetcher prefetch;
    if (task + 1 < n_tasks) {  // usually this worker's next task (static partition)
      const auto [next, next_h] = forward_task(plan, task + 1);
      prefetch_rows_of(plan, next, head_views(q, kk, v, mask, bias, d, next.b, next_h),
                       next_h == h && next.b == qb.b && next.rho == qb.rho ? qb.jmax + 1 : 0,
                       prefetch);
      prefetch.pace(forward_block_fmas(plan, qb));
    }
    forward_block(plan, qb, hv, scale, forward_scratch(ctx, worker, plan),
                  o.data() + qb.b * o.stride(0) + h * o.stride(1), o.stride(2),
                  lse.data() + qb.b * lse.stride(0) + h * lse.stride(1), lse.stride(2), stream_out,
                  &prefetch);
  });
  out_slot.flush();
  if (probs.defined()) probabilities_pass(plan, q, kk, v, mask, bias, scale, lse, probs, ctx);
}

const char* simd_target() { return internal::kernels::simd_target_name(); }

std::vector<std::string> available_simd_targets() {
  const auto current = std::string(simd_target());
  std::vector<std::string> names;
  int64_t restore = 0;
  for (const auto& [name, bit] : internal::kernels::runnable_targets()) {
    names.push_back(name);
    if (name == current && names.size() > 1) restore = bit;
  }
  internal::kernels::limit_targets(restore);  // runnable_targets() lifted any limit
  return names;
}

void set_simd_target(const std::string& name) {
  const auto targets = internal::kernels::runnable_targets();
  if (name.empty()) return;  // runnable_targets() left every target enabled
  for (const auto& [target, bit] : targets)
    if (target == name) return internal::kernels::limit_targets(bit);
  std::string names;
  for (const auto& t : targets) names += (names.empty() ? "" : ", ") + t.first;
  fail<ValueError>("set_simd_target", "'", name,
                   "' is not a target this build runs here; choose one of ", names);
}

AttentionResult attention(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                          const AttentionOptions& options, ConstTensorView bias,
                          const Context& ctx) {
  return internal::attention_with_results<float>("attention", q, k, v, options, bias, ctx,
                                                 [](auto&&... a) { ops::attention_forward(a...); });
}

AttentionGrads attention_grad(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                              ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                              const AttentionOptions& options, ConstTensorView bias,
                              const Context& ctx) {
  return internal::attention_grad_results<float>(
      "attention_grad", q, k, v, out, lse, dout, options, bias, ctx,
      [](auto&&... a) { ops::attention_backward(a...); });
}

}  // namespace attn::ops
