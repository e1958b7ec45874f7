// SPDX-License-Identifier: MIT
// Argument checks of rnn_forward / rnn_backward, shared by the fast path and the reference.
#pragma once

#include <span>
#include <string>

#include "attn/ops/rnn.h"
#include "ops/internal/checks.h"

namespace attn::internal {

struct RnnDims {
  int64_t T, B, IN, H, G;
};

// L_b: the valid steps of sequence b.
inline int64_t rnn_length(std::span<const int64_t> lengths, int64_t b, int64_t T) {
  return lengths.empty() ? T : lengths[static_cast<size_t>(b)];
}

template <typename T>
void check_rnn_state(const char* fn, const char* name, const BasicView<T>& v, const RnnDims& d) {
  if (v.defined()) check_shape(fn, name, v, Shape{d.B, d.H}, "(B, H)");
}

template <typename T>
RnnDims check_rnn_forward_args(const char* fn, ops::RnnCell cell, BasicView<const T> x,
                               std::span<const int64_t> lengths,
                               std::span<const ops::BasicRnnDirection<T>> dirs,
                               bool outputs_required = true) {
  check_rank(fn, "x", x, 3);
  if (dirs.empty() || dirs.size() > 2)
    fail<ValueError>(fn, "expects 1 or 2 directions, got ", dirs.size());
  check_rank(fn, "w_hh", dirs[0].w_hh, 2);
  const int G = ops::rnn_gates(cell);
  RnnDims d{x.dim(0), x.dim(1), x.dim(2), dirs[0].w_hh.dim(1), G};
  if (d.T < 1) fail<ShapeError>(fn, "x (shape ", x.shape().str(), ") has no time steps");
  if (!lengths.empty()) {
    if (static_cast<int64_t>(lengths.size()) != d.B)
      fail<ShapeError>(fn, "lengths has ", lengths.size(), " values but x (shape ", x.shape().str(),
                       ") has batch ", d.B);
    for (size_t b = 0; b < lengths.size(); ++b)
      if (lengths[b] < 1 || lengths[b] > d.T)
        fail<ValueError>(fn, "lengths[", b, "] = ", lengths[b], " is not in [1, T = ", d.T,
                         "] (x shape ", x.shape().str(), ")");
  }
  const std::string gates = std::to_string(G) + "·H for " + ops::rnn_cell_name(cell);
  for (const auto& dir : dirs) {
    check_shape(fn, "w_ih", dir.w_ih, Shape{G * d.H, d.IN}, "(" + gates + ", IN)");
    check_shape(fn, "w_hh", dir.w_hh, Shape{G * d.H, d.H}, "(" + gates + ", H)");
    if (dir.b_ih.defined()) check_shape(fn, "b_ih", dir.b_ih, Shape{G * d.H}, "(" + gates + ")");
    if (dir.b_hh.defined()) check_shape(fn, "b_hh", dir.b_hh, Shape{G * d.H}, "(" + gates + ")");
    check_rnn_state(fn, "h0", dir.h0, d);
    check_rnn_state(fn, "c0", dir.c0, d);
    if (cell != ops::RnnCell::kLSTM && (dir.c0.defined() || dir.c_n.defined()))
      fail<ValueError>(fn, "c0 and c_n are for LSTM only; a GRU has no cell state");
    if (outputs_required || dir.y.defined())
      check_shape(fn, "y", dir.y, Shape{d.T, d.B, d.H}, "(T, B, H)");
    check_rnn_state(fn, "h_n", dir.h_n, d);
    check_rnn_state(fn, "c_n", dir.c_n, d);
    check_output(fn, "y", dir.y, x, dir.w_ih, dir.w_hh, dir.b_ih, dir.b_hh, dir.h0, dir.c0);
    check_output(fn, "h_n", dir.h_n, x, dir.w_ih, dir.w_hh, dir.h0, dir.c0, dir.y);
    check_output(fn, "c_n", dir.c_n, x, dir.w_ih, dir.w_hh, dir.h0, dir.c0, dir.y, dir.h_n);
  }
  return d;
}

template <typename T>
void check_rnn_backward_args(const char* fn, ops::RnnCell cell, const RnnDims& d,
                             BasicView<const T> x, std::span<const ops::BasicRnnDirection<T>> dirs,
                             std::span<const ops::BasicRnnDirectionGrad<T>> grads,
                             BasicView<T> dx) {
  if (grads.size() != dirs.size())
    fail<ValueError>(fn, "expects one gradient entry per direction: ", dirs.size(), ", got ",
                     grads.size());
  for (size_t i = 0; i < grads.size(); ++i) {
    const auto& g = grads[i];
    const auto& p = dirs[i];
    if (g.dy.defined()) check_shape(fn, "dy", g.dy, Shape{d.T, d.B, d.H}, "(T, B, H)");
    check_rnn_state(fn, "dh_n", g.dh_n, d);
    check_rnn_state(fn, "dc_n", g.dc_n, d);
    check_rnn_state(fn, "dh0", g.dh0, d);
    check_rnn_state(fn, "dc0", g.dc0, d);
    if (cell != ops::RnnCell::kLSTM && (g.dc_n.defined() || g.dc0.defined()))
      fail<ValueError>(fn, "dc_n and dc0 are for LSTM only; a GRU has no cell state");
    if (g.dw_ih.defined()) check_shape(fn, "dw_ih", g.dw_ih, p.w_ih.shape(), "w_ih's shape");
    if (g.dw_hh.defined()) check_shape(fn, "dw_hh", g.dw_hh, p.w_hh.shape(), "w_hh's shape");
    if (g.db_ih.defined()) check_shape(fn, "db_ih", g.db_ih, Shape{d.G * d.H}, "(G·H)");
    if (g.db_hh.defined()) check_shape(fn, "db_hh", g.db_hh, Shape{d.G * d.H}, "(G·H)");
    for (auto* out : {&g.dw_ih, &g.dw_hh, &g.db_ih, &g.db_hh, &g.dh0, &g.dc0})
      check_output(fn, "a gradient output", *out, x, p.w_ih, p.w_hh, g.dy, g.dh_n, g.dc_n);
  }
  if (dx.defined()) {
    check_shape(fn, "dx", dx, x.shape(), "x's shape (T, B, IN)");
    check_output(fn, "dx", dx, x);
  }
}

}  // namespace attn::internal
