// SPDX-License-Identifier: MIT
// Merging partial attentions over disjoint key sets (attention.h): the fast float path, rows in
// parallel, and beside it the double reference, plain loops. Both share one argument check.
#include <algorithm>
#include <cmath>
#include <limits>

#include "attn/ops/attention.h"
#include "core/parallel.h"
#include "ops/internal/checks.h"
#include "ops/internal/rows.h"

namespace attn::ops {

namespace {

// The shape of lse for an out of shape (..., HSV).
Shape lse_shape_of(const Shape& out) {
  return Shape(std::span<const int64_t>(out.begin(), static_cast<size_t>(out.rank() - 1)));
}

template <typename T>
void check_pair(const char* fn, const char* out_name, const char* lse_name,
                const BasicView<const T>& out, const BasicView<const T>& lse, const Shape& want) {
  internal::check_shape(fn, out_name, out, want, "the shape of out_a");
  internal::check_shape(fn, lse_name, lse, lse_shape_of(want), "out_a's shape without HSV");
}

template <typename T>
void check_merge_forward(const BasicView<const T>& out_a, const BasicView<const T>& lse_a,
                         const BasicView<const T>& out_b, const BasicView<const T>& lse_b,
                         const BasicView<T>& out, const BasicView<T>& lse) {
  constexpr const char* fn = "attention_merge_forward";
  internal::check_defined(fn, "out_a", out_a);
  if (out_a.rank() < 1) fail<ShapeError>(fn, "out_a must have rank >= 1, got a scalar");
  const Shape want = out_a.shape();
  check_pair(fn, "out_a", "lse_a", out_a, lse_a, want);
  check_pair(fn, "out_b", "lse_b", out_b, lse_b, want);
  check_pair(fn, "out", "lse", BasicView<const T>(out), BasicView<const T>(lse), want);
  internal::check_output_or_in_place(fn, "out", out, out_a);
  internal::check_output_or_in_place(fn, "lse", lse, lse_a);
  internal::check_output(fn, "out", out, out_b, lse_a, lse_b, lse);
  internal::check_output(fn, "lse", lse, out_a, out_b, lse_b);
}

template <typename T>
void check_merge_backward(const BasicView<const T>& out_a, const BasicView<const T>& lse_a,
                          const BasicView<const T>& out_b, const BasicView<const T>& lse_b,
                          const BasicView<const T>& out, const BasicView<const T>& lse,
                          const BasicView<const T>& dout, const BasicView<const T>& dlse,
                          const BasicView<T>& dout_a, const BasicView<T>& dlse_a,
                          const BasicView<T>& dout_b, const BasicView<T>& dlse_b) {
  constexpr const char* fn = "attention_merge_backward";
  internal::check_defined(fn, "out_a", out_a);
  if (out_a.rank() < 1) fail<ShapeError>(fn, "out_a must have rank >= 1, got a scalar");
  const Shape want = out_a.shape(), want_lse = lse_shape_of(want);
  check_pair(fn, "out_a", "lse_a", out_a, lse_a, want);
  check_pair(fn, "out_b", "lse_b", out_b, lse_b, want);
  check_pair(fn, "out", "lse", out, lse, want);
  internal::check_shape(fn, "dout", dout, want, "the shape of out_a");
  if (dlse.defined()) internal::check_shape(fn, "dlse", dlse, want_lse, "the shape of lse_a");
  const char* names[] = {"dout_a", "dlse_a", "dout_b", "dlse_b"};
  const BasicView<T>* grads[] = {&dout_a, &dlse_a, &dout_b, &dlse_b};
  for (int i = 0; i < 4; ++i) {
    if (!grads[i]->defined()) continue;
    internal::check_shape(fn, names[i], BasicView<const T>(*grads[i]), i % 2 ? want_lse : want,
                          i % 2 ? "the shape of lse_a" : "the shape of out_a");
    internal::check_output(fn, names[i], *grads[i], out_a, lse_a, out_b, lse_b, out, lse, dout,
                           dlse);
    for (int j = 0; j < i; ++j) internal::check_output(fn, names[i], *grads[i], *grads[j]);
  }
}

// exp(x - m) that is 0 for x = -inf (also when m = -inf: the part saw no key).
template <typename T>
T weight(T x, T m) {
  return x == -std::numeric_limits<T>::infinity() ? T(0) : std::exp(x - m);
}

// log(exp(a) + exp(b)) without overflow; -inf when both are.
template <typename T>
T log_add_exp(T a, T b) {
  const T hi = std::max(a, b), lo = std::min(a, b);
  if (hi == -std::numeric_limits<T>::infinity()) return hi;
  return hi + std::log1p(std::exp(lo - hi));
}

// Element offsets of a view in row-major order (the rows of out and the elements of lse share it);
// empty for an undefined view.
template <typename T>
std::vector<int64_t> offsets_or_empty(const BasicView<T>& v) {
  std::vector<int64_t> o;
  if (v.defined()) for_each_offset(v.shape(), v.strides(), [&](int64_t x) { o.push_back(x); });
  return o;
}

constexpr int64_t kRowsPerTask = 256;

}  // namespace

void attention_merge_forward(ConstTensorView out_a, ConstTensorView lse_a, ConstTensorView out_b,
                             ConstTensorView lse_b, TensorView out, TensorView lse,
                             const Context& ctx) {
  check_merge_forward(out_a, lse_a, out_b, lse_b, out, lse);
  const int64_t D = out_a.dim(-1);
  const int64_t sa = out_a.stride(-1), sb = out_b.stride(-1), so = out.stride(-1);
  const auto ra = internal::row_offsets(out_a), rb = internal::row_offsets(out_b),
             ro = internal::row_offsets(out);
  const auto la = offsets_or_empty(lse_a), lb = offsets_or_empty(lse_b), lo = offsets_or_empty(lse);
  const int64_t rows = static_cast<int64_t>(ra.size());
  internal::parallel_for(ctx, (rows + kRowsPerTask - 1) / kRowsPerTask, [&](int64_t task, int) {
    for (int64_t r = task * kRowsPerTask; r < std::min(rows, (task + 1) * kRowsPerTask); ++r) {
      const size_t i = static_cast<size_t>(r);
      const float a = lse_a.data()[la[i]], b = lse_b.data()[lb[i]];
      const float m = log_add_exp(a, b), wa = weight(a, m), wb = weight(b, m);
      const float* pa = out_a.data() + ra[i];
      const float* pb = out_b.data() + rb[i];
      float* po = out.data() + ro[i];
      for (int64_t d = 0; d < D; ++d) po[d * so] = wa * pa[d * sa] + wb * pb[d * sb];
      lse.data()[lo[i]] = m;
    }
  });
}

void attention_merge_backward(ConstTensorView out_a, ConstTensorView lse_a, ConstTensorView out_b,
                              ConstTensorView lse_b, ConstTensorView out, ConstTensorView lse,
                              ConstTensorView dout, ConstTensorView dlse, TensorView dout_a,
                              TensorView dlse_a, TensorView dout_b, TensorView dlse_b,
                              const Context& ctx) {
  check_merge_backward(out_a, lse_a, out_b, lse_b, out, lse, dout, dlse, dout_a, dlse_a, dout_b,
                       dlse_b);
  const int64_t D = out_a.dim(-1);
  const auto ra = internal::row_offsets(out_a), rb = internal::row_offsets(out_b),
             ro = internal::row_offsets(out), rg = internal::row_offsets(dout);
  const auto la = offsets_or_empty(lse_a), lb = offsets_or_empty(lse_b), l = offsets_or_empty(lse),
             lg = offsets_or_empty(dlse), lga = offsets_or_empty(dlse_a),
             lgb = offsets_or_empty(dlse_b);
  const int64_t rows = static_cast<int64_t>(ra.size());
  const auto dga = dout_a.defined() ? internal::row_offsets(dout_a) : std::vector<int64_t>{};
  const auto dgb = dout_b.defined() ? internal::row_offsets(dout_b) : std::vector<int64_t>{};
  internal::parallel_for(ctx, (rows + kRowsPerTask - 1) / kRowsPerTask, [&](int64_t task, int) {
    for (int64_t r = task * kRowsPerTask; r < std::min(rows, (task + 1) * kRowsPerTask); ++r) {
      const size_t i = static_cast<size_t>(r);
      const float m = lse.data()[l[i]];
      const float g_lse = dlse.defined() ? dlse.data()[lg[i]] : 0.0f;
      const float* po = out.data() + ro[i];
      const float* pg = dout.data() + rg[i];
      auto one_part = [&](const ConstTensorView& part, const std::vector<int64_t>& rows_x,
                          float lse_x, const TensorView& d_out_x,
                          const std::vector<int64_t>& d_rows_x, const TensorView& d_lse_x,
                          const std::vector<int64_t>& d_lse_offsets) {
        const float w = weight(lse_x, m);
        const float* px = part.data() + rows_x[i];
        if (d_out_x.defined()) {
          float* d = d_out_x.data() + d_rows_x[i];
          for (int64_t j = 0; j < D; ++j) d[j * d_out_x.stride(-1)] += w * pg[j * dout.stride(-1)];
        }
        if (d_lse_x.defined() && w != 0.0f) {
          double dot = 0.0;
          for (int64_t j = 0; j < D; ++j)
            dot += static_cast<double>(pg[j * dout.stride(-1)]) *
                   (static_cast<double>(px[j * part.stride(-1)]) -
                    static_cast<double>(po[j * out.stride(-1)]));
          d_lse_x.data()[d_lse_offsets[i]] += w * (static_cast<float>(dot) + g_lse);
        }
      };
      one_part(out_a, ra, lse_a.data()[la[i]], dout_a, dga, dlse_a, lga);
      one_part(out_b, rb, lse_b.data()[lb[i]], dout_b, dgb, dlse_b, lgb);
    }
  });
}

AttentionMerge attention_merge(ConstTensorView out_a, ConstTensorView lse_a, ConstTensorView out_b,
                               ConstTensorView lse_b, const Context& ctx) {
  internal::check_defined("attention_merge", "out_a", out_a);
  AttentionMerge r{Tensor(out_a.shape()),
                   Tensor(out_a.rank() >= 1 ? lse_shape_of(out_a.shape()) : Shape{})};
  attention_merge_forward(out_a, lse_a, out_b, lse_b, r.out, r.lse, ctx);
  return r;
}

namespace reference {

void attention_merge_forward(ConstTensorViewD out_a, ConstTensorViewD lse_a, ConstTensorViewD out_b,
                             ConstTensorViewD lse_b, TensorViewD out, TensorViewD lse,
                             const Context&) {
  check_merge_forward(out_a, lse_a, out_b, lse_b, out, lse);
  const int64_t D = out_a.dim(-1);
  const auto ra = internal::row_offsets(out_a), rb = internal::row_offsets(out_b),
             ro = internal::row_offsets(out);
  const auto la = offsets_or_empty(lse_a), lb = offsets_or_empty(lse_b), lo = offsets_or_empty(lse);
  for (size_t i = 0; i < ra.size(); ++i) {
    const double a = lse_a.data()[la[i]], b = lse_b.data()[lb[i]];
    const double m = log_add_exp(a, b), wa = weight(a, m), wb = weight(b, m);
    for (int64_t d = 0; d < D; ++d)
      out.data()[ro[i] + d * out.stride(-1)] = wa * out_a.data()[ra[i] + d * out_a.stride(-1)] +
                                               wb * out_b.data()[rb[i] + d * out_b.stride(-1)];
    lse.data()[lo[i]] = m;
  }
}

void attention_merge_backward(ConstTensorViewD out_a, ConstTensorViewD lse_a,
                              ConstTensorViewD out_b, ConstTensorViewD lse_b, ConstTensorViewD out,
                              ConstTensorViewD lse, ConstTensorViewD dout, ConstTensorViewD dlse,
                              TensorViewD dout_a, TensorViewD dlse_a, TensorViewD dout_b,
                              TensorViewD dlse_b, const Context&) {
  check_merge_backward(out_a, lse_a, out_b, lse_b, out, lse, dout, dlse, dout_a, dlse_a, dout_b,
                       dlse_b);
  const int64_t D = out_a.dim(-1);
  const auto ro = internal::row_offsets(out), rg = internal::row_offsets(dout);
  const auto l = offsets_or_empty(lse), lg = offsets_or_empty(dlse);
  struct Part {
    ConstTensorViewD o, lse;
    TensorViewD d_o, d_lse;
  };
  for (const Part& p : {Part{out_a, lse_a, dout_a, dlse_a}, Part{out_b, lse_b, dout_b, dlse_b}}) {
    const auto rx = internal::row_offsets(p.o), lx = offsets_or_empty(p.lse);
    const auto rdx = p.d_o.defined() ? internal::row_offsets(p.d_o) : std::vector<int64_t>{};
    const auto ldx = offsets_or_empty(p.d_lse);
    for (size_t i = 0; i < rx.size(); ++i) {
      const double w = weight(p.lse.data()[lx[i]], lse.data()[l[i]]);
      double dot = 0.0;
      for (int64_t j = 0; j < D; ++j) {
        const double g = dout.data()[rg[i] + j * dout.stride(-1)];
        dot +=
            g * (p.o.data()[rx[i] + j * p.o.stride(-1)] - out.data()[ro[i] + j * out.stride(-1)]);
        if (p.d_o.defined()) p.d_o.data()[rdx[i] + j * p.d_o.stride(-1)] += w * g;
      }
      if (p.d_lse.defined())
        p.d_lse.data()[ldx[i]] += w * (dot + (dlse.defined() ? dlse.data()[lg[i]] : 0.0));
    }
  }
}

}  // namespace reference
}  // namespace attn::ops
