// SPDX-License-Identifier: MIT
// SIMD building blocks of the fused attention (src/ops/attention_kernels.cc, Highway with runtime
// dispatch). Internal: the only place besides that file that knows about vector code is nothing.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace attn::internal::kernels {

// Rows of memory a worker will read next (the next task's fresh q, k and v rows), fetched into L2 a
// line at a time while the current task computes: the micro-kernels credit it with the
// multiply-adds they run, every few steps along K, and it issues one line per `fmas_per_line` of
// them, so the fetches spread evenly over the task. Issued in bursts (a task's worth at its start,
// or a register tile's worth at its end) they stalled on the core's few outstanding-miss slots (see
// docs/kernels.md).
struct LinePrefetcher {
  struct Rows {
    const char* base;
    int64_t rows, lines, stride;  // rows, 64-byte lines per row, bytes between rows
  };
  static constexpr size_t kMaxRanges = 3;
  std::array<Rows, kMaxRanges> ranges{};
  size_t n_ranges = 0, range = 0;  // ranges added, range being issued
  int64_t row = 0, line = 0;       // next line to issue within that range
  int64_t total_lines = 0, budget = 0, fmas_per_line = 1;

  // Adds `rows` rows of `row_floats` floats, `stride_floats` apart (ignored when empty or when
  // full).
  void add(const float* p, int64_t rows, int64_t row_floats, int64_t stride_floats) {
    constexpr auto f = static_cast<int64_t>(sizeof(float));
    add_bytes(p, rows, row_floats * f, stride_floats * f);
  }
  // The same in bytes (rows of any element type).
  void add_bytes(const void* p, int64_t rows, int64_t row_bytes, int64_t stride_bytes) {
    if (p == nullptr || rows <= 0 || row_bytes <= 0 || n_ranges == kMaxRanges) return;
    const int64_t lines_per_row = (row_bytes + 63) / 64;
    ranges[n_ranges++] = {static_cast<const char*>(p), rows, lines_per_row, stride_bytes};
    total_lines += rows * lines_per_row;
  }
  // Spreads the lines added so far over a task of about `task_fmas` multiply-adds.
  void pace(double task_fmas) {
    if (total_lines > 0)
      fmas_per_line =
          std::max<int64_t>(1, static_cast<int64_t>(task_fmas / static_cast<double>(total_lines)));
  }
  // Credits `fmas` multiply-adds of work and issues the lines they pay for.
  void credit(int64_t fmas) {
    budget += fmas;
    while (budget >= fmas_per_line && range < n_ranges) {
      const Rows& r = ranges[range];
      __builtin_prefetch(r.base + row * r.stride + line * 64, /*rw=*/0, /*locality: L2=*/1);
      budget -= fmas_per_line;
      if (++line == r.lines) {
        line = 0;
        if (++row == r.rows) row = 0, ++range;
      }
    }
  }
};

// C[r][c] (+)= Σ_k A[r·a_rs + k·a_ks] · B[k·b_rs + c]   for r < M, c < N, k < K.
// A is read by broadcasting single elements (any strides); B and C rows are read as vectors (unit
// stride along c). Register-tiled: 6 rows × 2 or 4 vectors of accumulators. C is overwritten unless
// accumulate. prefetch (optional) is credited with the multiply-adds as they run.
void gemm_bcast(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_ks,
                const float* B, int64_t b_rs, float* C, int64_t c_rs, bool accumulate,
                LinePrefetcher* prefetch = nullptr);

// gemm_bcast with accumulate = false that also folds each column's maximum into col_max[c] (N
// entries): col_max[c] = max(col_max[c], max_r C[r][c]), taken from the accumulators before they
// leave registers.
void gemm_bcast_col_max(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_ks,
                        const float* B, int64_t b_rs, float* C, int64_t c_rs, float* col_max,
                        LinePrefetcher* prefetch = nullptr);

// Per-query column data for one tile of transposed scores St[r][i] (r: key of the block, i: query).
struct TileColumns {
  int64_t width;          // number of query columns (a multiple of the vector length)
  int64_t stride;         // distance between rows of the tile (>= width)
  const int32_t* lo;      // first visible key index per query (compressed key index)
  const int32_t* hi;      // last visible key index per query
  const float* position;  // query position p_i on the key axis, for ALiBi (may be null)
};
// Key rows of the tile: compressed indices j0 .. j0+rows-1 at positions key_pos0 + key_step·r.
struct TileRows {
  int64_t rows, j0;
  double key_pos0, key_step;
};

// Scores in these tiles are base-2 logits: the caller folds log2(e) into the query scale, the bias
// and the ALiBi slope, so that every exponential is an exp2 (cheaper than exp: no range-reduction
// multiply), and m, lse below are in log2 units too.
//
// Online-softmax step over a tile of scores: applies ALiBi (-slope·|p - s|, if alibi_slope != 0)
// and the interval mask (if masked), updates the running max m and sum l per query, writes the
// probabilities 2^(s - m_new) into St, and the factors alpha = 2^(m_old - m_new) by which earlier
// outputs must be rescaled. Queries that have seen only masked keys keep m = -inf and get alpha =
// 0, p = 0. tile_max: the tile's column maxima when the caller already has them
// (gemm_bcast_col_max; only valid without mask and ALiBi, which change the scores), else null and
// the tile is read once more for them.
void online_softmax_tile(float* St, const TileRows& rows, const TileColumns& cols, bool masked,
                         float alibi_slope, const float* tile_max, float* m, float* l,
                         float* alpha);

// The same online-softmax step for scores laid out the other way, S[t][j]: one row per query (a
// few: decoding), keys j0 .. j0 + n - 1 along the row (the row holds `width` >= n entries, a
// multiple of the vector length, `stride` apart; entries n.. are padding and count as hidden).
// Query t sees compressed keys [lo[t], hi[t]] (masked: check them; else only the padding is
// hidden) at key positions key_pos0 + key_step·j, and sits at position qpos[t] (ALiBi).
struct ScoreRows {
  int64_t rows, n, width, stride, j0;
  double key_pos0, key_step;
  const int32_t *lo, *hi;
  const float* qpos;
};
void online_softmax_rows(float* S, const ScoreRows& r, bool masked, float alibi_slope, float* m,
                         float* l, float* alpha);

// P = 2^(s - lse) over a tile (ALiBi and mask as above); queries with lse = -inf get 0, hidden keys
// exactly 0 (even when lse is NaN).
void probs_tile(float* St, const TileRows& rows, const TileColumns& cols, bool masked,
                float alibi_slope, const float* lse);

// dS = P ⊙ (dP - D) over `width` columns (a multiple of the vector length) of `rows` rows, `stride`
// apart in both, and exactly 0 where P = 0: dP is overwritten with dS; D has width entries.
void softmax_grad_tile(const float* P, float* dP, int64_t rows, int64_t width, int64_t stride,
                       const float* D);

// y[i] = 2^x[i] with the kernels' exp2 (x < 127.5; x ≤ -127 gives 0; NaN gives NaN). For tests.
void exp2_row(const float* x, float* y, int64_t n);

// packed[c·width + i] = scale · rows[i·row_stride + c] for i < n_valid, 0 for n_valid ≤ i < width,
// c < cols: a scaled transpose of a block of rows (width a multiple of 4).
void pack_transposed(const float* rows, int64_t row_stride, int64_t n_valid, int64_t width,
                     int64_t cols, float scale, float* packed);

// dst[i·dst_rs + c] = float(src[i·src_rs + c]) for i < rows, c < len: bf16 rows (as their bits)
// widened to float, exactly (a shift of the bits).
void widen_bf16_rows(const uint16_t* src, int64_t rows, int64_t len, int64_t src_rs, float* dst,
                     int64_t dst_rs);

// packed[p·width + i] = the 32 bits of bf16 elements 2p, 2p+1 of row i (rows[i·row_stride ..]) for
// i < n_valid, 0 for n_valid ≤ i < width, p < pairs: Qᵀ for the native bf16 products, one word
// (a pair of adjacent head-size elements) per query. width a multiple of 4. Bits are moved, never
// computed on.
void pack_pairs_transposed(const uint16_t* rows, int64_t row_stride, int64_t n_valid, int64_t width,
                           int64_t pairs, uint32_t* packed);

// x[i] *= a over n floats.
void scale_row(float* x, int64_t n, float a);

// Are the `rows` rows of `len` floats, `stride` apart, all finite (no Inf, no NaN)?
bool rows_finite(const float* p, int64_t rows, int64_t len, int64_t stride);

// out[i·out_rs + c] = x[i·cols + c] · scale[i] for i < rows, c < cols. streaming: rows that start
// on a vector boundary and span whole vectors are written with non-temporal stores (no read of the
// old lines, and the cache keeps the inputs instead), then fenced; the others as usual.
void store_scaled_rows(const float* x, int64_t rows, int64_t cols, const float* scale, float* out,
                       int64_t out_rs, bool streaming);

// Name of the SIMD target the dispatcher picked (e.g. "AVX3", "AVX2").
const char* simd_target_name();
// Compiled targets this CPU supports, best first, as (name, Highway target bit).
std::vector<std::pair<std::string, int64_t>> runnable_targets();
// Dispatch to the target with this bit from now on (disables every better one); 0: all enabled.
void limit_targets(int64_t target);

}  // namespace attn::internal::kernels
