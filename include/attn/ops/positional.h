// SPDX-License-Identifier: MIT
// Sinusoidal positional encoding (Vaswani et al., 2017, section 3.5):
//   PE(pos, 2i) = sin(pos / base^(2i/C)),   PE(pos, 2i+1) = cos(pos / base^(2i/C)),   base = 10000.
// Each (sin, cos) pair turns at its own frequency ω_i = base^(-2i/C), so PE(pos + k) = M_k ·
// PE(pos) with M_k block-diagonal, one 2×2 rotation by k·ω_i per pair, whatever pos is
// (docs/positional_encoding.md).
#pragma once

#include <cstdint>

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::ops {

// table: (T, C)  overwritten with PE(start_pos + t, c). Computed in double, then stored. C may be
// odd
//                (the last column is then a sine). base must be finite and > 1.
void sinusoidal_encoding(TensorView table, int64_t start_pos = 0, double base = 10000.0);
void sinusoidal_encoding(TensorViewD table, int64_t start_pos = 0, double base = 10000.0);

// x:   (B, T, C)
// out: (B, T, C)  overwritten with x + PE(start_pos + t); may be the same view as x (in place).
// The backward is the identity (dx = dout), so there is no separate backward function.
void add_sinusoidal_encoding(ConstTensorView x, TensorView out, int64_t start_pos,
                             const Context& ctx, double base = 10000.0);

// M_k: the (C, C) matrix with PE(pos + k) = M_k · PE(pos) for every pos; C must be even. Block i is
//   [[cos kω_i,  sin kω_i],
//    [-sin kω_i, cos kω_i]]  acting on (PE(pos, 2i), PE(pos, 2i+1)). k may be negative.
TensorD sinusoidal_shift_matrix(int64_t k, int64_t C, double base = 10000.0);

// Rotary position embedding (RoPE, Su et al. 2021): the pair (x1, x2) of head channels i of the
// query or key at position pos = start_pos + t is rotated by pos·θ_i, θ_i = base^(-2i/HS), so q·k
// depends on positions only through their difference. kInterleaved pairs channels (2i, 2i+1)
// (RoFormer, GPT-J, FlashAttention rotary_interleaved=True); kHalf pairs (i, i + HS/2) (GPT-NeoX,
// LLaMA).
enum class RopeLayout { kInterleaved, kHalf };

// x:  (B, NH, T, HS), HS even: rotated IN PLACE (a strided view, e.g. of a packed qkv buffer, is
// fine)
void rope_forward(TensorView x, int64_t start_pos, const Context& ctx, double base = 10000.0,
                  RopeLayout layout = RopeLayout::kHalf);
// The rotation is orthogonal, so its backward is the inverse rotation of the gradient.
// dx: (B, NH, T, HS): the gradient w.r.t. the rotated tensor, turned IN PLACE into the gradient
// w.r.t. x
void rope_backward(TensorView dx, int64_t start_pos, const Context& ctx, double base = 10000.0,
                   RopeLayout layout = RopeLayout::kHalf);

// T5's relative-position bucket (HF transformers' _relative_position_bucket) for
// relative_position = key position − query position: exact buckets for small distances, log-spaced
// up to max_distance, the sign in its own half when bidirectional. T5 uses num_buckets 32,
// max_distance 128.
int64_t t5_relative_position_bucket(int64_t relative_position, bool bidirectional,
                                    int64_t num_buckets = 32, int64_t max_distance = 128);

}  // namespace attn::ops
