// SPDX-License-Identifier: MIT
// Fast LSTM / GRU layers (attn/ops/rnn.h). Per direction:
//   1. the input side of every step at once: gates = x W_ihᵀ + biases, one (T·B, G·H) GEMM;
//   2. the time loop, inside one OpenMP region: at each step, every fixed block of kUnitBlock
//   hidden
//      units (of each direction) runs its recurrent GEMM h_{t−1} W_hh[block]ᵀ and the fused gate
//      row (rnn_kernels); a barrier ends the step, since the next one needs all of h_t.
// The backward walks the steps back with two barriers a step (gate gradients of every block, then
// dh_{t−1} = da W_hh per block) and leaves the rest, dW_ih, dW_hh, dx and the bias sums, to GEMMs
// over all T·B rows after the loop. Blocks are fixed, so any thread count gives the same bits.
#include "attn/ops/rnn.h"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "ops/internal/blas.h"
#include "ops/internal/rnn_checks.h"
#include "ops/internal/rnn_kernels.h"

namespace attn::ops {

namespace {

using internal::RnnDims;

// Hidden units per task: a multiple of every SIMD width, and a recurrent GEMM of at least 4·64
// columns per call (a GRU's 3·64), which keeps OpenBLAS's kernel busy against the call's overhead.
constexpr int64_t kUnitBlock = 64;

int64_t unit_blocks(int64_t H) { return (H + kUnitBlock - 1) / kUnitBlock; }
int64_t block_units(int64_t H, int64_t blk) { return std::min(kUnitBlock, H - blk * kUnitBlock); }

// fn(s, phase, task, worker) for every step s in [0, T) and phase in [0, phases): all tasks of a
// phase finish before the next phase (or step) starts. One parallel region for the whole loop.
template <typename F>
void step_loop(int threads, int64_t T, int phases, int64_t tasks, F&& fn) {
  if (threads <= 1) {
    for (int64_t s = 0; s < T; ++s)
      for (int ph = 0; ph < phases; ++ph)
        for (int64_t k = 0; k < tasks; ++k) fn(s, ph, k, 0);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int worker = omp_get_thread_num();
    for (int64_t s = 0; s < T; ++s)
      for (int ph = 0; ph < phases; ++ph) {
#pragma omp for schedule(static)
        for (int64_t k = 0; k < tasks; ++k) fn(s, ph, k, worker);
      }
  }
}

// Threads for a time loop of `tasks` tasks of `work` multiply-adds each, with every worker's
// scratch allocated up front (nothing may throw inside the parallel region).
int loop_threads(const Context& ctx, int64_t tasks, double work, int64_t scratch_floats) {
  const int threads = internal::threads_for(ctx, tasks, work);
  for (int w = 0; w < threads; ++w) ctx.scratch(w, scratch_floats);
  return threads;
}

void check_blas_sizes(const char* fn, const RnnDims& d) {
  for (int64_t n : {d.T * d.B, d.G * d.H, d.IN, 4 * d.H})
    if (n > INT_MAX)
      fail<ShapeError>(fn, "dimension ", n, " exceeds what OpenBLAS's 32-bit int can index");
}

// A (B, H) state: a contiguous copy of the view, or zeros.
Tensor state_or_zeros(ConstTensorView v, const RnnDims& d) {
  return v.defined() ? Tensor::copy_of(v) : Tensor(Shape{d.B, d.H});
}

Tensor contiguous(ConstTensorView v) { return Tensor::copy_of(v); }

// The time of step s and of the step before it (−1: the initial state).
struct StepTimes {
  int64_t t, prev;
};
StepTimes step_times(bool reverse, int64_t s, int64_t T) {
  const int64_t t = reverse ? T - 1 - s : s;
  return {t, s == 0 ? -1 : (reverse ? t + 1 : t - 1)};
}

// P[k][n] = value(k, n) for k < K, n < N, as the zero-padded panels of panel_gemm.
template <typename F>
void pack_panels(int64_t K, int64_t N, float* dst, F&& value) {
  using internal::kernels::kPanelWidth;
  for (int64_t q = 0; q * kPanelWidth < N; ++q)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t l = 0; l < kPanelWidth; ++l) {
        const int64_t n = q * kPanelWidth + l;
        dst[(q * K + k) * kPanelWidth + l] = n < N ? value(k, n) : 0.0f;
      }
}

// One direction, prepared for the forward time loop.
struct ForwardDir {
  const RnnDirection* p;
  RnnSaved* s;
  Tensor w_packed;  // per block, panels of P (H, G·ub): P[j][k·ub + u] = W_hh[k·H + j0 + u][j]
  int64_t block_floats;
  Tensor h0, c0;  // (B, H)
  Tensor b_hn;    // (H) GRU's recurrent n bias, or undefined
};

// gates[:, :G·H] = x W_ihᵀ + b_ih + b_hh (for GRU, b_hh's r and z parts only: b_hn stays inside
// r ⊙ (W_hn h + b_hn)).
void project_inputs(RnnCell cell, const RnnDims& d, const Tensor& xc, const RnnDirection& p,
                    Tensor& gates, const Context& ctx) {
  const int64_t GH = d.G * d.H, rows = d.T * d.B;
  const internal::BlasInput w(p.w_ih);
  internal::BlasOutput out(TensorView(gates.data(), Shape{rows, GH}, Strides{4 * d.H, 1}), false);
  internal::parallel_sgemm(ctx, false, true, rows, GH, d.IN, 1.0f,
                           {xc.data(), rows, d.IN, std::max<int64_t>(d.IN, 1)}, w.matrix(), 0.0f,
                           out);
  std::vector<float> bias(static_cast<size_t>(GH), 0.0f);
  const int64_t hidden_bias_rows = cell == RnnCell::kLSTM ? GH : 2 * d.H;
  for (int64_t r = 0; r < GH; ++r) {
    if (p.b_ih.defined()) bias[r] += p.b_ih(r);
    if (p.b_hh.defined() && r < hidden_bias_rows) bias[r] += p.b_hh(r);
  }
  internal::parallel_for(ctx, rows, static_cast<double>(GH), [&](int64_t i, int) {
    float* row = gates.data() + i * 4 * d.H;
    for (int64_t r = 0; r < GH; ++r) row[r] += bias[r];
  });
}

ForwardDir prepare_forward(RnnCell cell, const RnnDims& d, const Tensor& xc, const RnnDirection& p,
                           RnnSaved& s, const Context& ctx) {
  const int64_t block_floats = internal::kernels::panel_floats(d.H, d.G * kUnitBlock);
  ForwardDir f{&p,
               &s,
               Tensor(Shape{unit_blocks(d.H), block_floats}),
               block_floats,
               state_or_zeros(p.h0, d),
               state_or_zeros(p.c0, d),
               Tensor()};
  s.gates = Tensor(Shape{d.T, d.B, 4 * d.H});
  s.h = Tensor(Shape{d.T, d.B, d.H});
  s.c = cell == RnnCell::kLSTM ? Tensor(Shape{d.T, d.B, d.H}) : Tensor();
  project_inputs(cell, d, xc, p, s.gates, ctx);
  // Row j of a block's P is what h_j multiplies, so a step's product is h_{t−1} (B, H) · P.
  for (int64_t blk = 0; blk < unit_blocks(d.H); ++blk) {
    const int64_t ub = block_units(d.H, blk), j0 = blk * kUnitBlock;
    pack_panels(d.H, d.G * ub, f.w_packed.data() + blk * block_floats,
                [&](int64_t j, int64_t n) { return p.w_hh(n / ub * d.H + j0 + n % ub, j); });
  }
  if (cell == RnnCell::kGRU && p.b_hh.defined())
    f.b_hn = Tensor::copy_of(p.b_hh.slice(0, 2 * d.H, 3 * d.H));
  return f;
}

// Writes n values to y(t, b, u0..u0+n) (any strides), or zeros when src is null.
void store_output(const TensorView& y, int64_t t, int64_t b, int64_t u0, const float* src,
                  int64_t n) {
  float* dst = y.data() + t * y.stride(0) + b * y.stride(1) + u0 * y.stride(2);
  for (int64_t u = 0; u < n; ++u) dst[u * y.stride(2)] = src ? src[u] : 0.0f;
}

// Step s of one block of one direction.
void forward_task(RnnCell cell, const RnnDims& d, std::span<const int64_t> lengths,
                  const ForwardDir& f, int64_t s, int64_t blk, float* hp) {
  const int64_t H = d.H, B = d.B, ub = block_units(H, blk), j0 = blk * kUnitBlock;
  const auto [t, prev] = step_times(f.p->reverse, s, d.T);
  const float* h_prev = prev < 0 ? f.h0.data() : f.s->h.data() + prev * B * H;
  const float* c_prev = cell != RnnCell::kLSTM ? nullptr
                        : prev < 0             ? f.c0.data()
                                               : f.s->c.data() + prev * B * H;
  const float* w = f.w_packed.data() + blk * f.block_floats;
  internal::kernels::panel_gemm(h_prev, H, B, w, H, d.G * ub, hp, d.G * ub, false);
  for (int64_t b = 0; b < B; ++b) {
    float* h_now = f.s->h.data() + (t * B + b) * H + j0;
    float* c_now = cell == RnnCell::kLSTM ? f.s->c.data() + (t * B + b) * H + j0 : nullptr;
    const float* hb = h_prev + b * H + j0;
    const bool active = t < internal::rnn_length(lengths, b, d.T);
    if (c_now) std::memcpy(c_now, c_prev + b * H + j0, sizeof(float) * static_cast<size_t>(ub));
    if (!active) {  // held state, zero output
      std::memcpy(h_now, hb, sizeof(float) * static_cast<size_t>(ub));
      store_output(f.p->y, t, b, j0, nullptr, ub);
      continue;
    }
    float* gates = f.s->gates.data() + (t * B + b) * 4 * H + j0;
    if (cell == RnnCell::kLSTM)
      internal::kernels::lstm_forward_row(gates, H, hp + b * d.G * ub, ub, c_now, h_now, ub);
    else
      internal::kernels::gru_forward_row(gates, H, hp + b * d.G * ub, ub,
                                         f.b_hn.defined() ? f.b_hn.data() + j0 : nullptr, hb, h_now,
                                         ub);
    store_output(f.p->y, t, b, j0, h_now, ub);
  }
}

void copy_final_state(const Tensor& states, const RnnDims& d, bool reverse, TensorView out) {
  if (!out.defined() || !states.defined()) return;
  const int64_t t_last = reverse ? 0 : d.T - 1;
  copy(ConstTensorView(states.data() + t_last * d.B * d.H, Shape{d.B, d.H}), out);
}

}  // namespace

void rnn_forward(RnnCell cell, ConstTensorView x, std::span<const int64_t> lengths,
                 std::span<const RnnDirection> dirs, RnnSaved* saved, const Context& ctx) {
  const char* fn = "rnn_forward";
  const RnnDims d = internal::check_rnn_forward_args(fn, cell, x, lengths, dirs);
  check_blas_sizes(fn, d);
  const Tensor xc = contiguous(x);
  std::vector<RnnSaved> local(saved ? 0 : dirs.size());
  std::vector<ForwardDir> fw;
  for (size_t i = 0; i < dirs.size(); ++i)
    fw.push_back(prepare_forward(cell, d, xc, dirs[i], saved ? saved[i] : local[i], ctx));
  const int64_t blocks = unit_blocks(d.H), tasks = blocks * static_cast<int64_t>(dirs.size());
  const int64_t hp_floats = d.B * d.G * kUnitBlock;
  const int threads = loop_threads(ctx, tasks, static_cast<double>(hp_floats * d.H), hp_floats);
  step_loop(threads, d.T, 1, tasks, [&](int64_t s, int, int64_t k, int worker) {
    forward_task(cell, d, lengths, fw[static_cast<size_t>(k / blocks)], s, k % blocks,
                 ctx.scratch(worker, hp_floats));
  });
  for (const ForwardDir& f : fw) {
    copy_final_state(f.s->h, d, f.p->reverse, f.p->h_n);
    copy_final_state(f.s->c, d, f.p->reverse, f.p->c_n);
  }
}

namespace {

// One direction, prepared for the backward time loop.
struct BackwardDir {
  const RnnDirection* p;
  const RnnSaved* s;
  const RnnDirectionGrad* g;
  Tensor w_cols;  // per block, panels of its columns of W_hh (G·H, ub)
  int64_t block_floats;
  Tensor h0, c0;      // (B, H)
  Tensor dax, dah_t;  // (T, B, G·H): the input side's and (GRU only) the recurrent side's gradients
  Tensor dh[2];       // (B, H): d loss / d h, carried from step to step (double-buffered)
  Tensor dc;          // (B, H): LSTM's d loss / d c, carried
  const Tensor& dah() const { return dah_t.defined() ? dah_t : dax; }
};

BackwardDir prepare_backward(RnnCell cell, const RnnDims& d, const RnnDirection& p,
                             const RnnSaved& s, const RnnDirectionGrad& g) {
  const int64_t block_floats = internal::kernels::panel_floats(d.G * d.H, kUnitBlock);
  BackwardDir b{&p,
                &s,
                &g,
                Tensor(Shape{unit_blocks(d.H), block_floats}),
                block_floats,
                state_or_zeros(p.h0, d),
                state_or_zeros(p.c0, d),
                Tensor(Shape{d.T, d.B, d.G * d.H}),
                cell == RnnCell::kGRU ? Tensor(Shape{d.T, d.B, d.G * d.H}) : Tensor(),
                {state_or_zeros(g.dh_n, d), Tensor(Shape{d.B, d.H})},
                state_or_zeros(g.dc_n, d)};
  for (int64_t blk = 0; blk < unit_blocks(d.H); ++blk)
    pack_panels(d.G * d.H, block_units(d.H, blk), b.w_cols.data() + blk * block_floats,
                [&](int64_t r, int64_t u) { return p.w_hh(r, blk * kUnitBlock + u); });
  return b;
}

// Phase 0 of the walk back's iteration `it` (the forward's step T − 1 − it) for one block: the gate
// gradients of every sequence, and into dh_next the part of dh_{t−1} that bypasses W_hh (GRU's dh ⊙
// z, or all of dh where the step is past the sequence).
void backward_gates_task(RnnCell cell, const RnnDims& d, std::span<const int64_t> lengths,
                         BackwardDir& bd, int64_t it, int64_t blk, float* dh_total) {
  const int64_t H = d.H, B = d.B, GH = d.G * H, ub = block_units(H, blk), j0 = blk * kUnitBlock;
  const auto [t, prev] = step_times(bd.p->reverse, d.T - 1 - it, d.T);
  const float* dh_cur = bd.dh[it % 2].data();
  float* dh_next = bd.dh[(it + 1) % 2].data();
  const RnnSaved& sv = *bd.s;
  const auto& dy = bd.g->dy;
  for (int64_t b = 0; b < B; ++b) {
    const float* carry = dh_cur + b * H + j0;
    float* next = dh_next + b * H + j0;
    if (t >= internal::rnn_length(lengths, b, d.T)) {
      std::memcpy(next, carry, sizeof(float) * static_cast<size_t>(ub));
      continue;
    }
    for (int64_t u = 0; u < ub; ++u)
      dh_total[u] = carry[u] + (dy.defined() ? dy(t, b, j0 + u) : 0.0f);
    const float* gates = sv.gates.data() + (t * B + b) * 4 * H + j0;
    float* dax = bd.dax.data() + (t * B + b) * GH + j0;
    if (cell == RnnCell::kLSTM) {
      const float* c_prev = (prev < 0 ? bd.c0.data() : sv.c.data() + prev * B * H) + b * H + j0;
      internal::kernels::lstm_backward_row(gates, H, sv.c.data() + (t * B + b) * H + j0, c_prev,
                                           dh_total, bd.dc.data() + b * H + j0, dax, H, ub);
      std::memset(next, 0, sizeof(float) * static_cast<size_t>(ub));
    } else {
      const float* h_prev = (prev < 0 ? bd.h0.data() : sv.h.data() + prev * B * H) + b * H + j0;
      internal::kernels::gru_backward_row(gates, H, h_prev, dh_total, dax,
                                          bd.dah_t.data() + (t * B + b) * GH + j0, H, next, ub);
    }
  }
}

// Phase 1: dh_next[:, block] += da_t W_hh[:, block].
void backward_state_task(const RnnDims& d, BackwardDir& bd, int64_t it, int64_t blk) {
  const int64_t H = d.H, GH = d.G * H, ub = block_units(H, blk), j0 = blk * kUnitBlock;
  const int64_t t = step_times(bd.p->reverse, d.T - 1 - it, d.T).t;
  internal::kernels::panel_gemm(bd.dah().data() + t * d.B * GH, GH, d.B,
                                bd.w_cols.data() + blk * bd.block_floats, GH, ub,
                                bd.dh[(it + 1) % 2].data() + j0, H, true);
}

// C (+)= op(A) B over raw contiguous row-major operands, on the context's threads.
void gemm_acc(const Context& ctx, bool trans_a, int64_t M, int64_t N, int64_t K, const float* a,
              int64_t lda, const float* b, int64_t ldb, TensorView c) {
  internal::BlasOutput out(c, true);
  internal::parallel_sgemm(ctx, trans_a, false, M, N, K, 1.0f, {a, 0, 0, lda}, {b, 0, 0, ldb}, 1.0f,
                           out);
  out.flush();
}

// bias += Σ_rows a (rows × cols, contiguous), summed in double in row order.
void add_column_sums(const Context& ctx, const Tensor& a, int64_t rows, int64_t cols,
                     TensorView bias) {
  if (!bias.defined()) return;
  constexpr int64_t kCols = 256;
  internal::parallel_for(
      ctx, (cols + kCols - 1) / kCols, static_cast<double>(rows * kCols), [&](int64_t blk, int) {
        const int64_t c0 = blk * kCols, c1 = std::min(cols, c0 + kCols);
        std::vector<double> acc(static_cast<size_t>(c1 - c0), 0.0);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = c0; c < c1; ++c)
            acc[c - c0] += static_cast<double>(a.data()[r * cols + c]);
        for (int64_t c = c0; c < c1; ++c)
          bias(c) = static_cast<float>(static_cast<double>(bias(c)) + acc[c - c0]);
      });
}

// After the time loop: every gradient that is a sum over steps, as GEMMs over all T·B rows.
void parameter_gradients(const RnnDims& d, const Tensor& xc, const BackwardDir& bd,
                         const Context& ctx) {
  const int64_t H = d.H, B = d.B, GH = d.G * H, TB = d.T * B, IN = d.IN;
  const RnnDirectionGrad& g = *bd.g;
  if (g.dw_ih.defined()) gemm_acc(ctx, true, GH, IN, TB, bd.dax.data(), GH, xc.data(), IN, g.dw_ih);
  if (g.dw_hh.defined()) {
    // h_{t−1} of step t is the saved state of the neighbouring time, or h0 at the first step.
    const float* dah = bd.dah().data();
    const float* h = bd.s->h.data();
    const int64_t first = bd.p->reverse ? d.T - 1 : 0, rest = (d.T - 1) * B;
    if (rest > 0) {
      if (bd.p->reverse)
        gemm_acc(ctx, true, GH, H, rest, dah, GH, h + B * H, H, g.dw_hh);
      else
        gemm_acc(ctx, true, GH, H, rest, dah + B * GH, GH, h, H, g.dw_hh);
    }
    gemm_acc(ctx, true, GH, H, B, dah + first * B * GH, GH, bd.h0.data(), H, g.dw_hh);
  }
  add_column_sums(ctx, bd.dax, TB, GH, g.db_ih);
  add_column_sums(ctx, bd.dah(), TB, GH, g.db_hh);
}

void add_state(const Tensor& src, TensorView dst) {
  if (!dst.defined()) return;
  for (int64_t b = 0; b < dst.dim(0); ++b)
    for (int64_t u = 0; u < dst.dim(1); ++u) dst(b, u) += src(b, u);
}

}  // namespace

void rnn_backward(RnnCell cell, ConstTensorView x, std::span<const int64_t> lengths,
                  std::span<const RnnDirection> dirs, const RnnSaved* saved,
                  std::span<const RnnDirectionGrad> grads, TensorView dx, const Context& ctx) {
  const char* fn = "rnn_backward";
  const RnnDims d = internal::check_rnn_forward_args(fn, cell, x, lengths, dirs, false);
  internal::check_rnn_backward_args(fn, cell, d, x, dirs, grads, dx);
  check_blas_sizes(fn, d);
  if (saved == nullptr) fail<ValueError>(fn, "needs what rnn_forward saved; got none");
  for (size_t i = 0; i < dirs.size(); ++i)
    if (!(saved[i].gates.defined() && saved[i].gates.shape() == Shape{d.T, d.B, 4 * d.H}))
      fail<ShapeError>(fn, "saved state of direction ", i, " does not match x ", x.shape().str(),
                       " and H = ", d.H);
  std::vector<BackwardDir> bw;
  for (size_t i = 0; i < dirs.size(); ++i)
    bw.push_back(prepare_backward(cell, d, dirs[i], saved[i], grads[i]));
  const int64_t blocks = unit_blocks(d.H), tasks = blocks * static_cast<int64_t>(dirs.size());
  const int threads =
      loop_threads(ctx, tasks, static_cast<double>(d.B * d.G * kUnitBlock * d.H), kUnitBlock);
  step_loop(threads, d.T, 2, tasks, [&](int64_t it, int phase, int64_t k, int worker) {
    BackwardDir& bd = bw[static_cast<size_t>(k / blocks)];
    if (phase == 0)
      backward_gates_task(cell, d, lengths, bd, it, k % blocks, ctx.scratch(worker, kUnitBlock));
    else
      backward_state_task(d, bd, it, k % blocks);
  });
  const Tensor xc = contiguous(x);
  Tensor dx_acc = dx.defined() ? Tensor(Shape{d.T * d.B, d.IN}) : Tensor();
  for (BackwardDir& bd : bw) {
    // After T iterations the carry, d loss / d h0, is in buffer T % 2.
    add_state(bd.dh[d.T % 2], bd.g->dh0);
    if (cell == RnnCell::kLSTM) add_state(bd.dc, bd.g->dc0);
    parameter_gradients(d, xc, bd, ctx);
    if (dx.defined()) {
      const Tensor w_ih = contiguous(bd.p->w_ih);
      gemm_acc(ctx, false, d.T * d.B, d.IN, d.G * d.H, bd.dax.data(), d.G * d.H, w_ih.data(), d.IN,
               dx_acc.view());
    }
  }
  if (dx.defined()) {
    const ConstTensorView acc(dx_acc.data(), x.shape());
    for (int64_t t = 0; t < d.T; ++t)
      for (int64_t b = 0; b < d.B; ++b)
        for (int64_t i = 0; i < d.IN; ++i) dx(t, b, i) += acc(t, b, i);
  }
}

}  // namespace attn::ops
