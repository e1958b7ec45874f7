// SPDX-License-Identifier: MIT
// Recurrent layers (LSTM, GRU) over a whole sequence, forward and backward through time, with
// torch.nn.LSTM / torch.nn.GRU's equations, weight layout and packed-sequence semantics. One call
// runs one layer: one direction, or both directions of a bidirectional layer in the same time loop.
//
// LSTM (gates i, f, g, o; rows of w_ih and w_hh in that order):
//   i = σ(W_ii x + b_ii + W_hi h + b_hi)   f = σ(...)   g = tanh(...)   o = σ(...)
//   c' = f ⊙ c + i ⊙ g                      h' = o ⊙ tanh(c')
// GRU (gates r, z, n):
//   r = σ(W_ir x + b_ir + W_hr h + b_hr)   z = σ(W_iz x + b_iz + W_hz h + b_hz)
//   n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
//   h' = (1 − z) ⊙ n + z ⊙ h
// Lengths (PyTorch's pack_padded_sequence, then pad_packed_sequence to T): sequence b has L_b valid
// steps. Outputs at t >= L_b are 0; the final state is the state after the last valid step; the
// reverse direction starts at t = L_b − 1 from the initial state.
//
// Time steps cannot run in parallel (each needs the previous state); the fast path projects the
// input of every step with one GEMM, then per step runs one recurrent GEMM and the fused gate
// nonlinearities, in parallel over fixed blocks of hidden units (and over the two directions).
#pragma once

#include <cstdint>
#include <span>

#include "attn/context.h"
#include "attn/tensor.h"

namespace attn::ops {

enum class RnnCell { kLSTM, kGRU };
// Gates per hidden unit: 4 for LSTM, 3 for GRU (G below).
int rnn_gates(RnnCell cell);
const char* rnn_cell_name(RnnCell cell);  // "LSTM" / "GRU"

// One direction of a layer: its parameters, optional initial state and its outputs.
template <typename T>
struct BasicRnnDirection {
  BasicView<const T> w_ih;  // (G·H, IN)
  BasicView<const T> w_hh;  // (G·H, H)
  BasicView<const T> b_ih;  // (G·H), or undefined (no bias)
  BasicView<const T> b_hh;  // (G·H), or undefined
  BasicView<const T> h0;    // (B, H), or undefined (zeros)
  BasicView<const T> c0;    // (B, H), LSTM only; undefined: zeros
  bool reverse = false;     // walk t = L_b − 1 down to 0
  BasicView<T> y;    // (T, B, H)  overwritten; may be a strided view (half of a wider output)
  BasicView<T> h_n;  // (B, H)     overwritten ({} to skip)
  BasicView<T> c_n;  // (B, H)     LSTM, overwritten ({} to skip)
};
using RnnDirection = BasicRnnDirection<float>;
using RnnDirectionD = BasicRnnDirection<double>;

// What the fast backward of one direction needs; rnn_forward fills it (allocating the tensors).
struct RnnSaved {
  // (T, B, 4·H). LSTM: i, f, g, o after their nonlinearities. GRU: r, z, n after theirs, then
  // W_hn h + b_hn (which n's gradient needs). Rows at t >= L_b are unspecified.
  Tensor gates;
  Tensor h;  // (T, B, H): the hidden state after step t (the held state where t >= L_b)
  Tensor c;  // (T, B, H): LSTM's cell state after step t; undefined for GRU
};

// Gradients of one direction. Inputs may be undefined (zero); outputs ({} to skip) are ACCUMULATED.
template <typename T>
struct BasicRnnDirectionGrad {
  BasicView<const T> dy;    // (T, B, H): d loss / d y (entries at t >= L_b are ignored)
  BasicView<const T> dh_n;  // (B, H)
  BasicView<const T> dc_n;  // (B, H), LSTM only
  BasicView<T> dw_ih, dw_hh, db_ih, db_hh;  // shaped as the parameters
  BasicView<T> dh0, dc0;                    // (B, H)
};
using RnnDirectionGrad = BasicRnnDirectionGrad<float>;
using RnnDirectionGradD = BasicRnnDirectionGrad<double>;

// x:       (T, B, IN), any strides
// lengths: B values in [1, T], or empty (every sequence has T steps)
// dirs:    1 or 2 directions over the same x (all with the same H)
// saved:   nullptr (inference), or dirs.size() entries, overwritten
// Same result for any thread count.
void rnn_forward(RnnCell cell, ConstTensorView x, std::span<const int64_t> lengths,
                 std::span<const RnnDirection> dirs, RnnSaved* saved, const Context& ctx);

// The backward of rnn_forward through time, from what it saved (the same x, lengths and dirs; the
// directions' outputs y, h_n, c_n are not used and may be left undefined).
// grads: one per direction. dx: (T, B, IN), ACCUMULATED with every direction's part ({} to skip).
void rnn_backward(RnnCell cell, ConstTensorView x, std::span<const int64_t> lengths,
                  std::span<const RnnDirection> dirs, const RnnSaved* saved,
                  std::span<const RnnDirectionGrad> grads, TensorView dx, const Context& ctx);

namespace reference {
// The specification: the equations above step by step, one direction after the other, in double
// arithmetic; the backward recomputes the forward (it needs nothing saved).
void rnn_forward(RnnCell cell, ConstTensorView x, std::span<const int64_t> lengths,
                 std::span<const RnnDirection> dirs, const Context& ctx);
void rnn_forward(RnnCell cell, ConstTensorViewD x, std::span<const int64_t> lengths,
                 std::span<const RnnDirectionD> dirs, const Context& ctx);
void rnn_backward(RnnCell cell, ConstTensorView x, std::span<const int64_t> lengths,
                  std::span<const RnnDirection> dirs, std::span<const RnnDirectionGrad> grads,
                  TensorView dx, const Context& ctx);
void rnn_backward(RnnCell cell, ConstTensorViewD x, std::span<const int64_t> lengths,
                  std::span<const RnnDirectionD> dirs, std::span<const RnnDirectionGradD> grads,
                  TensorViewD dx, const Context& ctx);
}  // namespace reference

}  // namespace attn::ops
