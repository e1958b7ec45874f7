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

// c (M, N) (+)= a (M, K) · P (K, N): the recurrent product of a step, for the few rows of a batch.
// P is packed once per layer call as panels of kPanelWidth columns, each (K, kPanelWidth) row-major
// and the last one zero-padded: panel q holds P[k][q·W + l] at panels[(q·K + k)·W + l], so a step
// streams it front to back. Each output is one FMA chain over k in order: the result depends on
// the operands alone. (OpenBLAS's sgemm packs its B operand on every call, which for M = 8 cost as
// much as the arithmetic.)
inline constexpr int64_t kPanelWidth = 16;
inline int64_t panel_floats(int64_t K, int64_t N) {
  return (N + kPanelWidth - 1) / kPanelWidth * K * kPanelWidth;
}
void panel_gemm(const float* a, int64_t lda, int64_t M, const float* panels, int64_t K, int64_t N,
                float* c, int64_t ldc, bool accumulate);

}  // namespace attn::internal::kernels
