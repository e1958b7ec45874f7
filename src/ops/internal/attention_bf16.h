// SPDX-License-Identifier: MIT
// The native bf16 products of the fused attention's forward (src/ops/attention_bf16.cc):
// AVX512_BF16's vdpbf16ps, which multiplies pairs of bf16 and adds both products to a float lane,
// twice the multiply-adds of a float FMA per instruction. Highway 1.0 (Debian 12) has no bf16 dot
// product, so this one file uses the intrinsics, compiled for that instruction set alone and called
// only when bf16_dot_supported() (see docs/design.md).
//
// A "pair" is two adjacent bf16 along the product's inner dimension, read and moved as one 32-bit
// word; vdpbf16ps multiplies the pair broadcast from A with the pair in each lane of B.
#pragma once

#include <cstdint>

#include "ops/internal/attention_kernels.h"

namespace attn::internal::kernels {

// Does this CPU have AVX512_BF16 (and this build the kernels for it)?
bool bf16_dot_supported();

// C[r][c] (+)= scale · Σ_p (A(r, p)₀·B(p, c)₀ + A(r, p)₁·B(p, c)₁)   r < M, c < N, p < pairs,
// where A(r, p) is the pair of bf16 at A + r·a_rs + p·a_ps (elements) and B(p, c) the pair in word
// B[p·b_rs + c]. Products are exact in float and summed in float; vdpbf16ps treats denormal inputs
// as zero and flushes denormal results. C is overwritten unless accumulate (then C += scale · …,
// or, with c_row_scale (M entries), C[r] = c_row_scale[r]·C[r] + scale · …: the online softmax's
// rescale of the accumulator folded into the product's stores). col_max (optional, N entries):
// col_max[c] = max(col_max[c], max_r C[r][c]) as in gemm_bcast_col_max.
void gemm_bf16_pairs(int64_t M, int64_t N, int64_t pairs, const uint16_t* A, int64_t a_rs,
                     int64_t a_ps, const uint32_t* B, int64_t b_rs, float* C, int64_t c_rs,
                     float scale, bool accumulate, float* col_max, LinePrefetcher* prefetch,
                     const float* c_row_scale = nullptr);

// out[p·len + c] = (rows[2p][c], rows[2p+1][c]) as one word for p < ceil(n / 2), c < len, where
// rows[r] = rows + r·rs and a row past n - 1 is zero: values V interleaved in pairs of keys, the B
// operand of P·V. Returns false if any of the n rows holds a NaN or ±inf (then a zero weight could
// still carry it into the sum: the caller takes the float path).
bool interleave_row_pairs(const uint16_t* rows, int64_t n, int64_t len, int64_t rs, uint32_t* out);

// out[p·width + i] = (bf16(P(r, i)), bf16(P(r + 1, i))) with r = 2·(p0 + p), for p < pairs and
// i < width (a multiple of 16), where row r of P is at P + (r - first_row)·p_rs and rows outside
// [row_lo, row_hi] (first_row <= row_lo) count as 0 and are not read. The probabilities of a tile
// rounded to nearest-even bf16 and paired along the keys: the A operand of P·V.
void pack_prob_pairs(const float* P, int64_t p_rs, int64_t first_row, int64_t row_lo,
                     int64_t row_hi, int64_t p0, int64_t pairs, int64_t width, uint32_t* out);

}  // namespace attn::internal::kernels
