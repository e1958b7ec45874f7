// SPDX-License-Identifier: MIT
// The fused gate nonlinearities of one step of an LSTM or GRU, over n consecutive hidden units of
// one sequence (Highway SIMD, dispatched at run time). Gate k of unit u sits at [k·stride + u] of
// its row; σ(a) is computed as ½ + ½·tanh(a/2), exact in the limits and NaN-preserving.
#pragma once

#include <cstdint>

namespace attn::internal::kernels {

// gates: in: the input side's pre-activations (biases of both sides included), gate stride gs;
//        out: i, f, g, o after their nonlinearities.
// hp: the recurrent side W_hh·h, gate stride hs. c: in c_{t−1}, out c_t. h: out h_t.
void lstm_forward_row(float* gates, int64_t gs, const float* hp, int64_t hs, float* c, float* h,
                      int64_t n);
// gates: in: W_i· x + b_i· (+ b_hr, b_hz in the r and z slots); out: r, z, n and, in slot 3,
// W_hn h + b_hn. hp: W_hh·h without bias (gate stride hs); b_hn: n's recurrent bias or null.
void gru_forward_row(float* gates, int64_t gs, const float* hp, int64_t hs, const float* b_hn,
                     const float* h_prev, float* h, int64_t n);

// dh: d loss / d h_t (the output's gradient plus the carry). dc: in d loss / d c_t from step t+1,
// out d loss / d c_{t−1}. da: out, the gates' pre-activation gradients, gate stride das.
void lstm_backward_row(const float* gates, int64_t gs, const float* c_now, const float* c_prev,
                       const float* dh, float* dc, float* da, int64_t das, int64_t n);
// dax / dah: the input side's and the recurrent side's pre-activation gradients (they differ in
// the n slot: dah_n = dax_n ⊙ r), gate stride das. direct: out, dh ⊙ z (the part of dh_{t−1} that
// does not pass through W_hh).
void gru_backward_row(const float* gates, int64_t gs, const float* h_prev, const float* dh,
                      float* dax, float* dah, int64_t das, float* direct, int64_t n);

}  // namespace attn::internal::kernels
