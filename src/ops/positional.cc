// SPDX-License-Identifier: MIT
// Sinusoidal positional encoding and its shift matrix (see include/attn/ops/positional.h).
#include "attn/ops/positional.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "ops/internal/checks.h"

namespace attn::ops {

namespace {

void check_base(const char* fn, double base) {
  if (!std::isfinite(base) || base <= 1.0)
    fail<ValueError>(fn, "base must be finite and > 1, got ", base);
}

// ω_i = base^(-2i/C): the angular frequency of pair i (columns 2i and 2i+1).
double frequency(int64_t pair, int64_t C, double base) {
  return std::exp(-static_cast<double>(2 * pair) / static_cast<double>(C) * std::log(base));
}

double encoding(int64_t pos, int64_t c, int64_t C, double base) {
  const double angle = static_cast<double>(pos) * frequency(c / 2, C, base);
  return c % 2 == 0 ? std::sin(angle) : std::cos(angle);
}

template <typename T>
void table_impl(BasicView<T> table, int64_t start_pos, double base) {
  constexpr const char* fn = "sinusoidal_encoding";
  internal::check_rank(fn, "table", table, 2);
  check_base(fn, base);
  internal::check_output(fn, "table", table);
  const int64_t T_ = table.dim(0), C = table.dim(1);
  if (start_pos < 0 || start_pos > (int64_t{1} << 40))
    fail<ValueError>(fn, "start_pos must be in [0, 2^40], got ", start_pos);
  for (int64_t t = 0; t < T_; ++t)
    for (int64_t c = 0; c < C; ++c)
      table(t, c) = static_cast<T>(encoding(start_pos + t, c, C, base));
}

}  // namespace

void sinusoidal_encoding(TensorView table, int64_t start_pos, double base) {
  table_impl(table, start_pos, base);
}
void sinusoidal_encoding(TensorViewD table, int64_t start_pos, double base) {
  table_impl(table, start_pos, base);
}

void add_sinusoidal_encoding(ConstTensorView x, TensorView out, int64_t start_pos, const Context&,
                             double base) {
  constexpr const char* fn = "add_sinusoidal_encoding";
  internal::check_rank(fn, "x", x, 3);
  internal::check_shape(fn, "out", out, x.shape(), "same as x, (B, T, C)");
  internal::check_output_or_in_place(fn, "out", out, x);
  const int64_t B = x.dim(0), T_ = x.dim(1), C = x.dim(2);
  if (B == 0 || T_ == 0 || C == 0) return;
  Tensor pe = Tensor::uninitialized(Shape{T_, C});
  sinusoidal_encoding(pe.view(), start_pos, base);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T_; ++t) {
      const float* p = pe.data() + t * C;
      if (x.stride(2) == 1 && out.stride(2) == 1) {  // rows as pointers (index math per element
        const float* xr = &x(b, t, 0);               // was most of this op's time)
        float* yr = &out(b, t, 0);
        for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] + p[c];
      } else {
        for (int64_t c = 0; c < C; ++c) out(b, t, c) = x(b, t, c) + p[c];
      }
    }
}

TensorD sinusoidal_shift_matrix(int64_t k, int64_t C, double base) {
  constexpr const char* fn = "sinusoidal_shift_matrix";
  check_base(fn, base);
  if (C < 2 || C % 2 != 0) fail<ValueError>(fn, "C must be even and >= 2, got ", C);
  TensorD m(Shape{C, C});
  for (int64_t i = 0; i < C / 2; ++i) {
    const double a = static_cast<double>(k) * frequency(i, C, base);
    // sin(x + a) = sin x cos a + cos x sin a;  cos(x + a) = cos x cos a − sin x sin a.
    m(2 * i, 2 * i) = std::cos(a);
    m(2 * i, 2 * i + 1) = std::sin(a);
    m(2 * i + 1, 2 * i) = -std::sin(a);
    m(2 * i + 1, 2 * i + 1) = std::cos(a);
  }
  return m;
}

namespace {

// Rotates every (x1, x2) pair of x (B, NH, T, HS) by sign · (start_pos + t) · θ_i, θ_i =
// base^(-2i/HS).
void rope_rotate(const char* fn, TensorView x, int64_t start_pos, double base, RopeLayout layout,
                 double sign, const Context& ctx) {
  internal::check_rank(fn, "x", x, 4);
  check_base(fn, base);
  internal::check_output(fn, "x", x);
  const int64_t B = x.dim(0), NH = x.dim(1), T_ = x.dim(2), HS = x.dim(3);
  if (HS % 2 != 0)
    fail<ValueError>(fn, "head size must be even for RoPE, x has shape ", x.shape().str());
  if (start_pos < 0) fail<ValueError>(fn, "start_pos must be >= 0, got ", start_pos);
  const int64_t half = HS / 2;
  // cos/sin table (T, HS/2), computed in double once and shared by every (batch, head).
  std::vector<float> cs(static_cast<size_t>(T_ * half)), sn(static_cast<size_t>(T_ * half));
  for (int64_t t = 0; t < T_; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double a = sign * static_cast<double>(start_pos + t) * frequency(i, HS, base);
      cs[static_cast<size_t>(t * half + i)] = static_cast<float>(std::cos(a));
      sn[static_cast<size_t>(t * half + i)] = static_cast<float>(std::sin(a));
    }
  internal::parallel_for(ctx, B * NH, [&](int64_t bh, int) {
    const int64_t b = bh / NH, h = bh % NH;
    for (int64_t t = 0; t < T_; ++t)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t c1 = layout == RopeLayout::kInterleaved ? 2 * i : i;
        const int64_t c2 = layout == RopeLayout::kInterleaved ? 2 * i + 1 : i + half;
        float& x1 = x(b, h, t, c1);
        float& x2 = x(b, h, t, c2);
        const float c = cs[static_cast<size_t>(t * half + i)],
                    s = sn[static_cast<size_t>(t * half + i)];
        const float a = x1, d = x2;
        x1 = a * c - d * s;
        x2 = a * s + d * c;
      }
  });
}

}  // namespace

void rope_forward(TensorView x, int64_t start_pos, const Context& ctx, double base,
                  RopeLayout layout) {
  rope_rotate("rope_forward", x, start_pos, base, layout, 1.0, ctx);
}

void rope_backward(TensorView dx, int64_t start_pos, const Context& ctx, double base,
                   RopeLayout layout) {
  rope_rotate("rope_backward", dx, start_pos, base, layout, -1.0, ctx);
}

int64_t t5_relative_position_bucket(int64_t relative_position, bool bidirectional,
                                    int64_t num_buckets, int64_t max_distance) {
  constexpr const char* fn = "t5_relative_position_bucket";
  if (num_buckets < (bidirectional ? 4 : 2))
    fail<ValueError>(fn, "num_buckets too small: ", num_buckets);
  int64_t ret = 0, n;
  if (bidirectional) {
    num_buckets /= 2;
    if (relative_position > 0) ret += num_buckets;
    n = relative_position < 0 ? -relative_position : relative_position;
  } else {
    n = relative_position < 0 ? -relative_position : 0;
  }
  const int64_t max_exact = num_buckets / 2;
  if (max_distance <= max_exact)
    fail<ValueError>(fn, "max_distance must exceed ", max_exact, ", got ", max_distance);
  if (n < max_exact) return ret + n;
  // float32 arithmetic, as HF T5 computes it in torch (so bucket edges agree exactly).
  const float ratio = std::log(static_cast<float>(n) / static_cast<float>(max_exact)) /
                      static_cast<float>(std::log(static_cast<double>(max_distance) /
                                                  static_cast<double>(max_exact)));
  const auto large =
      max_exact + static_cast<int64_t>(ratio * static_cast<float>(num_buckets - max_exact));
  return ret + std::min(large, num_buckets - 1);
}

}  // namespace attn::ops
