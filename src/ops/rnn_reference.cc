// SPDX-License-Identifier: MIT
// Reference LSTM and GRU layers: the equations of attn/ops/rnn.h, one sequence, one step and one
// gate at a time, in double. The backward recomputes the forward of each sequence, keeping every
// step's state, then walks it back (BPTT). Float views are read and written through double.
#include <cmath>
#include <vector>

#include "attn/ops/rnn.h"
#include "ops/internal/rnn_checks.h"

namespace attn::ops {

int rnn_gates(RnnCell cell) { return cell == RnnCell::kLSTM ? 4 : 3; }
const char* rnn_cell_name(RnnCell cell) { return cell == RnnCell::kLSTM ? "LSTM" : "GRU"; }

namespace reference {

namespace {

using internal::RnnDims;
using Vec = std::vector<double>;

double sigmoid(double a) { return 1.0 / (1.0 + std::exp(-a)); }

template <typename T>
double at_or_zero(const BasicView<const T>& v, int64_t i) {
  return v.defined() ? static_cast<double>(v(i)) : 0.0;
}
template <typename T>
double at_or_zero(const BasicView<const T>& v, int64_t i, int64_t j) {
  return v.defined() ? static_cast<double>(v(i, j)) : 0.0;
}

// One step of one sequence: the gates' values (LSTM i, f, g, o; GRU r, z, n, W_hn h + b_hn) and the
// new state, from the input x_t (IN), the state h, c (H).
template <typename T>
struct Step {
  const BasicRnnDirection<T>& p;
  RnnCell cell;
  int64_t H, IN;

  // W x_t + b for gate row r, with x_t the row (t, b) of x.
  double input_row(BasicView<const T> x, int64_t t, int64_t b, int64_t r) const {
    double acc = at_or_zero(p.b_ih, r);
    for (int64_t i = 0; i < IN; ++i)
      acc += static_cast<double>(p.w_ih(r, i)) * static_cast<double>(x(t, b, i));
    return acc;
  }
  double hidden_row(const Vec& h, int64_t r) const {
    double acc = at_or_zero(p.b_hh, r);
    for (int64_t j = 0; j < H; ++j) acc += static_cast<double>(p.w_hh(r, j)) * h[j];
    return acc;
  }
  // gates (4·H) and the state (h, c) after the step, in place.
  void run(BasicView<const T> x, int64_t t, int64_t b, Vec& h, Vec& c, Vec& gates) const {
    Vec hn(H), hp = h;
    for (int64_t u = 0; u < H; ++u) {
      if (cell == RnnCell::kLSTM) {
        double a[4];
        for (int k = 0; k < 4; ++k)
          a[k] = input_row(x, t, b, k * H + u) + hidden_row(hp, k * H + u);
        const double i = sigmoid(a[0]), f = sigmoid(a[1]), g = std::tanh(a[2]), o = sigmoid(a[3]);
        c[u] = f * c[u] + i * g;
        hn[u] = o * std::tanh(c[u]);
        gates[u] = i, gates[H + u] = f, gates[2 * H + u] = g, gates[3 * H + u] = o;
      } else {
        const double r = sigmoid(input_row(x, t, b, u) + hidden_row(hp, u));
        const double z = sigmoid(input_row(x, t, b, H + u) + hidden_row(hp, H + u));
        const double hh = hidden_row(hp, 2 * H + u);
        const double n = std::tanh(input_row(x, t, b, 2 * H + u) + r * hh);
        hn[u] = (1.0 - z) * n + z * hp[u];
        gates[u] = r, gates[H + u] = z, gates[2 * H + u] = n, gates[3 * H + u] = hh;
      }
    }
    h = hn;
  }
};

// The initial state of sequence b.
template <typename T>
void initial_state(const BasicRnnDirection<T>& p, int64_t b, int64_t H, Vec& h, Vec& c) {
  h.assign(H, 0.0);
  c.assign(H, 0.0);
  for (int64_t u = 0; u < H; ++u) {
    h[u] = at_or_zero(p.h0, b, u);
    c[u] = at_or_zero(p.c0, b, u);
  }
}

template <typename T>
int64_t step_time(const BasicRnnDirection<T>& p, int64_t k, int64_t L) {
  return p.reverse ? L - 1 - k : k;
}

template <typename T>
void forward_impl(RnnCell cell, BasicView<const T> x, std::span<const int64_t> lengths,
                  std::span<const BasicRnnDirection<T>> dirs) {
  const RnnDims d = internal::check_rnn_forward_args("rnn_forward", cell, x, lengths, dirs);
  for (const auto& p : dirs) {
    fill(p.y, T(0));
    const Step<T> step{p, cell, d.H, d.IN};
    for (int64_t b = 0; b < d.B; ++b) {
      Vec h, c, gates(4 * d.H);
      initial_state(p, b, d.H, h, c);
      const int64_t L = internal::rnn_length(lengths, b, d.T);
      for (int64_t k = 0; k < L; ++k) {
        const int64_t t = step_time(p, k, L);
        step.run(x, t, b, h, c, gates);
        for (int64_t u = 0; u < d.H; ++u) p.y(t, b, u) = static_cast<T>(h[u]);
      }
      for (int64_t u = 0; u < d.H; ++u) {
        if (p.h_n.defined()) p.h_n(b, u) = static_cast<T>(h[u]);
        if (p.c_n.defined()) p.c_n(b, u) = static_cast<T>(c[u]);
      }
    }
  }
}

// Gradient accumulators of one direction, in double, added to the outputs at the end.
struct DirGrads {
  Vec dw_ih, dw_hh, db_ih, db_hh;
};

template <typename T>
void add_to(BasicView<T> out, const Vec& acc) {
  if (!out.defined()) return;
  const int64_t cols = out.rank() == 2 ? out.dim(1) : 1;
  for (int64_t r = 0; r < out.dim(0); ++r)
    for (int64_t j = 0; j < cols; ++j) {
      T& o = out.rank() == 2 ? out(r, j) : out(r);
      o = static_cast<T>(static_cast<double>(o) + acc[static_cast<size_t>(r * cols + j)]);
    }
}

// The gate pre-activation gradients of one step (dax for the input side, dah for the recurrent
// side; they differ only in GRU's n slot) from dh, dc (updated to the previous step's).
void step_backward(RnnCell cell, int64_t H, const Vec& gates, const Vec& c_now, const Vec& c_prev,
                   const Vec& h_prev, Vec& dh, Vec& dc, Vec& dax, Vec& dah, Vec& dh_direct) {
  for (int64_t u = 0; u < H; ++u) {
    if (cell == RnnCell::kLSTM) {
      const double i = gates[u], f = gates[H + u], g = gates[2 * H + u], o = gates[3 * H + u];
      const double tc = std::tanh(c_now[u]);
      const double dcu = dc[u] + dh[u] * o * (1.0 - tc * tc);
      dax[u] = dcu * g * i * (1.0 - i);
      dax[H + u] = dcu * c_prev[u] * f * (1.0 - f);
      dax[2 * H + u] = dcu * i * (1.0 - g * g);
      dax[3 * H + u] = dh[u] * tc * o * (1.0 - o);
      for (int k = 0; k < 4; ++k) dah[k * H + u] = dax[k * H + u];
      dc[u] = dcu * f;
      dh_direct[u] = 0.0;
    } else {
      const double r = gates[u], z = gates[H + u], n = gates[2 * H + u], hh = gates[3 * H + u];
      const double dan = dh[u] * (1.0 - z) * (1.0 - n * n);
      const double dr = dan * hh;
      dax[u] = dah[u] = dr * r * (1.0 - r);
      dax[H + u] = dah[H + u] = dh[u] * (h_prev[u] - n) * z * (1.0 - z);
      dax[2 * H + u] = dan;
      dah[2 * H + u] = dan * r;
      dh_direct[u] = dh[u] * z;
    }
  }
}

template <typename T>
void backward_impl(RnnCell cell, BasicView<const T> x, std::span<const int64_t> lengths,
                   std::span<const BasicRnnDirection<T>> dirs,
                   std::span<const BasicRnnDirectionGrad<T>> grads, BasicView<T> dx) {
  const RnnDims d = internal::check_rnn_forward_args("rnn_backward", cell, x, lengths, dirs, false);
  internal::check_rnn_backward_args("rnn_backward", cell, d, x, dirs, grads, dx);
  const int64_t G = d.G, H = d.H, IN = d.IN;
  for (size_t di = 0; di < dirs.size(); ++di) {
    const auto& p = dirs[di];
    const auto& g = grads[di];
    const Step<T> step{p, cell, H, IN};
    DirGrads acc{Vec(G * H * IN), Vec(G * H * H), Vec(G * H), Vec(G * H)};
    for (int64_t b = 0; b < d.B; ++b) {
      const int64_t L = internal::rnn_length(lengths, b, d.T);
      // The forward, keeping the state before each step (index k) and after the last (index L).
      std::vector<Vec> hs(L + 1), cs(L + 1), gs(L, Vec(4 * H));
      initial_state(p, b, H, hs[0], cs[0]);
      for (int64_t k = 0; k < L; ++k) {
        hs[k + 1] = hs[k], cs[k + 1] = cs[k];
        step.run(x, step_time(p, k, L), b, hs[k + 1], cs[k + 1], gs[k]);
      }
      Vec dh(H), dc(H), dax(G * H), dah(G * H), direct(H);
      for (int64_t u = 0; u < H; ++u)
        dh[u] = at_or_zero(g.dh_n, b, u), dc[u] = at_or_zero(g.dc_n, b, u);
      for (int64_t k = L - 1; k >= 0; --k) {
        const int64_t t = step_time(p, k, L);
        for (int64_t u = 0; u < H; ++u)
          dh[u] += g.dy.defined() ? static_cast<double>(g.dy(t, b, u)) : 0.0;
        step_backward(cell, H, gs[k], cs[k + 1], cs[k], hs[k], dh, dc, dax, dah, direct);
        for (int64_t r = 0; r < G * H; ++r) {
          acc.db_ih[r] += dax[r];
          acc.db_hh[r] += dah[r];
          for (int64_t i = 0; i < IN; ++i)
            acc.dw_ih[r * IN + i] += dax[r] * static_cast<double>(x(t, b, i));
          for (int64_t j = 0; j < H; ++j) acc.dw_hh[r * H + j] += dah[r] * hs[k][j];
        }
        if (dx.defined())
          for (int64_t i = 0; i < IN; ++i) {
            double s = 0.0;
            for (int64_t r = 0; r < G * H; ++r) s += dax[r] * static_cast<double>(p.w_ih(r, i));
            dx(t, b, i) = static_cast<T>(static_cast<double>(dx(t, b, i)) + s);
          }
        for (int64_t j = 0; j < H; ++j) {
          double s = direct[j];
          for (int64_t r = 0; r < G * H; ++r) s += dah[r] * static_cast<double>(p.w_hh(r, j));
          dh[j] = s;
        }
      }
      for (int64_t u = 0; u < H; ++u) {
        if (g.dh0.defined()) g.dh0(b, u) = static_cast<T>(static_cast<double>(g.dh0(b, u)) + dh[u]);
        if (g.dc0.defined()) g.dc0(b, u) = static_cast<T>(static_cast<double>(g.dc0(b, u)) + dc[u]);
      }
    }
    add_to(g.dw_ih, acc.dw_ih);
    add_to(g.dw_hh, acc.dw_hh);
    add_to(g.db_ih, acc.db_ih);
    add_to(g.db_hh, acc.db_hh);
  }
}

}  // namespace

void rnn_forward(RnnCell cell, ConstTensorView x, std::span<const int64_t> lengths,
                 std::span<const RnnDirection> dirs, const Context&) {
  forward_impl<float>(cell, x, lengths, dirs);
}
void rnn_forward(RnnCell cell, ConstTensorViewD x, std::span<const int64_t> lengths,
                 std::span<const RnnDirectionD> dirs, const Context&) {
  forward_impl<double>(cell, x, lengths, dirs);
}
void rnn_backward(RnnCell cell, ConstTensorView x, std::span<const int64_t> lengths,
                  std::span<const RnnDirection> dirs, std::span<const RnnDirectionGrad> grads,
                  TensorView dx, const Context&) {
  backward_impl<float>(cell, x, lengths, dirs, grads, dx);
}
void rnn_backward(RnnCell cell, ConstTensorViewD x, std::span<const int64_t> lengths,
                  std::span<const RnnDirectionD> dirs, std::span<const RnnDirectionGradD> grads,
                  TensorViewD dx, const Context&) {
  backward_impl<double>(cell, x, lengths, dirs, grads, dx);
}

}  // namespace reference
}  // namespace attn::ops
