// SPDX-License-Identifier: MIT
// The fused attention's backward (FlashAttention-2, two deterministic passes), on the plan and
// tiles of attention_tiles.h; tested against attention_reference.cc.
#include <algorithm>
#include <cmath>
#include <vector>

#include "attn/ops/attention.h"
#include "core/parallel.h"
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

struct BackwardScratch {
  float *qt, *dot, *P, *dS, *acc_a, *acc_b, *lse, *D;
};
BackwardScratch backward_scratch(const Context& ctx, int worker, const Plan& p) {
  const int64_t hs = std::max<int64_t>(p.d.HS, p.d.HSV), rows = std::max(p.bq, p.bk);
  const auto a = carve_scratch<8>(
      ctx, worker,
      {p.d.HS * p.bq, p.d.HSV * p.bq, p.bk * p.bq, p.bk * p.bq, rows * hs, rows * hs, p.bq, p.bq});
  return {a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]};
}

struct GradInputs {
  const float* dout;  // rows of (b, h) at dout + t·dout_rs
  int64_t dout_rs;
};

// Packs what a query block needs once per (block, head): scaled Qᵀ, dOᵀ, lse and D (padding:
// zeros).
void prepare_query_block(const Plan& plan, const QueryBlock& qb, const HeadViews& hv,
                         const GradInputs& g, ConstTensorView lse, const Tensor& D, int64_t h,
                         double scale, const BackwardScratch& sc) {
  pack_transposed(hv.q, hv.q_rs, qb, plan.step, plan.bq, plan.d.HS,
                  static_cast<float>(scale * kLog2e), sc.qt);
  pack_transposed(g.dout, g.dout_rs, qb, plan.step, plan.bq, plan.d.HSV, 1.0f, sc.dot);
  for (int64_t i = 0; i < plan.bq; ++i) {
    const int64_t t = qb.t0 + plan.step * i;
    sc.lse[i] = i < qb.nq ? static_cast<float>(kLog2e) * lse(qb.b, h, t) : 0.0f;
    sc.D[i] = i < qb.nq ? D(qb.b, h, t) : 0.0f;
  }
}

// P (sc.P) and dS (sc.dS) of one tile, both transposed [key][query]. Returns whether some valid
// query of the block does not see some key of the tile.
bool gradient_tile(const Plan& plan, const QueryBlock& qb, const HeadViews& hv, int64_t j0,
                   int64_t nk, const BackwardScratch& sc) {
  const bool masked = !block_fully_visible(qb, j0, nk, all_columns(plan));
  score_tile(hv, qb, plan, sc.qt, j0, nk, all_columns(plan), sc.P);
  k::probs_tile(sc.P, tile_rows(qb, plan.step, j0, nk), columns(qb, plan.bq, all_columns(plan)),
                masked, hv.slope, sc.lse);
  k::gemm_bcast(nk, plan.bq, plan.d.HSV, hv.v + (qb.s0 + plan.step * j0) * hv.v_rs,
                plan.step * hv.v_rs, 1, sc.dot, plan.bq, sc.dS, plan.bq, false);
  k::softmax_grad_tile(sc.P, sc.dS, nk, plan.bq, sc.D);
  return masked;
}

}  // namespace

void attention_backward(ConstTensorView q, ConstTensorView kk, ConstTensorView v,
                        ConstTensorView out, ConstTensorView lse, ConstTensorView dout,
                        const AttentionMask& mask, ConstTensorView bias, double scale,
                        TensorView dq, TensorView dk, TensorView dv, TensorView dbias,
                        const Context& ctx) {
  const AttentionDims d = internal::check_attention_backward_args(
      "attention_backward", q, kk, v, out, lse, dout, mask, bias, scale, dq, dk, dv, dbias);
  Tensor qh, kh, vh, gh;
  q = unit_inner(q, qh);
  kk = unit_inner(kk, kh);
  v = unit_inner(v, vh);
  dout = unit_inner(dout, gh);
  OutputSlot dq_slot(dq, true), dk_slot(dk, true), dv_slot(dv, true);
  const Plan plan = make_plan(d, mask);
  const int64_t step = plan.step;

  // D[b, h, t] = dO_t · O_t
  Tensor D(Shape{d.B, d.NH, d.T});
  internal::parallel_for(ctx, d.B * d.NH, [&](int64_t bh, int) {
    const int64_t b = bh / d.NH, h = bh % d.NH;
    for (int64_t t = 0; t < d.T; ++t) {
      double acc = 0.0;
      for (int64_t c = 0; c < d.HSV; ++c)
        acc += static_cast<double>(dout(b, h, t, c)) * static_cast<double>(out(b, h, t, c));
      D(b, h, t) = static_cast<float>(acc);
    }
  });
  auto grad_inputs = [&](int64_t b, int64_t h) {
    return GradInputs{dout.data() + b * dout.stride(0) + h * dout.stride(1), dout.stride(2)};
  };

  // Query blocks of each (batch, class), in order.
  std::vector<std::vector<size_t>> by_class(static_cast<size_t>(d.B * step));
  for (size_t i = 0; i < plan.blocks.size(); ++i)
    by_class[static_cast<size_t>(plan.blocks[i].b * step + plan.blocks[i].rho)].push_back(i);

  // Pass 1: dK, dV. Tasks: (b, kv head, class, key block).
  struct KeyTask {
    int64_t b, hk, rho, j0, nk;
  };
  std::vector<KeyTask> key_tasks;
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t hk = 0; hk < d.NH_kv; ++hk)
      for (int64_t rho = 0; rho < step; ++rho) {
        const int64_t nkeys = class_count(rho, d.S, step);
        for (int64_t j0 = 0; j0 < nkeys; j0 += plan.bk)
          key_tasks.push_back({b, hk, rho, j0, std::min(plan.bk, nkeys - j0)});
      }
  const TensorView dkv = dk_slot.view, dvv = dv_slot.view;
  internal::parallel_for(
      ctx, static_cast<int64_t>(key_tasks.size()), [&](int64_t task, int worker) {
        const KeyTask& kt = key_tasks[static_cast<size_t>(task)];
        const BackwardScratch sc = backward_scratch(ctx, worker, plan);
        std::fill(sc.acc_a, sc.acc_a + kt.nk * d.HS, 0.0f);   // dK
        std::fill(sc.acc_b, sc.acc_b + kt.nk * d.HSV, 0.0f);  // dV
        for (int64_t h = kt.hk * d.group(); h < (kt.hk + 1) * d.group(); ++h) {
          const HeadViews hv = head_views(q, kk, v, mask, bias, d, kt.b, h);
          const GradInputs g = grad_inputs(kt.b, h);
          for (size_t bi : by_class[static_cast<size_t>(kt.b * step + kt.rho)]) {
            const QueryBlock& qb = plan.blocks[bi];
            if (qb.jmin > qb.jmax || qb.jmax < kt.j0 || qb.jmin > kt.j0 + kt.nk - 1) continue;
            prepare_query_block(plan, qb, hv, g, lse, D, h, scale, sc);
            const bool masked = gradient_tile(plan, qb, hv, kt.j0, kt.nk, sc);
            // dV[r][c] += Σ_i P[r][i] dO[t_i][c];  dK[r][c] += Σ_i dS[r][i] q[t_i][c]
            const float* dout_rows = g.dout + qb.t0 * g.dout_rs;
            const float* q_rows = hv.q + qb.t0 * hv.q_rs;
            if (masked && !(rows_finite(dout_rows, qb.nq, d.HSV, step * g.dout_rs) &&
                            rows_finite(q_rows, qb.nq, d.HS, step * hv.q_rs))) {
              add_visible_per_key(qb, kt.j0, kt.nk, sc.P, plan.bq, dout_rows, step * g.dout_rs,
                                  d.HSV, sc.acc_b);
              add_visible_per_key(qb, kt.j0, kt.nk, sc.dS, plan.bq, q_rows, step * hv.q_rs, d.HS,
                                  sc.acc_a);
              continue;
            }
            k::gemm_bcast(kt.nk, d.HSV, qb.nq, sc.P, plan.bq, 1, dout_rows, step * g.dout_rs,
                          sc.acc_b, d.HSV, true);
            k::gemm_bcast(kt.nk, d.HS, qb.nq, sc.dS, plan.bq, 1, q_rows, step * hv.q_rs, sc.acc_a,
                          d.HS, true);
          }
        }
        for (int64_t r = 0; r < kt.nk; ++r) {
          const int64_t s = kt.rho + step * (kt.j0 + r);
          for (int64_t c = 0; c < d.HS; ++c)
            dkv(kt.b, kt.hk, s, c) += static_cast<float>(scale) * sc.acc_a[r * d.HS + c];
          for (int64_t c = 0; c < d.HSV; ++c) dvv(kt.b, kt.hk, s, c) += sc.acc_b[r * d.HSV + c];
        }
      });

  // Pass 2: dQ (and dBias). A task is a list of (query block, head) pairs that must run in one
  // fixed order: usually one pair; with a bias broadcast over batch or heads, all pairs that add
  // into the same dBias rows.
  std::vector<std::vector<std::pair<size_t, int64_t>>> query_tasks;
  if (dbias.defined() && (dbias.dim(0) == 1 || dbias.dim(1) == 1)) {
    std::vector<std::vector<std::pair<size_t, int64_t>>> groups;
    std::vector<int64_t> group_of;  // by (bias_b, bias_h, class, block index within class)
    const int64_t n_bb = dbias.dim(0), n_hh = dbias.dim(1);
    const size_t per_class =
        by_class.empty()
            ? 0
            : std::max_element(by_class.begin(), by_class.end(), [](const auto& x, const auto& y) {
                return x.size() < y.size();
              })->size();
    group_of.assign(static_cast<size_t>(n_bb * n_hh * step) * per_class, -1);
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t h = 0; h < d.NH; ++h)
        for (int64_t rho = 0; rho < step; ++rho) {
          const auto& list = by_class[static_cast<size_t>(b * step + rho)];
          for (size_t n = 0; n < list.size(); ++n) {
            const size_t key =
                static_cast<size_t>(((n_bb == 1 ? 0 : b) * n_hh + (n_hh == 1 ? 0 : h)) * step +
                                    rho) *
                    per_class +
                n;
            if (group_of[key] < 0) {
              group_of[key] = static_cast<int64_t>(query_tasks.size());
              query_tasks.emplace_back();
            }
            query_tasks[static_cast<size_t>(group_of[key])].emplace_back(list[n], h);
          }
        }
  } else {
    for (size_t bi = 0; bi < plan.blocks.size(); ++bi)
      for (int64_t h = 0; h < d.NH; ++h) query_tasks.push_back({{bi, h}});
  }
  const TensorView dqv = dq_slot.view;
  internal::parallel_for(
      ctx, static_cast<int64_t>(query_tasks.size()), [&](int64_t task, int worker) {
        const BackwardScratch sc = backward_scratch(ctx, worker, plan);
        for (const auto& [bi, h] : query_tasks[static_cast<size_t>(task)]) {
          const QueryBlock& qb = plan.blocks[bi];
          if (qb.jmin > qb.jmax) continue;
          const HeadViews hv = head_views(q, kk, v, mask, bias, d, qb.b, h);
          prepare_query_block(plan, qb, hv, grad_inputs(qb.b, h), lse, D, h, scale, sc);
          std::fill(sc.acc_a, sc.acc_a + plan.bq * d.HS, 0.0f);
          for (int64_t j0 = qb.jmin; j0 <= qb.jmax; j0 += plan.bk) {
            const int64_t nk = std::min(plan.bk, qb.jmax + 1 - j0);
            const bool masked = gradient_tile(plan, qb, hv, j0, nk, sc);
            // dQ[i][c] += Σ_r dS[r][i] k[r][c]
            const float* keys = hv.k + (qb.s0 + step * j0) * hv.k_rs;
            if (masked && !rows_finite(keys, nk, d.HS, step * hv.k_rs))
              add_visible_per_query(qb, 0, plan.bq, j0, nk, sc.dS, plan.bq, keys, step * hv.k_rs,
                                    d.HS, sc.acc_a);
            else
              k::gemm_bcast(plan.bq, d.HS, nk, sc.dS, 1, plan.bq, keys, step * hv.k_rs, sc.acc_a,
                            d.HS, true);
            if (dbias.defined()) {
              const int64_t bb = dbias.dim(0) == 1 ? 0 : qb.b, hh = dbias.dim(1) == 1 ? 0 : h;
              for (int64_t r = 0; r < nk; ++r)
                for (int64_t i = 0; i < qb.nq; ++i)
                  dbias(bb, hh, qb.t0 + step * i, qb.s0 + step * (j0 + r)) +=
                      sc.dS[r * plan.bq + i];
            }
          }
          for (int64_t i = 0; i < qb.nq; ++i)
            for (int64_t c = 0; c < d.HS; ++c)
              dqv(qb.b, h, qb.t0 + step * i, c) +=
                  static_cast<float>(scale) * sc.acc_a[i * d.HS + c];
        }
      });
  dq_slot.flush();
  dk_slot.flush();
  dv_slot.flush();
}
}  // namespace attn::ops
