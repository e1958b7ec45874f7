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
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "attn/ops/attention.h"
#include "core/parallel.h"
#include "ops/internal/attention_checks.h"
#include "ops/internal/attention_kernels.h"

namespace attn::ops {

namespace {

namespace k = internal::kernels;
using internal::AttentionDims;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// The tiles hold base-2 logits: log2(e) is folded into the query scale, the bias and the ALiBi
// slopes, so the kernels exponentiate with exp2 (see attention_kernels.h). lse leaves and enters in
// natural units.
constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2 = 0.6931471805599453;

using internal::floor_div;
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
// How many of first, first + step, first + 2·step, ... are below n.
int64_t class_count(int64_t first, int64_t n, int64_t step) {
  return first < n ? (n - 1 - first) / step + 1 : 0;
}

// One block of queries of one residue class: its queries t = t0 + step·i and their key intervals in
// compressed key indices j (key s = s0 + step·j).
struct QueryBlock {
  int64_t b, rho, t0, nq;       // batch, class, first query, valid queries
  int64_t s0, nkeys;            // first key of the class, keys in the class
  int64_t jmin, jmax;           // union of the intervals (jmin > jmax: no visible key)
  std::vector<int32_t> lo, hi;  // width entries; padding repeats query 0's interval
  std::vector<float> pos;       // query positions (for ALiBi)
  // Per group of kColumnGroup query columns, the union of its valid queries' intervals (lo > hi:
  // none), so that a key tile is multiplied only against the column groups that see some of it.
  std::vector<int64_t> group_lo, group_hi;
};

// Column granularity of band-following tiles: the widest x86 vector (and a multiple of every
// other).
constexpr int64_t kColumnGroup = 16;

// Query columns [c0, c1) of a block (multiples of kColumnGroup) that a tile touches.
struct ColumnRange {
  int64_t c0, c1;
  int64_t width() const { return c1 - c0; }
};

struct Plan {
  AttentionDims d;
  int64_t step;    // dilation
  int64_t bq, bk;  // query and key block sizes
  std::vector<QueryBlock> blocks;
};

// Block sizes (multiples of kColumnGroup). Full attention: 128 × 128, measured best on AVX-512 (64
// × 128, 128 × 64 and others were 3-10% slower; see docs/kernels.md). Under a window narrower than
// a key tile, 64-query blocks, so that a block's band (64 + window keys) fits one key tile, which
// forward_block then works through band-following: about window + 16 keys per query instead of
// window + bq.
Plan make_plan(const AttentionDims& d, const AttentionMask& m) {
  Plan plan{d, std::max<int64_t>(m.dilation, 1), 128, 128, {}};
  if (m.window_left >= 0 || m.window_right >= 0) {
    const int64_t width =
        (m.window_left < 0 ? d.S : m.window_left) + (m.window_right < 0 ? d.S : m.window_right) + 1;
    if (width / plan.step + 1 < plan.bk) plan.bq = 64;
  }
  // Short sequences (T = 12 in a small model's batch): a block no wider than the queries of a class
  // need, rounded up to a column group, instead of padding every block to 128 columns.
  const int64_t class_queries = ceil_div(d.T, plan.step);
  plan.bq =
      std::min(plan.bq, ceil_div(std::max<int64_t>(class_queries, 1), kColumnGroup) * kColumnGroup);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t rho = 0; rho < plan.step; ++rho) {
      const int64_t t_first = ((rho - m.query_offset) % plan.step + plan.step) % plan.step;
      const int64_t count_q = class_count(t_first, d.T, plan.step);
      const int64_t nkeys = class_count(rho, d.S, plan.step);
      for (int64_t q0 = 0; q0 < count_q; q0 += plan.bq) {
        QueryBlock qb{b,
                      rho,
                      t_first + q0 * plan.step,
                      std::min(plan.bq, count_q - q0),
                      rho,
                      nkeys,
                      std::numeric_limits<int64_t>::max(),
                      -1,
                      {},
                      {},
                      {},
                      {},
                      {}};
        const size_t groups = static_cast<size_t>(plan.bq / kColumnGroup);
        qb.group_lo.assign(groups, std::numeric_limits<int64_t>::max());
        qb.group_hi.assign(groups, -1);
        qb.lo.resize(static_cast<size_t>(plan.bq));
        qb.hi.resize(static_cast<size_t>(plan.bq));
        qb.pos.resize(static_cast<size_t>(plan.bq));
        for (int64_t i = 0; i < plan.bq; ++i) {
          const int64_t t = qb.t0 + plan.step * std::min(i, qb.nq - 1);
          const int64_t p = t + m.query_offset;
          const auto [lo, hi] = m.key_interval(b, t, d.S);
          int64_t jlo = ceil_div(lo - rho, plan.step), jhi = floor_div(hi - rho, plan.step);
          jlo = std::max<int64_t>(jlo, 0);
          jhi = std::min(jhi, nkeys - 1);
          if (jlo > jhi) jlo = 1, jhi = 0;  // empty
          qb.lo[static_cast<size_t>(i)] = static_cast<int32_t>(jlo);
          qb.hi[static_cast<size_t>(i)] = static_cast<int32_t>(jhi);
          qb.pos[static_cast<size_t>(i)] = static_cast<float>(p);
          if (i < qb.nq && jlo <= jhi) {
            qb.jmin = std::min(qb.jmin, jlo);
            qb.jmax = std::max(qb.jmax, jhi);
            const size_t g = static_cast<size_t>(i / kColumnGroup);
            qb.group_lo[g] = std::min(qb.group_lo[g], jlo);
            qb.group_hi[g] = std::max(qb.group_hi[g], jhi);
          }
        }
        plan.blocks.push_back(std::move(qb));
      }
    }
  return plan;
}

// The column groups of a query block that see any key of the tile [j0, j0 + nk): the first to the
// last (empty: c0 = c1). Intervals move monotonically with the query for every mask kind, so the
// groups in between see the tile too; were one not to, it would only be computed and masked.
ColumnRange visible_columns(const QueryBlock& qb, int64_t j0, int64_t nk) {
  int64_t first = -1, last = -1;
  for (size_t g = 0; g < qb.group_lo.size(); ++g)
    if (qb.group_lo[g] <= j0 + nk - 1 && qb.group_hi[g] >= j0) {
      if (first < 0) first = static_cast<int64_t>(g);
      last = static_cast<int64_t>(g);
    }
  return first < 0 ? ColumnRange{0, 0}
                   : ColumnRange{first * kColumnGroup, (last + 1) * kColumnGroup};
}
ColumnRange all_columns(const Plan& plan) { return {0, plan.bq}; }

// A key tile [j0, j0 + nk): fully visible to every valid query of the columns (no element mask)?
bool block_fully_visible(const QueryBlock& qb, int64_t j0, int64_t nk, ColumnRange cr) {
  for (int64_t i = cr.c0; i < std::min(cr.c1, qb.nq); ++i)
    if (qb.lo[static_cast<size_t>(i)] > j0 || qb.hi[static_cast<size_t>(i)] < j0 + nk - 1)
      return false;
  return true;
}

// Everything a tile computation needs about one (batch, head) pair.
struct HeadViews {
  const float* q;  // row t at q + t·q_rs (unit stride along HS)
  const float* k;
  const float* v;
  int64_t q_rs, k_rs, v_rs;
  float slope;        // ALiBi slope times log2(e), 0 if none
  const float* bias;  // bias row t, key s at bias + t·bias_ts + s·bias_ss (null if none)
  int64_t bias_ts, bias_ss;
};

HeadViews head_views(ConstTensorView q, ConstTensorView kk, ConstTensorView v,
                     const AttentionMask& m, ConstTensorView bias, const AttentionDims& d,
                     int64_t b, int64_t h) {
  const int64_t hk = h / d.group();
  const double slope =
      m.alibi_slopes.empty() ? 0.0 : static_cast<double>(m.alibi_slopes[static_cast<size_t>(h)]);
  HeadViews hv{q.data() + b * q.stride(0) + h * q.stride(1),
               kk.data() + b * kk.stride(0) + hk * kk.stride(1),
               v.data() + b * v.stride(0) + hk * v.stride(1),
               q.stride(2),
               kk.stride(2),
               v.stride(2),
               static_cast<float>(kLog2e * slope),
               nullptr,
               0,
               0};
  if (bias.defined()) {
    hv.bias = bias.data() + (bias.dim(0) == 1 ? 0 : b) * bias.stride(0) +
              (bias.dim(1) == 1 ? 0 : h) * bias.stride(1);
    hv.bias_ts = bias.stride(2);
    hv.bias_ss = bias.stride(3);
  }
  return hv;
}

// Qᵀ of a query block, scaled: packed[c][i] = scale · q[t_i][c] (zero for padding).
void pack_transposed(const float* rows, int64_t row_stride, const QueryBlock& qb, int64_t step,
                     int64_t width, int64_t cols, float scale, float* packed) {
  k::pack_transposed(rows + qb.t0 * row_stride, step * row_stride, qb.nq, width, cols, scale,
                     packed);
}

// Adds the dense bias to the columns of a transposed score tile (slow path: O(T·S) memory reads are
// inherent).
void add_bias(const HeadViews& hv, const QueryBlock& qb, int64_t step, int64_t j0, int64_t nk,
              int64_t width, ColumnRange cr, float* St) {
  for (int64_t r = 0; r < nk; ++r) {
    const int64_t s = qb.s0 + step * (j0 + r);
    for (int64_t i = cr.c0; i < std::min(cr.c1, qb.nq); ++i)
      St[r * width + i] +=
          static_cast<float>(kLog2e) * hv.bias[(qb.t0 + step * i) * hv.bias_ts + s * hv.bias_ss];
  }
}

// The columns cr of a tile with rows `stride` apart; pointers into the tile then start at column
// cr.c0.
k::TileColumns columns(const QueryBlock& qb, int64_t stride, ColumnRange cr) {
  const size_t c0 = static_cast<size_t>(cr.c0);
  return {cr.width(), stride, qb.lo.data() + c0, qb.hi.data() + c0, qb.pos.data() + c0};
}
k::TileRows tile_rows(const QueryBlock& qb, int64_t step, int64_t j0, int64_t nk) {
  return {nk, j0, static_cast<double>(qb.s0 + step * j0), static_cast<double>(step)};
}

// Base-2 scores St[r][i] = log2(e) · (scale · q_i · k_{j0+r} (+ bias)) of one tile, before ALiBi
// and masking, for the columns i in cr (St rows are bq apart). With col_max (only without a bias),
// also each of those queries' maximum over the tile in col_max[i].
void score_tile(const HeadViews& hv, const QueryBlock& qb, const Plan& plan, const float* qt,
                int64_t j0, int64_t nk, ColumnRange cr, float* St, float* col_max = nullptr,
                k::LinePrefetcher* prefetch = nullptr) {
  const int64_t step = plan.step, bq = plan.bq;
  const float* keys = hv.k + (qb.s0 + step * j0) * hv.k_rs;
  if (col_max) {
    std::fill(col_max + cr.c0, col_max + cr.c1, kNegInf);
    k::gemm_bcast_col_max(nk, cr.width(), plan.d.HS, keys, step * hv.k_rs, 1, qt + cr.c0, bq,
                          St + cr.c0, bq, col_max + cr.c0, prefetch);
  } else {
    k::gemm_bcast(nk, cr.width(), plan.d.HS, keys, step * hv.k_rs, 1, qt + cr.c0, bq, St + cr.c0,
                  bq, false, prefetch);
  }
  if (hv.bias) add_bias(hv, qb, step, j0, nk, bq, cr, St);
}

// Splits one per-worker scratch buffer into consecutive arrays of the given sizes.
template <size_t N>
std::array<float*, N> carve_scratch(const Context& ctx, int worker,
                                    const std::array<int64_t, N>& sizes) {
  int64_t total = 0;
  for (int64_t n : sizes) total += n;
  float* base = ctx.scratch(worker, total);
  std::array<float*, N> parts{};
  for (size_t i = 0; i < N; ++i) {
    parts[i] = base;
    base += sizes[i];
  }
  return parts;
}

struct Scratch {
  float *qt, *St, *acc, *m, *l, *alpha, *tile_max;
};
Scratch forward_scratch(const Context& ctx, int worker, const Plan& p) {
  const auto a = carve_scratch<7>(
      ctx, worker,
      {p.d.HS * p.bq, p.bk * p.bq, p.bq * std::max<int64_t>(p.d.HSV, 1), p.bq, p.bq, p.bq, p.bq});
  return {a[0], a[1], a[2], a[3], a[4], a[5], a[6]};
}

// Keys [a, b] of the tile [j0, j0 + nk) that column group g sees (a > b: none).
std::pair<int64_t, int64_t> group_rows(const QueryBlock& qb, size_t g, int64_t j0, int64_t nk) {
  return {std::max(qb.group_lo[g], j0), std::min(qb.group_hi[g], j0 + nk - 1)};
}

// Does every column group of cr see every key of the tile? Then the tile is one block of work;
// otherwise (the edge of a window band, the diagonal of a causal mask) it is worked through group
// by group.
bool tile_is_whole(const QueryBlock& qb, int64_t j0, int64_t nk, ColumnRange cr) {
  for (int64_t c = cr.c0; c < cr.c1; c += kColumnGroup) {
    const auto [a, b] = group_rows(qb, static_cast<size_t>(c / kColumnGroup), j0, nk);
    if (a != j0 || b != j0 + nk - 1) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Non-finite inputs (docs/masks.md): a hidden key is never mixed into a query's results. The tile
// products multiply every (key, query) pair of a tile and rely on hidden pairs having weight 0, but
// 0 · NaN = NaN: so a tile with hidden pairs whose operand rows are not all finite takes these
// plain loops over the visible pairs instead (rare: only such inputs pay for it).

// Are the `rows` rows of `len` floats, `stride` apart, all finite? (Exponent bits all ones means
// inf or NaN; integer tests vectorise.)
bool rows_finite(const float* p, int64_t rows, int64_t len, int64_t stride) {
  uint32_t bad = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < len; ++c) {
      uint32_t bits;
      std::memcpy(&bits, p + r * stride + c, sizeof bits);
      bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
    }
  return bad == 0;
}

bool sees(const QueryBlock& qb, int64_t i, int64_t j) {
  return qb.lo[static_cast<size_t>(i)] <= j && j <= qb.hi[static_cast<size_t>(i)];
}

// acc[i][c] += Σ_{r : query i sees key j0 + r} W[r][i] · rows[r][c], for the valid queries of
// columns [c0, c1). W rows are w_rs apart, `rows` rows rows_rs apart, acc rows len apart.
void add_visible_per_query(const QueryBlock& qb, int64_t c0, int64_t c1, int64_t j0, int64_t nk,
                           const float* W, int64_t w_rs, const float* rows, int64_t rows_rs,
                           int64_t len, float* acc) {
  for (int64_t i = c0; i < std::min(c1, qb.nq); ++i)
    for (int64_t r = 0; r < nk; ++r) {
      if (!sees(qb, i, j0 + r)) continue;
      const float w = W[r * w_rs + i];
      for (int64_t c = 0; c < len; ++c) acc[i * len + c] += w * rows[r * rows_rs + c];
    }
}

// acc[r][c] += Σ_{valid i : query i sees key j0 + r} W[r][i] · rows[i][c] (rows: the block's
// queries, rows_rs apart).
void add_visible_per_key(const QueryBlock& qb, int64_t j0, int64_t nk, const float* W, int64_t w_rs,
                         const float* rows, int64_t rows_rs, int64_t len, float* acc) {
  for (int64_t r = 0; r < nk; ++r)
    for (int64_t i = 0; i < qb.nq; ++i) {
      if (!sees(qb, i, j0 + r)) continue;
      const float w = W[r * w_rs + i];
      for (int64_t c = 0; c < len; ++c) acc[r * len + c] += w * rows[i * rows_rs + c];
    }
}

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

// Inputs the kernels read as rows need unit stride along their last dimension; others are copied.
ConstTensorView unit_inner(ConstTensorView v, Tensor& holder) {
  if (!v.defined() || v.dim(-1) <= 1 || v.stride(-1) == 1) return v;
  holder = Tensor::copy_of(v);
  return holder.view();
}

// Outputs written through a contiguous temporary when their inner stride is not 1.
struct OutputSlot {
  TensorView target;
  Tensor temp;
  TensorView view;
  OutputSlot(TensorView t, bool accumulate) : target(t), view(t) {
    if (t.defined() && t.dim(-1) > 1 && t.stride(-1) != 1) {
      temp = accumulate ? Tensor::copy_of(t) : Tensor(t.shape());
      view = temp.view();
    }
  }
  void flush() {
    if (temp.defined()) copy(ConstTensorView(temp.view()), target);
  }
};

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

// ---------------------------------------------------------------------------------------------------
// Backward (FlashAttention-2). The forward was S = scale·QKᵀ + M, P = exp(S − lse), O = P V. So,
// tile by tile, with D_t = dO_t · O_t (one dot product per query, computed first):
//   P = exp(S − lse) (recomputed), dP = dO Vᵀ, dS = P ⊙ (dP − D),
//   dV += Pᵀ dO,  dK += scale · dSᵀ Q   (pass 1, parallel over key blocks: each task owns its dK,
//   dV rows) dQ += scale · dS K,  dBias += dS     (pass 2, parallel over query blocks: each task
//   owns its dQ rows)
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
