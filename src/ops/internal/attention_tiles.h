// SPDX-License-Identifier: MIT
// What the fused attention's forward (attention.cc) and backward (attention_backward.cc) share: the
// plan (query blocks per residue class with their key intervals), tile geometry, the score tile,
// scratch carving and the visible-pairs loops for non-finite operands. Internal (src/ops only).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "attn/context.h"
#include "attn/ops/attention.h"
#include "ops/internal/attention_bf16.h"
#include "ops/internal/attention_checks.h"
#include "ops/internal/attention_kernels.h"

namespace attn::ops::tiles {

namespace k = internal::kernels;
using internal::AttentionDims;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// The tiles hold base-2 logits: log2(e) is folded into the query scale, the bias and the ALiBi
// slopes, so the kernels exponentiate with exp2 (see attention_kernels.h). lse leaves and enters in
// natural units.
constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2 = 0.6931471805599453;

using internal::floor_div;
inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
// How many of first, first + step, first + 2·step, ... are below n.
inline int64_t class_count(int64_t first, int64_t n, int64_t step) {
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

// At most this many queries per class: the forward lays scores out as rows, one per query, keys
// along the vector (decoding). Queries on the lanes would leave 15 of 16 columns padding at T = 1.
constexpr int64_t kRowQueries = 8;

struct Plan {
  AttentionDims d;
  int64_t step;    // the classes' modulus: the dilation (T + S for a wider one, residue_classes)
  int64_t bq, bk;  // query and key block sizes
  std::vector<QueryBlock> blocks;
  bool score_rows = false;  // the forward's decoding layout (kRowQueries)
  // The native bf16 forward (attention.cc, forward_checked): q·k and P·V as products of bf16
  // pairs; q is packed unscaled and pair_scale (scale · log2 e) applied to each score tile.
  bool bf16_pairs = false;
  float pair_scale = 0.0f;
};

// The residue classes' modulus and the distance shift they are taken with. A dilation wider than
// the T + S - 1 distances t - s + shift a call spans keeps at most one of them, d* (the multiple of
// the dilation among them): classes modulo T + S, with the shift moved by d*, keep the same pairs
// in T + S classes instead of one class per unit of dilation (2^31 classes took seconds, and the
// backward's per-class lists memory). Without such a multiple, no pair is kept.
struct Classes {
  int64_t step, shift;
};
inline Classes residue_classes(const AttentionDims& d, const AttentionMask& m) {
  const int64_t dilation = std::max<int64_t>(m.dilation, 1), shift = m.query_offset - m.key_offset;
  const int64_t span = std::max<int64_t>(d.T + d.S, 1);
  if (dilation <= span) return {dilation, shift};
  const int64_t lowest = shift - (d.S - 1), highest = shift + d.T - 1;
  const int64_t multiple = ceil_div(lowest, dilation) * dilation;
  // shift = S with no multiple: t - s + S lies in [1, T + S - 1], never ≡ 0 modulo T + S.
  return {span, multiple <= highest ? shift - multiple : d.S};
}

// Block sizes (multiples of kColumnGroup). Full attention: 128 × 128, measured best on AVX-512 (64
// × 128, 128 × 64 and others were 3-10% slower; see docs/kernels.md). Under a window narrower than
// a key tile, 64-query blocks, so that a block's band (64 + window keys) fits one key tile, which
// forward_block then works through band-following: about window + 16 keys per query instead of
// window + bq.
inline Plan make_plan(const AttentionDims& d, const AttentionMask& m) {
  const Classes classes = residue_classes(d, m);
  Plan plan{d, classes.step, 128, 128, {}, false};
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
  plan.score_rows = class_queries <= kRowQueries;
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t rho = 0; rho < plan.step; ++rho) {
      // Query t meets key residue class rho where (t + query_offset) - (s + key_offset) ≡ 0.
      const int64_t shift = classes.shift;
      const int64_t t_first = ((rho - shift) % plan.step + plan.step) % plan.step;
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
          const int64_t p = t + m.query_offset - m.key_offset;  // relative to key 0 (ALiBi)
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
inline ColumnRange visible_columns(const QueryBlock& qb, int64_t j0, int64_t nk) {
  int64_t first = -1, last = -1;
  for (size_t g = 0; g < qb.group_lo.size(); ++g)
    if (qb.group_lo[g] <= j0 + nk - 1 && qb.group_hi[g] >= j0) {
      if (first < 0) first = static_cast<int64_t>(g);
      last = static_cast<int64_t>(g);
    }
  return first < 0 ? ColumnRange{0, 0}
                   : ColumnRange{first * kColumnGroup, (last + 1) * kColumnGroup};
}
inline ColumnRange all_columns(const Plan& plan) { return {0, plan.bq}; }

// A key tile [j0, j0 + nk): fully visible to every valid query of the columns (no element mask)?
inline bool block_fully_visible(const QueryBlock& qb, int64_t j0, int64_t nk, ColumnRange cr) {
  for (int64_t i = cr.c0; i < std::min(cr.c1, qb.nq); ++i)
    if (qb.lo[static_cast<size_t>(i)] > j0 || qb.hi[static_cast<size_t>(i)] < j0 + nk - 1)
      return false;
  return true;
}

// q, k or v as the kernels take it: float, or bf16 (a storage type: widened to float tile by tile,
// or read as pairs by the native bf16 forward). Unit stride along the last dimension.
struct Operand {
  ConstTensorView f;      // defined for float data
  ConstTensorViewBF16 h;  // defined for bf16 data
  bool is_bf16() const { return h.defined(); }
  int64_t stride(int i) const { return is_bf16() ? h.stride(i) : f.stride(i); }
};
inline Operand operand(ConstTensorView x) { return {x, {}}; }
inline Operand operand(ConstTensorViewBF16 x) { return {{}, x}; }

// The rows of q, k or v of one (batch, head): row r at f + r·rs (float) or h + r·rs (bf16).
struct Rows {
  const float* f = nullptr;
  const uint16_t* h = nullptr;  // bf16 bits
  int64_t rs = 0;
  bool is_bf16() const { return h != nullptr; }
  const void* address(int64_t r) const {
    return is_bf16() ? static_cast<const void*>(h + r * rs) : static_cast<const void*>(f + r * rs);
  }
  int64_t element_bytes() const { return is_bf16() ? 2 : 4; }
};

inline Rows rows_of(const Operand& x, int64_t b, int64_t head) {
  const int64_t offset = b * x.stride(0) + head * x.stride(1);
  if (x.is_bf16()) return {nullptr, &x.h.data()[offset].bits, x.stride(2)};
  return {x.f.data() + offset, nullptr, x.stride(2)};
}

// Float rows as the float products read them: row i at p + i·rs.
struct FloatRows {
  const float* p = nullptr;
  int64_t rs = 0;
};

// Rows first, first + step, ... (n of them, len elements each) as float rows: float data in place;
// bf16 widened into buf (n × len).
inline FloatRows float_rows(const Rows& x, int64_t first, int64_t n, int64_t step, int64_t len,
                            float* buf) {
  if (!x.is_bf16()) return {x.f + first * x.rs, step * x.rs};
  k::widen_bf16_rows(x.h + first * x.rs, n, len, step * x.rs, buf, len);
  return {buf, len};
}

// Everything a tile computation needs about one (batch, head) pair.
struct HeadViews {
  Rows q, k, v;       // unit stride along HS (HSV)
  float slope;        // ALiBi slope times log2(e), 0 if none
  const float* bias;  // bias row t, key s at bias + t·bias_ts + s·bias_ss (null if none)
  int64_t bias_ts, bias_ss;
};

inline HeadViews head_views(const Operand& q, const Operand& kk, const Operand& v,
                            const AttentionMask& m, ConstTensorView bias, const AttentionDims& d,
                            int64_t b, int64_t h) {
  const int64_t hk = h / d.group();
  const double slope =
      m.alibi_slopes.empty() ? 0.0 : static_cast<double>(m.alibi_slopes[static_cast<size_t>(h)]);
  HeadViews hv{rows_of(q, b, h),
               rows_of(kk, b, hk),
               rows_of(v, b, hk),
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

// The queries of a block as float rows (bf16 widened into buf, HS floats per row).
inline FloatRows query_rows(const HeadViews& hv, const QueryBlock& qb, int64_t step, int64_t HS,
                            float* buf) {
  return float_rows(hv.q, qb.t0, qb.nq, step, HS, buf);
}

// Qᵀ of a query block, scaled: packed[c][i] = scale · q[t_i][c] (zero for padding).
inline void pack_transposed(FloatRows q, const QueryBlock& qb, int64_t width, int64_t cols,
                            float scale, float* packed) {
  k::pack_transposed(q.p, q.rs, qb.nq, width, cols, scale, packed);
}

// The keys [j0, j0 + nk) of a tile (compressed indices of the block's class) as the products read
// them. The float path: k and v as float rows (in place, or widened from bf16 into scratch). The
// native bf16 forward (Plan::bf16_pairs): k read in place as bf16 pairs (k16); v as pairs of keys
// (2p, 2p + 1) of the class, pair p at v2 + (p - v2_first)·HSV, or, if a value the tile's pairs
// hold is not finite, widened to float rows (v).
struct KeyTile {
  int64_t j0 = 0, nk = 0;
  FloatRows k, v;
  const uint16_t* k16 = nullptr;  // bf16 key rows, k16_rs apart (native only)
  int64_t k16_rs = 0;
  const uint32_t* v2 = nullptr;  // value pairs (native): HSV words per pair
  int64_t v2_first = 0;          // the pair v2 starts with
  bool v_finite = true;          // native: the values of the tile's pairs are all finite
  // Float rows v: true when all nk rows are known to be finite, so that a masked product over a
  // part of the tile needs no scan of its own (band-following tiles set it once per tile).
  bool v_rows_finite = false;
};

// The native forward's value pairs of one (batch, kv head, class), made once and kept by a worker
// for its consecutive query blocks of that head (which would otherwise pair every key tile once per
// query block), when they fit in kMaxBytes; else made tile by tile in scratch.
struct ValuePairs {
  static constexpr int64_t kMaxBytes = int64_t{4} << 20;
  static constexpr int64_t kChunkPairs = 16;  // pairs are made, and their finiteness kept, by chunk
  const uint16_t* source = nullptr;           // the class's first value row (identifies it)
  int64_t lo = 0, hi = 0;  // pairs [lo, hi) are made (chunk multiples, or hi = all pairs)
  std::vector<uint32_t> words;
  std::vector<uint8_t> chunk_finite;
};

// Adds the dense bias to the columns of a transposed score tile (slow path: O(T·S) memory reads are
// inherent).
inline void add_bias(const HeadViews& hv, const QueryBlock& qb, int64_t step, int64_t j0,
                     int64_t nk, int64_t width, ColumnRange cr, float* St) {
  for (int64_t r = 0; r < nk; ++r) {
    const int64_t s = qb.s0 + step * (j0 + r);
    for (int64_t i = cr.c0; i < std::min(cr.c1, qb.nq); ++i)
      St[r * width + i] +=
          static_cast<float>(kLog2e) * hv.bias[(qb.t0 + step * i) * hv.bias_ts + s * hv.bias_ss];
  }
}

// The columns cr of a tile with rows `stride` apart; pointers into the tile then start at column
// cr.c0.
inline k::TileColumns columns(const QueryBlock& qb, int64_t stride, ColumnRange cr) {
  const size_t c0 = static_cast<size_t>(cr.c0);
  return {cr.width(), stride, qb.lo.data() + c0, qb.hi.data() + c0, qb.pos.data() + c0};
}
inline k::TileRows tile_rows(const QueryBlock& qb, int64_t step, int64_t j0, int64_t nk) {
  return {nk, j0, static_cast<double>(qb.s0 + step * j0), static_cast<double>(step)};
}

// Base-2 scores St[r][i] = log2(e) · (scale · q_i · k_{j0+r} (+ bias)) of the tile rows [r0, r0 +
// rn) of kt, before ALiBi and masking, for the columns i in cr (St: the rows from r0, bq apart).
// With col_max (only without a bias), also each of those queries' maximum over the rows in
// col_max[i]. qt: scaled Qᵀ (float), or unscaled Qᵀ pairs (plan.bf16_pairs).
inline void score_tile(const HeadViews& hv, const QueryBlock& qb, const Plan& plan, const float* qt,
                       const KeyTile& kt, int64_t r0, int64_t rn, ColumnRange cr, float* St,
                       float* col_max = nullptr, k::LinePrefetcher* prefetch = nullptr) {
  const int64_t bq = plan.bq;
  if (col_max) std::fill(col_max + cr.c0, col_max + cr.c1, kNegInf);
  if (plan.bf16_pairs) {
    // A(r, p) = key r's pair p, in place; B(p, i) = query i's pair p (the packed Qᵀ words).
    k::gemm_bf16_pairs(rn, cr.width(), plan.d.HS / 2, kt.k16 + r0 * kt.k16_rs, kt.k16_rs, 2,
                       reinterpret_cast<const uint32_t*>(qt) + cr.c0, bq, St + cr.c0, bq,
                       plan.pair_scale, false, col_max ? col_max + cr.c0 : nullptr, prefetch);
  } else if (col_max) {
    k::gemm_bcast_col_max(rn, cr.width(), plan.d.HS, kt.k.p + r0 * kt.k.rs, kt.k.rs, 1, qt + cr.c0,
                          bq, St + cr.c0, bq, col_max + cr.c0, prefetch);
  } else {
    k::gemm_bcast(rn, cr.width(), plan.d.HS, kt.k.p + r0 * kt.k.rs, kt.k.rs, 1, qt + cr.c0, bq,
                  St + cr.c0, bq, false, prefetch);
  }
  if (hv.bias) add_bias(hv, qb, plan.step, kt.j0 + r0, rn, bq, cr, St);
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
  float* kt;  // Kᵀ of a key tile (HS × bk), for the score-rows layout only
  // bf16 inputs: a query block, a key tile's keys and values widened to float; the native path's
  // value pairs and probability pairs (uint32 words).
  float *qf, *kf, *vf;
  uint32_t *v2, *pp;
};
inline Scratch forward_scratch(const Context& ctx, int worker, const Plan& p, bool bf16) {
  const int64_t hsv = std::max<int64_t>(p.d.HSV, 1), pairs = p.bk / 2 + 1;
  const int64_t w = bf16 ? 1 : 0, native = p.bf16_pairs ? 1 : 0;
  const auto a =
      carve_scratch<13>(ctx, worker,
                        {p.d.HS * p.bq, p.bk * p.bq, p.bq * hsv, p.bq, p.bq, p.bq, p.bq,
                         p.score_rows ? p.d.HS * p.bk : 0, w * p.bq * p.d.HS, w * p.bk * p.d.HS,
                         w * p.bk * hsv, native * pairs * hsv, native * pairs * p.bq});
  return {a[0],
          a[1],
          a[2],
          a[3],
          a[4],
          a[5],
          a[6],
          a[7],
          a[8],
          a[9],
          a[10],
          reinterpret_cast<uint32_t*>(a[11]),
          reinterpret_cast<uint32_t*>(a[12])};
}

// Pairs [first, last] of the class's values (rows 2·first .. 2·last + 1, those below nkeys)
// interleaved into out; returns whether they are all finite.
inline bool make_value_pairs(const Plan& plan, const QueryBlock& qb, const HeadViews& hv,
                             int64_t first, int64_t last, uint32_t* out) {
  const int64_t r0 = 2 * first, rows = std::min(2 * last + 2, qb.nkeys) - r0;
  return k::interleave_row_pairs(hv.v.h + (qb.s0 + plan.step * r0) * hv.v.rs, rows, plan.d.HSV,
                                 plan.step * hv.v.rs, out);
}

// Native: points kt at value pairs [p0, p1] (kept in `cache`, or made in sc.v2) and their
// finiteness.
inline void value_pairs_of_tile(const Plan& plan, const QueryBlock& qb, const HeadViews& hv,
                                const Scratch& sc, ValuePairs* cache, int64_t p0, int64_t p1,
                                KeyTile& kt) {
  const int64_t hsv = plan.d.HSV, total = ceil_div(qb.nkeys, 2);
  if (cache == nullptr || 4 * total * hsv > ValuePairs::kMaxBytes) {
    kt.v_finite = make_value_pairs(plan, qb, hv, p0, p1, sc.v2);
    kt.v2 = sc.v2;
    kt.v2_first = p0;
    return;
  }
  constexpr int64_t C = ValuePairs::kChunkPairs;
  const uint16_t* source = hv.v.h + qb.s0 * hv.v.rs;
  if (cache->source != source || cache->words.size() != static_cast<size_t>(total * hsv)) {
    cache->source = source;
    cache->lo = cache->hi = 0;
    cache->words.resize(static_cast<size_t>(total * hsv));
    cache->chunk_finite.assign(static_cast<size_t>(ceil_div(total, C)), 0);
  }
  // The made range grows with the tiles a worker's blocks visit in order; a tile outside it (a run
  // of tasks starting mid-head) starts it afresh at its own chunk.
  if (p0 < cache->lo || p0 > cache->hi) cache->lo = cache->hi = p0 / C * C;
  for (; cache->hi <= p1; cache->hi += C) {
    const int64_t last = std::min(cache->hi + C, total) - 1;
    cache->chunk_finite[static_cast<size_t>(cache->hi / C)] =
        make_value_pairs(plan, qb, hv, cache->hi, last, cache->words.data() + cache->hi * hsv);
  }
  kt.v_finite = true;
  for (int64_t c = p0 / C; c <= p1 / C; ++c)
    kt.v_finite = kt.v_finite && cache->chunk_finite[static_cast<size_t>(c)] != 0;
  kt.v2 = cache->words.data();
  kt.v2_first = 0;
}

// The key tile [j0, j0 + nk) of block qb. Float keys and values are read in place; bf16 ones are
// widened into sc.kf, sc.vf, or, on the native path, keys read in place as pairs and values taken
// as pairs (from `cache` when given; widened into sc.vf instead if one is not finite). Without
// with_values (the probabilities pass), only the keys.
inline KeyTile key_tile(const Plan& plan, const QueryBlock& qb, const HeadViews& hv,
                        const Scratch& sc, int64_t j0, int64_t nk, ValuePairs* cache = nullptr,
                        bool with_values = true) {
  const int64_t step = plan.step, first = qb.s0 + step * j0;
  KeyTile kt;
  kt.j0 = j0;
  kt.nk = nk;
  if (plan.bf16_pairs) {
    kt.k16 = hv.k.h + first * hv.k.rs;
    kt.k16_rs = step * hv.k.rs;
    if (!with_values) return kt;
    value_pairs_of_tile(plan, qb, hv, sc, cache, j0 / 2, (j0 + nk - 1) / 2, kt);
    if (!kt.v_finite) kt.v = float_rows(hv.v, first, nk, step, plan.d.HSV, sc.vf);
    return kt;
  }
  kt.k = float_rows(hv.k, first, nk, step, plan.d.HS, sc.kf);
  if (with_values) kt.v = float_rows(hv.v, first, nk, step, plan.d.HSV, sc.vf);
  return kt;
}

// Keys [a, b] of the tile [j0, j0 + nk) that column group g sees (a > b: none).
inline std::pair<int64_t, int64_t> group_rows(const QueryBlock& qb, size_t g, int64_t j0,
                                              int64_t nk) {
  return {std::max(qb.group_lo[g], j0), std::min(qb.group_hi[g], j0 + nk - 1)};
}

// Does every column group of cr see every key of the tile? Then the tile is one block of work;
// otherwise (the edge of a window band, the diagonal of a causal mask) it is worked through group
// by group.
inline bool tile_is_whole(const QueryBlock& qb, int64_t j0, int64_t nk, ColumnRange cr) {
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

// Are the `rows` rows of `len` floats, `stride` apart, all finite? (The kernel's SIMD scan: this
// file is compiled for the baseline target, where the scan took a sixth of a window forward.)
inline bool rows_finite(const float* p, int64_t rows, int64_t len, int64_t stride) {
  return k::rows_finite(p, rows, len, stride);
}

inline bool sees(const QueryBlock& qb, int64_t i, int64_t j) {
  return qb.lo[static_cast<size_t>(i)] <= j && j <= qb.hi[static_cast<size_t>(i)];
}

// acc[i][c] += Σ_{r : query i sees key j0 + r} W[r][i] · rows[r][c], for the valid queries of
// columns [c0, c1). W rows are w_rs apart, `rows` rows rows_rs apart, acc rows len apart.
inline void add_visible_per_query(const QueryBlock& qb, int64_t c0, int64_t c1, int64_t j0,
                                  int64_t nk, const float* W, int64_t w_rs, const float* rows,
                                  int64_t rows_rs, int64_t len, float* acc) {
  for (int64_t i = c0; i < std::min(c1, qb.nq); ++i)
    for (int64_t r = 0; r < nk; ++r) {
      if (!sees(qb, i, j0 + r)) continue;
      const float w = W[r * w_rs + i];
      for (int64_t c = 0; c < len; ++c) acc[i * len + c] += w * rows[r * rows_rs + c];
    }
}

// acc[r][c] += Σ_{valid i : query i sees key j0 + r} W[r][i] · rows[i][c] (rows: the block's
// queries, rows_rs apart).
inline void add_visible_per_key(const QueryBlock& qb, int64_t j0, int64_t nk, const float* W,
                                int64_t w_rs, const float* rows, int64_t rows_rs, int64_t len,
                                float* acc) {
  for (int64_t r = 0; r < nk; ++r)
    for (int64_t i = 0; i < qb.nq; ++i) {
      if (!sees(qb, i, j0 + r)) continue;
      const float w = W[r * w_rs + i];
      for (int64_t c = 0; c < len; ++c) acc[r * len + c] += w * rows[i * rows_rs + c];
    }
}

// Inputs the kernels read as rows need unit stride along their last dimension; others are copied.
template <typename T>
BasicView<const T> unit_inner(BasicView<const T> v, BasicTensor<std::remove_const_t<T>>& holder) {
  if (!v.defined() || v.dim(-1) <= 1 || v.stride(-1) == 1) return v;
  holder = BasicTensor<std::remove_const_t<T>>::copy_of(v);
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

}  // namespace attn::ops::tiles
