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
#include <string>
#include <vector>

#include "attn/ops/attention.h"
#include "core/parallel.h"
#include "ops/internal/attention_checks.h"
#include "ops/internal/attention_kernels.h"
#include "ops/internal/attention_tiles.h"

namespace attn::ops {

namespace {

using namespace tiles;  // NOLINT(google-build-using-namespace): this file's own building blocks

// acc[i][c] += Σ_{r in [a, a + n)} P[r][i] · v[r][c] over the columns cr on the native bf16 path:
// P rounded to bf16 and paired along the keys (sc.pp), values as pairs of keys (kt.v2). Pairs are
// (2p, 2p + 1) of the class, so a band starting on an odd key takes its pair's other key with
// weight zero. The accumulator rows are rescaled by sc.alpha in the same pass.
void add_values_bf16(const Plan& plan, const KeyTile& kt, const Scratch& sc, int64_t a, int64_t n,
                     ColumnRange cr, k::LinePrefetcher* prefetch) {
  const int64_t bq = plan.bq, hsv = plan.d.HSV, width = cr.width();
  const int64_t p0 = a / 2, pairs = (a + n - 1) / 2 - p0 + 1;
  k::pack_prob_pairs(sc.St + cr.c0, bq, kt.j0, a, a + n - 1, p0, pairs, width, sc.pp);
  k::gemm_bf16_pairs(width, hsv, pairs, reinterpret_cast<const uint16_t*>(sc.pp), 2, 2 * width,
                     kt.v2 + (p0 - kt.v2_first) * hsv, hsv, sc.acc + cr.c0 * hsv, hsv, 1.0f, true,
                     nullptr, prefetch, sc.alpha + cr.c0);
}

// One online-softmax step and its P·V product for the columns cr and the keys [a, a + n) of the
// tile kt whose scores are in St (rows from key kt.j0, bq apart): acc[i][c] = alpha_i · acc[i][c] +
// Σ_r P[r][i] · v[r][c].
void softmax_and_values(const Plan& plan, const QueryBlock& qb, const HeadViews& hv,
                        const Scratch& sc, const KeyTile& kt, int64_t a, int64_t n, ColumnRange cr,
                        bool masked, const float* tile_max, k::LinePrefetcher* prefetch) {
  const int64_t bq = plan.bq, c0 = cr.c0, hsv = plan.d.HSV;
  float* P = sc.St + (a - kt.j0) * bq + c0;
  k::online_softmax_tile(P, tile_rows(qb, plan.step, a, n), columns(qb, bq, cr), masked, hv.slope,
                         tile_max ? tile_max + c0 : nullptr, sc.m + c0, sc.l + c0, sc.alpha + c0);
  if (plan.bf16_pairs && kt.v_finite) return add_values_bf16(plan, kt, sc, a, n, cr, prefetch);
  for (int64_t i = c0; i < std::min(cr.c1, qb.nq); ++i)
    if (sc.alpha[i] != 1.0f) k::scale_row(sc.acc + i * hsv, hsv, sc.alpha[i]);
  const float* values = kt.v.p + (a - kt.j0) * kt.v.rs;
  if (masked && !kt.v_rows_finite && !rows_finite(values, n, hsv, kt.v.rs)) {
    add_visible_per_query(qb, c0, cr.c1, a, n, sc.St + (a - kt.j0) * bq, bq, values, kt.v.rs, hsv,
                          sc.acc);
    return;
  }
  k::gemm_bcast(cr.width(), hsv, n, P, 1, bq, values, kt.v.rs, sc.acc + c0 * hsv, hsv, true,
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
  auto add = [&](const Rows& x, int64_t first, int64_t rows, int64_t len) {
    prefetch.add_bytes(x.address(first), rows, len * x.element_bytes(),
                       step * x.rs * x.element_bytes());
  };
  add(hv.q, qb.t0, qb.nq, plan.d.HS);
  add(hv.k, qb.s0 + step * j, n, plan.d.HS);
  add(hv.v, qb.s0 + step * j, n, plan.d.HSV);
}

void forward_keys_rows(const Plan& plan, const QueryBlock& qb, const HeadViews& hv, double scale,
                       const Scratch& sc, int64_t j_begin, int64_t j_end);

// Qᵀ of block qb into sc.qt: scaled floats, or (native bf16) unscaled pairs.
void pack_queries(const Plan& plan, const QueryBlock& qb, const HeadViews& hv, double scale,
                  const Scratch& sc) {
  const int64_t step = plan.step;
  if (plan.bf16_pairs) {
    k::pack_pairs_transposed(hv.q.h + qb.t0 * hv.q.rs, step * hv.q.rs, qb.nq, plan.bq,
                             plan.d.HS / 2, reinterpret_cast<uint32_t*>(sc.qt));
    return;
  }
  pack_transposed(query_rows(hv, qb, step, plan.d.HS, sc.qf), qb, plan.bq, plan.d.HS,
                  static_cast<float>(scale * kLog2e), sc.qt);
}

// The online softmax of block qb over its key tiles that start in [j_begin, j_end] (tiles start at
// jmin + multiples of bk): sc.acc (unnormalised output), sc.m (running max, log2 units) and sc.l
// (running sum) for every column.

void forward_keys(const Plan& plan, const QueryBlock& qb, const HeadViews& hv, double scale,
                  const Scratch& sc, int64_t j_begin, int64_t j_end, k::LinePrefetcher* prefetch,
                  ValuePairs* value_pairs = nullptr) {
  if (plan.score_rows) return forward_keys_rows(plan, qb, hv, scale, sc, j_begin, j_end);
  const AttentionDims& d = plan.d;
  const int64_t bq = plan.bq;
  std::fill(sc.acc, sc.acc + bq * d.HSV, 0.0f);
  std::fill(sc.m, sc.m + bq, kNegInf);
  std::fill(sc.l, sc.l + bq, 0.0f);
  if (j_begin > j_end) return;
  pack_queries(plan, qb, hv, scale, sc);
  for (int64_t j0 = j_begin; j0 <= j_end; j0 += plan.bk) {
    const int64_t nk = std::min(plan.bk, qb.jmax + 1 - j0);
    const ColumnRange cr = visible_columns(qb, j0, nk);
    if (cr.width() == 0) continue;
    KeyTile kt = key_tile(plan, qb, hv, sc, j0, nk, value_pairs);
    if (tile_is_whole(qb, j0, nk, cr)) {
      const bool masked = !block_fully_visible(qb, j0, nk, cr);
      // Scores the softmax takes as they are: their maxima come out of the score product's
      // registers.
      float* tile_max = !masked && hv.slope == 0.0f && !hv.bias ? sc.tile_max : nullptr;
      score_tile(hv, qb, plan, sc.qt, kt, 0, nk, cr, sc.St, tile_max, prefetch);
      softmax_and_values(plan, qb, hv, sc, kt, j0, nk, cr, masked, tile_max, prefetch);
      continue;
    }
    // Band-following: scores in chunks of kColumnGroup keys, each against the column groups that
    // see it; then softmax and P·V per column group over just the keys it sees. The values'
    // finiteness is checked once for the tile: each group checking the rows it sees read every
    // value row five times at ±32, a sixth of the window forward's time.
    if (!(plan.bf16_pairs && kt.v_finite))
      kt.v_rows_finite = rows_finite(kt.v.p, nk, d.HSV, kt.v.rs);
    for (int64_t r0 = 0; r0 < nk; r0 += kColumnGroup) {
      const int64_t rn = std::min(kColumnGroup, nk - r0);
      const ColumnRange chunk_cols = visible_columns(qb, j0 + r0, rn);
      if (chunk_cols.width() > 0)
        score_tile(hv, qb, plan, sc.qt, kt, r0, rn, chunk_cols, sc.St + r0 * bq, nullptr, prefetch);
    }
    for (int64_t c = cr.c0; c < cr.c1; c += kColumnGroup) {
      const auto [a, b] = group_rows(qb, static_cast<size_t>(c / kColumnGroup), j0, nk);
      if (a > b) continue;
      const ColumnRange group{c, c + kColumnGroup};
      softmax_and_values(plan, qb, hv, sc, kt, a, b - a + 1, group,
                         !block_fully_visible(qb, a, b - a + 1, group), nullptr, prefetch);
    }
  }
}

// forward_keys for a block of at most kRowQueries queries, scores laid out as rows S[t][j]: per key
// tile, Kᵀ packed once, S = (scale·Q) Kᵀ with queries as broadcast rows and keys on the lanes, the
// online softmax along each row, then acc += P V. Same results contract as forward_keys.
void forward_keys_rows(const Plan& plan, const QueryBlock& qb, const HeadViews& hv, double scale,
                       const Scratch& sc, int64_t j_begin, int64_t j_end) {
  const AttentionDims& d = plan.d;
  const int64_t step = plan.step, W = plan.bk, T = qb.nq;
  std::fill(sc.acc, sc.acc + plan.bq * d.HSV, 0.0f);
  std::fill(sc.m, sc.m + plan.bq, kNegInf);
  std::fill(sc.l, sc.l + plan.bq, 0.0f);
  float* qs = sc.qt;  // T × HS: the scaled queries, base-2 logits
  const float qscale = static_cast<float>(scale * kLog2e);
  const FloatRows q = query_rows(hv, qb, step, d.HS, sc.qf);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < d.HS; ++c) qs[t * d.HS + c] = qscale * q.p[t * q.rs + c];
  for (int64_t j0 = j_begin; j0 <= j_end; j0 += plan.bk) {
    const int64_t nk = std::min(plan.bk, qb.jmax + 1 - j0);
    if (visible_columns(qb, j0, nk).width() == 0) continue;
    const KeyTile kt = key_tile(plan, qb, hv, sc, j0, nk);  // float rows: never bf16_pairs here
    k::pack_transposed(kt.k.p, kt.k.rs, nk, W, d.HS, 1.0f, sc.kt);
    k::gemm_bcast(T, W, d.HS, qs, d.HS, 1, sc.kt, W, sc.St, W, false);
    if (hv.bias)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < nk; ++j)
          sc.St[t * W + j] +=
              static_cast<float>(kLog2e) *
              hv.bias[(qb.t0 + step * t) * hv.bias_ts + (qb.s0 + step * (j0 + j)) * hv.bias_ss];
    const bool masked = !block_fully_visible(qb, j0, nk, all_columns(plan));
    const k::ScoreRows rows{T,
                            nk,
                            W,
                            W,
                            j0,
                            static_cast<double>(qb.s0 + step * j0),
                            static_cast<double>(step),
                            qb.lo.data(),
                            qb.hi.data(),
                            qb.pos.data()};
    k::online_softmax_rows(sc.St, rows, masked, hv.slope, sc.m, sc.l, sc.alpha);
    for (int64_t t = 0; t < T; ++t)
      if (sc.alpha[t] != 1.0f) k::scale_row(sc.acc + t * d.HSV, d.HSV, sc.alpha[t]);
    const float* values = kt.v.p;
    if (masked && !rows_finite(values, nk, d.HSV, kt.v.rs)) {
      // Hidden keys have weight 0, but 0 · NaN is NaN: add only the visible pairs.
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < nk; ++j)
          if (sees(qb, t, j0 + j))
            for (int64_t c = 0; c < d.HSV; ++c)
              sc.acc[t * d.HSV + c] += sc.St[t * W + j] * values[j * kt.v.rs + c];
      continue;
    }
    k::gemm_bcast(T, d.HSV, nk, sc.St, W, 1, values, kt.v.rs, sc.acc, d.HSV, true);
  }
}

// Writes out = acc / l and lse of the block's valid queries from (acc, m, l).
void finish_block(const Plan& plan, const QueryBlock& qb, const float* acc, const float* m,
                  const float* l, float* alpha, float* out, int64_t out_rs, float* lse,
                  int64_t lse_s, bool stream_out) {
  const int64_t step = plan.step;
  for (int64_t i = 0; i < qb.nq; ++i) {
    const int64_t t = qb.t0 + step * i;
    // l = 0: no visible key (or every visible score -inf), output 0 and lse -inf. A NaN l (a NaN
    // or +inf score) stays NaN in both.
    alpha[i] = l[i] == 0.0f ? 0.0f : 1.0f / l[i];
    const double lse_log2 = static_cast<double>(m[i]) + std::log2(static_cast<double>(l[i]));
    lse[t * lse_s] = l[i] == 0.0f ? kNegInf : static_cast<float>(kLn2 * lse_log2);
  }
  k::store_scaled_rows(acc, qb.nq, plan.d.HSV, alpha, out + qb.t0 * out_rs, step * out_rs,
                       stream_out);
}

void probabilities_pass(const Plan& plan, const Operand& q, const Operand& kk, const Operand& v,
                        const AttentionMask& mask, ConstTensorView bias, double scale,
                        ConstTensorView lse, TensorView probs, const Context& ctx) {
  fill(probs, 0.0f);
  internal::parallel_for(ctx, forward_task_count(plan), [&](int64_t task, int worker) {
    const auto [qb, h] = forward_task(plan, task);
    if (qb.jmin > qb.jmax) return;
    const HeadViews hv = head_views(q, kk, v, mask, bias, plan.d, qb.b, h);
    const Scratch sc = forward_scratch(ctx, worker, plan, kk.is_bf16());
    pack_queries(plan, qb, hv, scale, sc);
    for (int64_t i = 0; i < plan.bq; ++i)
      sc.m[i] = i < qb.nq ? static_cast<float>(kLog2e) * lse(qb.b, h, qb.t0 + plan.step * i) : 0.0f;
    for (int64_t j0 = qb.jmin; j0 <= qb.jmax; j0 += plan.bk) {
      const int64_t nk = std::min(plan.bk, qb.jmax + 1 - j0);
      const KeyTile kt = key_tile(plan, qb, hv, sc, j0, nk, nullptr, /*with_values=*/false);
      score_tile(hv, qb, plan, sc.qt, kt, 0, nk, all_columns(plan), sc.St);
      k::probs_tile(sc.St, tile_rows(qb, plan.step, j0, nk),
                    columns(qb, plan.bq, all_columns(plan)), true, hv.slope, sc.m);
      for (int64_t r = 0; r < nk; ++r)
        for (int64_t i = 0; i < qb.nq; ++i)
          probs(qb.b, h, qb.t0 + plan.step * i, qb.s0 + plan.step * (j0 + r)) =
              sc.St[r * plan.bq + i];
    }
  });
}
// Where a forward task writes: out rows of (b, h) and their lse.
struct ForwardOutputs {
  TensorView out, lse;
  bool stream;
  float* out_rows(int64_t b, int64_t h) const {
    return out.data() + b * out.stride(0) + h * out.stride(1);
  }
  float* lse_row(int64_t b, int64_t h) const {
    return lse.data() + b * lse.stride(0) + h * lse.stride(1);
  }
};

// The inputs every forward task reads.
struct ForwardInputs {
  Operand q, k, v;
  const AttentionMask& mask;
  ConstTensorView bias;
  double scale;
  const AttentionDims& d;
  HeadViews head(int64_t b, int64_t h) const { return head_views(q, k, v, mask, bias, d, b, h); }
};

// One task per (query block, head), each over all its keys.
void forward_by_blocks(const Plan& plan, const ForwardInputs& in, const ForwardOutputs& o,
                       const Context& ctx) {
  const int64_t n_tasks = forward_task_count(plan);
  std::vector<ValuePairs> value_pairs(plan.bf16_pairs ? static_cast<size_t>(ctx.num_threads()) : 0);
  internal::parallel_for(ctx, n_tasks, [&](int64_t task, int worker) {
    const auto [qb, h] = forward_task(plan, task);
    const HeadViews hv = in.head(qb.b, h);
    k::LinePrefetcher prefetch;
    if (task + 1 < n_tasks) {  // usually this worker's next task (it takes runs of them)
      const auto [next, next_h] = forward_task(plan, task + 1);
      prefetch_rows_of(plan, next, in.head(next.b, next_h),
                       next_h == h && next.b == qb.b && next.rho == qb.rho ? qb.jmax + 1 : 0,
                       prefetch);
      prefetch.pace(forward_block_fmas(plan, qb));
    }
    const Scratch sc = forward_scratch(ctx, worker, plan, in.k.is_bf16());
    forward_keys(plan, qb, hv, in.scale, sc, qb.jmin, qb.jmax, &prefetch,
                 plan.bf16_pairs ? &value_pairs[static_cast<size_t>(worker)] : nullptr);
    finish_block(plan, qb, sc.acc, sc.m, sc.l, sc.alpha, o.out_rows(qb.b, h), o.out.stride(2),
                 o.lse_row(qb.b, h), o.lse.stride(2), o.stream);
  });
}

// Fewer (block, head) tasks than this leave threads idle (decoding: T = 1..16 queries against a
// long cache); then each task's keys are split (flash-decoding).
constexpr int64_t kMinForwardTasks = 16;
// Fewest key tiles per split: below it the merge costs more than the split saves.
constexpr int64_t kMinTilesPerSplit = 4;

// Key splits per task: a function of the shape alone (never of the thread count), so that the
// result is the same for any number of threads.
int64_t key_splits(const Plan& plan) {
  const int64_t n_tasks = forward_task_count(plan);
  if (n_tasks == 0 || n_tasks >= kMinForwardTasks) return 1;
  int64_t tiles = 0;
  for (const QueryBlock& qb : plan.blocks)
    if (qb.jmin <= qb.jmax) tiles = std::max(tiles, ceil_div(qb.jmax - qb.jmin + 1, plan.bk));
  return std::clamp<int64_t>(
      std::min(ceil_div(kMinForwardTasks, n_tasks), tiles / kMinTilesPerSplit), 1,
      kMinForwardTasks);
}

// Flash-decoding: every (block, head) task's key tiles cut into `splits` consecutive ranges, each
// a task that leaves its (acc, m, l) in a buffer; then per (block, head) the ranges are merged in
// order, m = max m_s, l = Σ l_s·2^(m_s - m), acc = Σ acc_s·2^(m_s - m).
void forward_by_key_splits(const Plan& plan, int64_t splits, const ForwardInputs& in,
                           const ForwardOutputs& o, const Context& ctx) {
  const AttentionDims& d = plan.d;
  const int64_t bq = plan.bq, per_part = bq * d.HSV + 2 * bq;  // acc, m, l
  const int64_t n_tasks = forward_task_count(plan);
  Tensor parts(Shape{n_tasks * splits, per_part});
  internal::parallel_for(ctx, n_tasks * splits, [&](int64_t task, int worker) {
    const auto [qb, h] = forward_task(plan, task / splits);
    const int64_t tiles = qb.jmin <= qb.jmax ? ceil_div(qb.jmax - qb.jmin + 1, plan.bk) : 0;
    const int64_t per = ceil_div(tiles, splits), s = task % splits;
    const int64_t j_begin = qb.jmin + s * per * plan.bk;
    const int64_t j_end = std::min(qb.jmax, qb.jmin + (s + 1) * per * plan.bk - 1);
    const Scratch sc = forward_scratch(ctx, worker, plan, in.k.is_bf16());
    forward_keys(plan, qb, in.head(qb.b, h), in.scale, sc, j_begin, j_end, nullptr);
    float* part = parts.data() + task * per_part;
    std::copy(sc.acc, sc.acc + bq * d.HSV, part);
    std::copy(sc.m, sc.m + bq, part + bq * d.HSV);
    std::copy(sc.l, sc.l + bq, part + bq * d.HSV + bq);
  });
  internal::parallel_for(
      ctx, n_tasks, static_cast<double>(splits * per_part), [&](int64_t task, int worker) {
        const auto [qb, h] = forward_task(plan, task);
        const Scratch sc = forward_scratch(ctx, worker, plan, in.k.is_bf16());
        const float* first = parts.data() + task * splits * per_part;
        auto m_of = [&](int64_t s) { return first + s * per_part + bq * d.HSV; };
        for (int64_t i = 0; i < bq; ++i) {
          float m = kNegInf;
          for (int64_t s = 0; s < splits; ++s) m = std::max(m, m_of(s)[i]);
          sc.m[i] = m;
          sc.l[i] = 0.0f;
        }
        std::fill(sc.acc, sc.acc + bq * d.HSV, 0.0f);
        for (int64_t s = 0; s < splits; ++s) {
          const float* part = first + s * per_part;
          for (int64_t i = 0; i < qb.nq; ++i) {
            // A range that saw no visible key has m = -inf and l = 0: weight 0 (2^(-inf - m) with
            // m finite, or 0 against m_use = 0 when no range saw one).
            const float m_use = sc.m[i] == kNegInf ? 0.0f : sc.m[i];
            const float w = m_of(s)[i] == kNegInf ? 0.0f : std::exp2(m_of(s)[i] - m_use);
            sc.l[i] += w * part[bq * d.HSV + bq + i];
            const float* acc = part + i * d.HSV;
            for (int64_t c = 0; c < d.HSV; ++c) sc.acc[i * d.HSV + c] += w * acc[c];
          }
        }
        finish_block(plan, qb, sc.acc, sc.m, sc.l, sc.alpha, o.out_rows(qb.b, h), o.out.stride(2),
                     o.lse_row(qb.b, h), o.lse.stride(2), o.stream);
      });
}

}  // namespace

namespace {

bool native_bf16_here() {
  return k::bf16_dot_supported() && std::string(k::simd_target_name()).rfind("AVX3", 0) == 0;
}

// The forward on checked arguments whose rows have unit inner stride.
void forward_checked(const Operand& q, const Operand& kk, const Operand& v, const AttentionDims& d,
                     const AttentionMask& mask, ConstTensorView bias, double scale, TensorView out,
                     TensorView lse, TensorView probs, const Context& ctx) {
  OutputSlot out_slot(out, false);
  Plan plan = make_plan(d, mask);
  plan.bf16_pairs = q.is_bf16() && kk.is_bf16() && v.is_bf16() && d.HS % 2 == 0 &&
                    !plan.score_rows && native_bf16_here();
  plan.pair_scale = static_cast<float>(scale * kLog2e);
  const ForwardInputs in{q, kk, v, mask, bias, scale, d};
  // No fill: the query blocks of the residue classes cover every query row, and finish_block
  // writes every out and lse element of its rows (the tests start outputs at NaN to hold this).
  // An output this large will not be in cache when anything reads it: write it around the cache.
  const ForwardOutputs o{
      out_slot.view, lse,
      d.B * d.NH * d.T * d.HSV * static_cast<int64_t>(sizeof(float)) >= kStreamingOutputBytes};
  const int64_t splits = key_splits(plan);
  if (splits > 1)
    forward_by_key_splits(plan, splits, in, o, ctx);
  else
    forward_by_blocks(plan, in, o, ctx);
  out_slot.flush();
  if (probs.defined()) probabilities_pass(plan, q, kk, v, mask, bias, scale, lse, probs, ctx);
}

// Checks, makes the inner strides unit, runs.
template <typename TQ, typename TKV>
void forward_any(BasicView<const TQ> q, BasicView<const TKV> kk, BasicView<const TKV> v,
                 const AttentionMask& mask, ConstTensorView bias, double scale, TensorView out,
                 TensorView lse, TensorView probs, const Context& ctx) {
  const AttentionDims d = internal::check_attention_forward_args(
      "attention_forward", q, kk, v, mask, bias, scale, out, lse, probs);
  BasicTensor<TQ> qh;
  BasicTensor<TKV> kh, vh;
  forward_checked(operand(unit_inner(q, qh)), operand(unit_inner(kk, kh)),
                  operand(unit_inner(v, vh)), d, mask, bias, scale, out, lse, probs, ctx);
}

}  // namespace

void attention_forward(ConstTensorView q, ConstTensorView kk, ConstTensorView v,
                       const AttentionMask& mask, ConstTensorView bias, double scale,
                       TensorView out, TensorView lse, TensorView probs, const Context& ctx) {
  forward_any(q, kk, v, mask, bias, scale, out, lse, probs, ctx);
}
void attention_forward(ConstTensorViewBF16 q, ConstTensorViewBF16 kk, ConstTensorViewBF16 v,
                       const AttentionMask& mask, ConstTensorView bias, double scale,
                       TensorView out, TensorView lse, TensorView probs, const Context& ctx) {
  forward_any(q, kk, v, mask, bias, scale, out, lse, probs, ctx);
}
void attention_forward(ConstTensorView q, ConstTensorViewBF16 kk, ConstTensorViewBF16 v,
                       const AttentionMask& mask, ConstTensorView bias, double scale,
                       TensorView out, TensorView lse, TensorView probs, const Context& ctx) {
  forward_any(q, kk, v, mask, bias, scale, out, lse, probs, ctx);
}

bool bf16_dot_products() { return native_bf16_here(); }

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

namespace {
template <typename TQ, typename TKV>
AttentionResult attention_any(BasicView<const TQ> q, BasicView<const TKV> k, BasicView<const TKV> v,
                              const AttentionOptions& options, ConstTensorView bias,
                              const Context& ctx) {
  return internal::attention_with_results<float>("attention", q, k, v, options, bias, ctx,
                                                 [](auto&&... a) { ops::attention_forward(a...); });
}
template <typename TQ, typename TKV>
AttentionGrads attention_grad_any(BasicView<const TQ> q, BasicView<const TKV> k,
                                  BasicView<const TKV> v, ConstTensorView out, ConstTensorView lse,
                                  ConstTensorView dout, const AttentionOptions& options,
                                  ConstTensorView bias, const Context& ctx) {
  return internal::attention_grad_results<float>(
      "attention_grad", q, k, v, out, lse, dout, options, bias, ctx,
      [](auto&&... a) { ops::attention_backward(a...); });
}
}  // namespace

AttentionResult attention(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                          const AttentionOptions& options, ConstTensorView bias,
                          const Context& ctx) {
  return attention_any(q, k, v, options, bias, ctx);
}
AttentionResult attention(ConstTensorViewBF16 q, ConstTensorViewBF16 k, ConstTensorViewBF16 v,
                          const AttentionOptions& options, ConstTensorView bias,
                          const Context& ctx) {
  return attention_any(q, k, v, options, bias, ctx);
}
AttentionResult attention(ConstTensorView q, ConstTensorViewBF16 k, ConstTensorViewBF16 v,
                          const AttentionOptions& options, ConstTensorView bias,
                          const Context& ctx) {
  return attention_any(q, k, v, options, bias, ctx);
}

AttentionGrads attention_grad(ConstTensorView q, ConstTensorView k, ConstTensorView v,
                              ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                              const AttentionOptions& options, ConstTensorView bias,
                              const Context& ctx) {
  return attention_grad_any(q, k, v, out, lse, dout, options, bias, ctx);
}
AttentionGrads attention_grad(ConstTensorViewBF16 q, ConstTensorViewBF16 k, ConstTensorViewBF16 v,
                              ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                              const AttentionOptions& options, ConstTensorView bias,
                              const Context& ctx) {
  return attention_grad_any(q, k, v, out, lse, dout, options, bias, ctx);
}
AttentionGrads attention_grad(ConstTensorView q, ConstTensorViewBF16 k, ConstTensorViewBF16 v,
                              ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                              const AttentionOptions& options, ConstTensorView bias,
                              const Context& ctx) {
  return attention_grad_any(q, k, v, out, lse, dout, options, bias, ctx);
}

}  // namespace attn::ops
