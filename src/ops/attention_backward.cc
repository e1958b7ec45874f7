// SPDX-License-Identifier: MIT
// The fused attention's backward (FlashAttention-2: one fused pass, or two deterministic passes), on
// the plan and tiles of attention_tiles.h; tested against attention_reference.cc.
#include <algorithm>
#include <cmath>
#include <vector>

#include "attn/ops/attention.h"
#include "core/parallel.h"
#include "ops/internal/attention_backward.h"
#include "ops/internal/attention_checks.h"
#include "ops/internal/attention_kernels.h"
#include "ops/internal/attention_tiles.h"

namespace attn::ops {

namespace {

using namespace tiles;  // NOLINT(google-build-using-namespace): this file's own building blocks

// Backward (FlashAttention-2). The forward was S = scale·QKᵀ + M, P = exp(S − lse), O = P V. So,
// tile by tile, with D_t = dO_t · O_t (one dot product per query, computed first):
//   P = exp(S − lse) (recomputed),  dP = dO Vᵀ,  dS = P ⊙ (dP − D), and then
//   pass 1, parallel over key blocks (each task owns its dK, dV rows):
//     dV += Pᵀ dO,  dK += scale · dSᵀ Q
//   pass 2, parallel over query blocks (each task owns its dQ rows):
//     dQ += scale · dS K,  dBias += dS
// Two passes recompute S and dP twice (7 tile products instead of 5) but need no atomics and no
// per-thread copies of dQ, which keeps the result independent of the thread count.
//
// When there are enough (batch, kv head, class) triples to share out and no dBias is asked for
// (internal/attention_backward.h), one fused pass does the five products instead: a task owns a
// triple, walks its key blocks in order and adds each pair's scale · dS K into dQ directly, since
// no other task writes those rows.

struct BackwardScratch {
  float *qt, *dot, *P, *dS, *acc_a, *acc_b, *lse, *D, *acc_q;
  float *qf, *kf, *vf;  // bf16 inputs: a query block, a key tile's keys and values widened
};
BackwardScratch backward_scratch(const Context& ctx, int worker, const Plan& p, bool bf16) {
  const int64_t hs = std::max<int64_t>(p.d.HS, p.d.HSV), rows = std::max(p.bq, p.bk);
  const int64_t w = bf16 ? 1 : 0;
  const auto a = carve_scratch<12>(
      ctx, worker,
      {p.d.HS * p.bq, p.d.HSV * p.bq, p.bk * p.bq, p.bk * p.bq, rows * hs, rows * hs, p.bq, p.bq,
       p.bq * p.d.HS, w * p.bq * p.d.HS, w * p.bk * p.d.HS, w * p.bk * p.d.HSV});
  return {a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11]};
}

struct GradInputs {
  const float* dout;  // rows of (b, h) at dout + t·dout_rs
  int64_t dout_rs;
};

// Packs what a query block needs once per (block, head): scaled Qᵀ, dOᵀ, lse and D (padding:
// zeros). Returns the block's queries as float rows (bf16 widened into sc.qf).
FloatRows prepare_query_block(const Plan& plan, const QueryBlock& qb, const HeadViews& hv,
                              const GradInputs& g, ConstTensorView lse, const Tensor& D, int64_t h,
                              double scale, const BackwardScratch& sc) {
  const int64_t step = plan.step;
  const FloatRows q = query_rows(hv, qb, step, plan.d.HS, sc.qf);
  pack_transposed(q, qb, plan.bq, plan.d.HS, static_cast<float>(scale * kLog2e), sc.qt);
  pack_transposed(FloatRows{g.dout + qb.t0 * g.dout_rs, step * g.dout_rs}, qb, plan.bq, plan.d.HSV,
                  1.0f, sc.dot);
  for (int64_t i = 0; i < plan.bq; ++i) {
    const int64_t t = qb.t0 + plan.step * i;
    sc.lse[i] = i < qb.nq ? static_cast<float>(kLog2e) * lse(qb.b, h, t) : 0.0f;
    sc.D[i] = i < qb.nq ? D(qb.b, h, t) : 0.0f;
  }
  return q;
}

// The part of a (query block, key tile) pair that the backward computes. A whole tile (every
// column group sees every key of it: full attention, the inside of a band) is one dense block of
// nk rows × bq columns. Otherwise (the edges of a window band, a causal diagonal) it is cut into
// chunks of kColumnGroup keys, each computed only for the column groups that see some of its keys:
// under a window of ±w a query then pays for about 2w + 16 keys instead of a 128-key tile.
struct TileBand {
  static constexpr int64_t kMaxChunks = 128 / kColumnGroup;  // plan.bk <= 128
  int64_t j0, nk;
  bool whole;
  bool masked;  // some valid query of a computed column does not see some key of its chunk
  std::array<ColumnRange, kMaxChunks> chunk;  // when !whole: chunk c holds keys [16c, 16c + 16)

  // fn(r0, rows, columns) for each computed block: tile rows [r0, r0 + rows), columns cr.
  template <typename F>
  void for_each_block(const Plan& plan, F&& fn) const {
    if (whole) return fn(int64_t{0}, nk, all_columns(plan));
    for (int64_t r0 = 0, c = 0; r0 < nk; r0 += kColumnGroup, ++c)
      if (chunk[static_cast<size_t>(c)].width() > 0)
        fn(r0, std::min(kColumnGroup, nk - r0), chunk[static_cast<size_t>(c)]);
  }
};

TileBand tile_band(const Plan& plan, const QueryBlock& qb, int64_t j0, int64_t nk) {
  TileBand band{j0, nk, true, false, {}};
  for (int64_t r0 = 0, c = 0; r0 < nk; r0 += kColumnGroup, ++c) {
    const ColumnRange cr = visible_columns(qb, j0 + r0, std::min(kColumnGroup, nk - r0));
    band.chunk[static_cast<size_t>(c)] = cr;
    band.whole = band.whole && cr.c0 == 0 && cr.c1 == plan.bq;
  }
  return band;
}

// The keys [j0, j0 + nk) of class rho as float rows: in place, or bf16 widened into sc.kf, sc.vf.
KeyTile backward_key_tile(const Plan& plan, const HeadViews& hv, int64_t rho, int64_t j0,
                          int64_t nk, const BackwardScratch& sc) {
  const int64_t first = rho + plan.step * j0;
  KeyTile kt;
  kt.j0 = j0;
  kt.nk = nk;
  kt.k = float_rows(hv.k, first, nk, plan.step, plan.d.HS, sc.kf);
  kt.v = float_rows(hv.v, first, nk, plan.step, plan.d.HSV, sc.vf);
  return kt;
}

// Row a (a key of the tile, j0 <= a < j0 + nk) of one of a key tile's float rows.
const float* tile_row(const FloatRows& rows, const KeyTile& kt, int64_t a) {
  return rows.p + (a - kt.j0) * rows.rs;
}

// P (sc.P) and dS (sc.dS) of one tile's band, both transposed [key][query], rows bq apart.
// Entries outside the band are left as they were (stale): readers go through for_each_block.
TileBand gradient_tile(const Plan& plan, const QueryBlock& qb, const HeadViews& hv,
                       const KeyTile& kt, const BackwardScratch& sc) {
  const int64_t j0 = kt.j0, nk = kt.nk;
  TileBand band = tile_band(plan, qb, j0, nk);
  const int64_t bq = plan.bq, step = plan.step;
  band.for_each_block(plan, [&](int64_t r0, int64_t rows, ColumnRange cr) {
    const int64_t a = j0 + r0, c0 = cr.c0;
    const bool masked = !block_fully_visible(qb, a, rows, cr);
    band.masked = band.masked || masked;
    float* P = sc.P + r0 * bq;
    float* dS = sc.dS + r0 * bq;
    score_tile(hv, qb, plan, sc.qt, kt, r0, rows, cr, P);
    k::probs_tile(P + c0, tile_rows(qb, step, a, rows), columns(qb, bq, cr), masked, hv.slope,
                  sc.lse + c0);
    k::gemm_bcast(rows, cr.width(), plan.d.HSV, tile_row(kt.v, kt, a), kt.v.rs, 1, sc.dot + c0, bq,
                  dS + c0, bq, false);
    k::softmax_grad_tile(P + c0, dS + c0, rows, cr.width(), bq, sc.D + c0);
  });
  return band;
}

// D[b, h, t] = dO_t · O_t (double accumulation), in parallel over (b, h).
Tensor output_dots(ConstTensorView out, ConstTensorView dout, const AttentionDims& d,
                   const Context& ctx) {
  Tensor D(Shape{d.B, d.NH, d.T});
  internal::parallel_for(ctx, d.B * d.NH, static_cast<double>(d.T * d.HSV), [&](int64_t bh, int) {
    const int64_t b = bh / d.NH, h = bh % d.NH;
    const float* o = out.data() + b * out.stride(0) + h * out.stride(1);
    const float* g = dout.data() + b * dout.stride(0) + h * dout.stride(1);
    const int64_t o_ts = out.stride(2), o_cs = out.stride(3), g_ts = dout.stride(2);
    float* Drow = D.data() + (b * d.NH + h) * d.T;
    for (int64_t t = 0; t < d.T; ++t) {
      double acc = 0.0;
      for (int64_t c = 0; c < d.HSV; ++c)
        acc += static_cast<double>(g[t * g_ts + c]) * static_cast<double>(o[t * o_ts + c * o_cs]);
      Drow[t] = static_cast<float>(acc);
    }
  });
  return D;
}

// Everything both passes read.
struct BackwardInputs {
  const Plan& plan;
  Operand q, k, v;
  ConstTensorView dout, lse;
  const Tensor& D;
  const AttentionMask& mask;
  ConstTensorView bias;
  double scale;
  // Query blocks of each (batch, class), in order.
  std::vector<std::vector<size_t>> by_class;

  HeadViews head(int64_t b, int64_t h) const {
    return head_views(q, k, v, mask, bias, plan.d, b, h);
  }
  GradInputs grad(int64_t b, int64_t h) const {
    return GradInputs{dout.data() + b * dout.stride(0) + h * dout.stride(1), dout.stride(2)};
  }
};

// acc[i][c] += Σ_r dS[r][i] k[r][c] over one tile's band: a whole tile in one product, a band per
// column group over just the keys it sees; per visible pair when a hidden key is not finite.
void add_dq_of_tile(const BackwardInputs& in, const QueryBlock& qb, const KeyTile& kt,
                    const TileBand& band, const BackwardScratch& sc, float* acc) {
  const Plan& plan = in.plan;
  const int64_t bq = plan.bq, HS = plan.d.HS, keys_rs = kt.k.rs;
  const float* keys = kt.k.p;
  if (band.masked && !rows_finite(keys, band.nk, HS, keys_rs)) {
    add_visible_per_query(qb, 0, bq, band.j0, band.nk, sc.dS, bq, keys, keys_rs, HS, acc);
    return;
  }
  if (band.whole) {
    k::gemm_bcast(bq, HS, band.nk, sc.dS, 1, bq, keys, keys_rs, acc, HS, true);
    return;
  }
  for (int64_t c = 0; c < bq; c += kColumnGroup) {
    const auto [a, b] = group_rows(qb, static_cast<size_t>(c / kColumnGroup), band.j0, band.nk);
    if (a > b) continue;
    k::gemm_bcast(kColumnGroup, HS, b - a + 1, sc.dS + (a - band.j0) * bq + c, 1, bq,
                  keys + (a - band.j0) * keys_rs, keys_rs, acc + c * HS, HS, true);
  }
}

// dq[b, h, t_i] += scale · acc[i] for the block's valid queries.
void add_scaled_dq(const BackwardInputs& in, const QueryBlock& qb, int64_t h, const float* acc,
                   TensorView dq) {
  const int64_t HS = in.plan.d.HS;
  const auto scale = static_cast<float>(in.scale);
  for (int64_t i = 0; i < qb.nq; ++i) {
    float* dq_row = dq.data() + qb.b * dq.stride(0) + h * dq.stride(1) +
                    (qb.t0 + in.plan.step * i) * dq.stride(2);
    for (int64_t c = 0; c < HS; ++c) dq_row[c] += scale * acc[i * HS + c];
  }
}

// The keys [j0, j0 + nk) of class rho of (b, kv head hk): the key pass's unit of work.
struct KeyBlock {
  int64_t b, hk, rho, j0, nk;
};

// dK, dV of one key block (added into dk, dv), from every query head of its kv head and every
// query block of its class that sees some of its keys. With dq defined (the fused pass) each
// pair's dQ is added into dq too.
void key_block(const BackwardInputs& in, const KeyBlock& kt, const BackwardScratch& sc,
               TensorView dk, TensorView dv, TensorView dq) {
  const Plan& plan = in.plan;
  const AttentionDims& d = plan.d;
  const int64_t step = plan.step;
  std::fill(sc.acc_a, sc.acc_a + kt.nk * d.HS, 0.0f);   // dK
  std::fill(sc.acc_b, sc.acc_b + kt.nk * d.HSV, 0.0f);  // dV
  // The key tile is the same for every query head of the kv head: widened once (bf16).
  const KeyTile tile =
      backward_key_tile(plan, in.head(kt.b, kt.hk * d.group()), kt.rho, kt.j0, kt.nk, sc);
  for (int64_t h = kt.hk * d.group(); h < (kt.hk + 1) * d.group(); ++h) {
    const HeadViews hv = in.head(kt.b, h);
    const GradInputs g = in.grad(kt.b, h);
    for (size_t bi : in.by_class[static_cast<size_t>(kt.b * step + kt.rho)]) {
      const QueryBlock& qb = plan.blocks[bi];
      if (qb.jmin > qb.jmax || qb.jmax < kt.j0 || qb.jmin > kt.j0 + kt.nk - 1) continue;
      const FloatRows q = prepare_query_block(plan, qb, hv, g, in.lse, in.D, h, in.scale, sc);
      const TileBand band = gradient_tile(plan, qb, hv, tile, sc);
      if (dq.defined()) {
        std::fill(sc.acc_q, sc.acc_q + plan.bq * d.HS, 0.0f);
        add_dq_of_tile(in, qb, tile, band, sc, sc.acc_q);
        add_scaled_dq(in, qb, h, sc.acc_q, dq);
      }
      // dV[r][c] += Σ_i P[r][i] dO[t_i][c];  dK[r][c] += Σ_i dS[r][i] q[t_i][c]
      const float* dout_rows = g.dout + qb.t0 * g.dout_rs;
      const float* q_rows = q.p;
      if (band.masked && !(rows_finite(dout_rows, qb.nq, d.HSV, step * g.dout_rs) &&
                           rows_finite(q_rows, qb.nq, d.HS, q.rs))) {
        add_visible_per_key(qb, kt.j0, kt.nk, sc.P, plan.bq, dout_rows, step * g.dout_rs, d.HSV,
                            sc.acc_b);
        add_visible_per_key(qb, kt.j0, kt.nk, sc.dS, plan.bq, q_rows, q.rs, d.HS, sc.acc_a);
        continue;
      }
      band.for_each_block(plan, [&](int64_t r0, int64_t rows, ColumnRange cr) {
        const int64_t c0 = cr.c0, n = std::min(cr.c1, qb.nq) - c0;  // valid queries only
        if (n <= 0) return;
        k::gemm_bcast(rows, d.HSV, n, sc.P + r0 * plan.bq + c0, plan.bq, 1,
                      dout_rows + c0 * step * g.dout_rs, step * g.dout_rs, sc.acc_b + r0 * d.HSV,
                      d.HSV, true);
        k::gemm_bcast(rows, d.HS, n, sc.dS + r0 * plan.bq + c0, plan.bq, 1, q_rows + c0 * q.rs,
                      q.rs, sc.acc_a + r0 * d.HS, d.HS, true);
      });
    }
  }
  for (int64_t r = 0; r < kt.nk; ++r) {
    const int64_t s = kt.rho + step * (kt.j0 + r);
    float* dk_row = dk.data() + kt.b * dk.stride(0) + kt.hk * dk.stride(1) + s * dk.stride(2);
    float* dv_row = dv.data() + kt.b * dv.stride(0) + kt.hk * dv.stride(1) + s * dv.stride(2);
    for (int64_t c = 0; c < d.HS; ++c)
      dk_row[c] += static_cast<float>(in.scale) * sc.acc_a[r * d.HS + c];
    for (int64_t c = 0; c < d.HSV; ++c) dv_row[c] += sc.acc_b[r * d.HSV + c];
  }
}

// Pass 1: dK, dV (and, fused, dQ). Two-pass: a task per key block. Fused: a task per (b, kv head,
// class), its key blocks in order, since its dQ rows are added to by every one of them.
void key_pass(const BackwardInputs& in, TensorView dk, TensorView dv, TensorView dq,
              const Context& ctx) {
  const Plan& plan = in.plan;
  const AttentionDims& d = plan.d;
  std::vector<std::vector<KeyBlock>> tasks;
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t hk = 0; hk < d.NH_kv; ++hk)
      for (int64_t rho = 0; rho < plan.step; ++rho) {
        const int64_t nkeys = class_count(rho, d.S, plan.step);
        if (dq.defined()) tasks.emplace_back();
        for (int64_t j0 = 0; j0 < nkeys; j0 += plan.bk) {
          if (!dq.defined()) tasks.emplace_back();
          tasks.back().push_back({b, hk, rho, j0, std::min(plan.bk, nkeys - j0)});
        }
      }
  internal::parallel_for(ctx, static_cast<int64_t>(tasks.size()), [&](int64_t task, int worker) {
    const BackwardScratch sc = backward_scratch(ctx, worker, plan, in.k.is_bf16());
    for (const KeyBlock& kt : tasks[static_cast<size_t>(task)]) key_block(in, kt, sc, dk, dv, dq);
  });
}

// Pass 2's tasks: lists of (query block, head) pairs that must run in one fixed order: usually one
// pair; with a bias broadcast over batch or heads, all pairs that add into the same dBias rows.
std::vector<std::vector<std::pair<size_t, int64_t>>> query_tasks(const BackwardInputs& in,
                                                                 ConstTensorView dbias) {
  const Plan& plan = in.plan;
  const AttentionDims& d = plan.d;
  const int64_t step = plan.step;
  std::vector<std::vector<std::pair<size_t, int64_t>>> tasks;
  if (!(dbias.defined() && (dbias.dim(0) == 1 || dbias.dim(1) == 1))) {
    for (size_t bi = 0; bi < plan.blocks.size(); ++bi)
      for (int64_t h = 0; h < d.NH; ++h) tasks.push_back({{bi, h}});
    return tasks;
  }
  std::vector<int64_t> group_of;  // by (bias_b, bias_h, class, block index within class)
  const int64_t n_bb = dbias.dim(0), n_hh = dbias.dim(1);
  size_t per_class = 0;
  for (const auto& list : in.by_class) per_class = std::max(per_class, list.size());
  group_of.assign(static_cast<size_t>(n_bb * n_hh * step) * per_class, -1);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.NH; ++h)
      for (int64_t rho = 0; rho < step; ++rho) {
        const auto& list = in.by_class[static_cast<size_t>(b * step + rho)];
        for (size_t n = 0; n < list.size(); ++n) {
          const size_t key =
              static_cast<size_t>(((n_bb == 1 ? 0 : b) * n_hh + (n_hh == 1 ? 0 : h)) * step + rho) *
                  per_class +
              n;
          if (group_of[key] < 0) {
            group_of[key] = static_cast<int64_t>(tasks.size());
            tasks.emplace_back();
          }
          tasks[static_cast<size_t>(group_of[key])].emplace_back(list[n], h);
        }
      }
  return tasks;
}

// Pass 2: dQ (and dBias), parallel over query tasks.
void query_pass(const BackwardInputs& in, TensorView dq, TensorView dbias, const Context& ctx) {
  const Plan& plan = in.plan;
  const AttentionDims& d = plan.d;
  const int64_t step = plan.step;
  const auto tasks = query_tasks(in, dbias);
  internal::parallel_for(ctx, static_cast<int64_t>(tasks.size()), [&](int64_t task, int worker) {
    const BackwardScratch sc = backward_scratch(ctx, worker, plan, in.k.is_bf16());
    for (const auto& [bi, h] : tasks[static_cast<size_t>(task)]) {
      const QueryBlock& qb = plan.blocks[bi];
      if (qb.jmin > qb.jmax) continue;
      const HeadViews hv = in.head(qb.b, h);
      prepare_query_block(plan, qb, hv, in.grad(qb.b, h), in.lse, in.D, h, in.scale, sc);
      std::fill(sc.acc_a, sc.acc_a + plan.bq * d.HS, 0.0f);
      for (int64_t j0 = qb.jmin; j0 <= qb.jmax; j0 += plan.bk) {
        const int64_t nk = std::min(plan.bk, qb.jmax + 1 - j0);
        const KeyTile tile = backward_key_tile(plan, hv, qb.rho, j0, nk, sc);
        const TileBand band = gradient_tile(plan, qb, hv, tile, sc);
        add_dq_of_tile(in, qb, tile, band, sc, sc.acc_a);
        if (dbias.defined()) {
          const int64_t bb = dbias.dim(0) == 1 ? 0 : qb.b, hh = dbias.dim(1) == 1 ? 0 : h;
          band.for_each_block(plan, [&](int64_t r0, int64_t rows, ColumnRange cr) {
            for (int64_t r = r0; r < r0 + rows; ++r)
              for (int64_t i = cr.c0; i < std::min(cr.c1, qb.nq); ++i)
                dbias(bb, hh, qb.t0 + step * i, qb.s0 + step * (j0 + r)) += sc.dS[r * plan.bq + i];
          });
        }
      }
      add_scaled_dq(in, qb, h, sc.acc_a, dq);
    }
  });
}

}  // namespace

namespace {

// The backward on checked arguments; bf16 q, k, v are widened to float tile by tile.
template <typename TQ, typename TKV>
void backward_any(BasicView<const TQ> q, BasicView<const TKV> kk, BasicView<const TKV> v,
                  ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                  const AttentionMask& mask, ConstTensorView bias, double scale, TensorView dq,
                  TensorView dk, TensorView dv, TensorView dbias, const Context& ctx) {
  const AttentionDims d = internal::check_attention_backward_args(
      "attention_backward", q, kk, v, out, lse, dout, mask, bias, scale, dq, dk, dv, dbias);
  BasicTensor<TQ> qh;
  BasicTensor<TKV> kh, vh;
  Tensor gh;
  dout = unit_inner(dout, gh);
  OutputSlot dq_slot(dq, true), dk_slot(dk, true), dv_slot(dv, true);
  const Plan plan = make_plan(d, mask);
  const Tensor D = output_dots(out, dout, d, ctx);
  BackwardInputs in{plan,
                    operand(unit_inner(q, qh)),
                    operand(unit_inner(kk, kh)),
                    operand(unit_inner(v, vh)),
                    dout,
                    lse,
                    D,
                    mask,
                    bias,
                    scale,
                    {}};
  in.by_class.resize(static_cast<size_t>(d.B * plan.step));
  for (size_t i = 0; i < plan.blocks.size(); ++i)
    in.by_class[static_cast<size_t>(plan.blocks[i].b * plan.step + plan.blocks[i].rho)].push_back(
        i);
  const bool fused = !dbias.defined() &&
                     d.B * d.NH_kv * plan.step >= internal::g_fused_backward_min_tasks.load();
  key_pass(in, dk_slot.view, dv_slot.view, fused ? dq_slot.view : TensorView{}, ctx);
  if (!fused) query_pass(in, dq_slot.view, dbias, ctx);
  dq_slot.flush();
  dk_slot.flush();
  dv_slot.flush();
}

}  // namespace

void attention_backward(ConstTensorView q, ConstTensorView kk, ConstTensorView v,
                        ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                        const AttentionMask& mask, ConstTensorView bias, double scale,
                        TensorView dq, TensorView dk, TensorView dv, TensorView dbias,
                        const Context& ctx) {
  backward_any(q, kk, v, out, lse, dout, mask, bias, scale, dq, dk, dv, dbias, ctx);
}
void attention_backward(ConstTensorViewBF16 q, ConstTensorViewBF16 kk, ConstTensorViewBF16 v,
                        ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                        const AttentionMask& mask, ConstTensorView bias, double scale,
                        TensorView dq, TensorView dk, TensorView dv, TensorView dbias,
                        const Context& ctx) {
  backward_any(q, kk, v, out, lse, dout, mask, bias, scale, dq, dk, dv, dbias, ctx);
}
void attention_backward(ConstTensorView q, ConstTensorViewBF16 kk, ConstTensorViewBF16 v,
                        ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                        const AttentionMask& mask, ConstTensorView bias, double scale,
                        TensorView dq, TensorView dk, TensorView dv, TensorView dbias,
                        const Context& ctx) {
  backward_any(q, kk, v, out, lse, dout, mask, bias, scale, dq, dk, dv, dbias, ctx);
}

}  // namespace attn::ops
