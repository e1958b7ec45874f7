// SPDX-License-Identifier: MIT
// Sinusoidal positional encoding and its shift matrix (see include/attn/ops/positional.h).
#include "attn/ops/positional.h"

#include <cmath>

#include "ops/internal/checks.h"

namespace attn::ops {

namespace {

void check_base(const char* fn, double base) {
  if (!std::isfinite(base) || base <= 1.0) fail<ValueError>(fn, "base must be finite and > 1, got ", base);
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
    for (int64_t c = 0; c < C; ++c) table(t, c) = static_cast<T>(encoding(start_pos + t, c, C, base));
}

}  // namespace

void sinusoidal_encoding(TensorView table, int64_t start_pos, double base) { table_impl(table, start_pos, base); }
void sinusoidal_encoding(TensorViewD table, int64_t start_pos, double base) { table_impl(table, start_pos, base); }

void add_sinusoidal_encoding(ConstTensorView x, TensorView out, int64_t start_pos, const Context&, double base) {
  constexpr const char* fn = "add_sinusoidal_encoding";
  internal::check_rank(fn, "x", x, 3);
  internal::check_shape(fn, "out", out, x.shape(), "same as x, (B, T, C)");
  if (!(out.data() == x.data() && out.strides() == x.strides())) internal::check_output(fn, "out", out, x);
  const int64_t B = x.dim(0), T_ = x.dim(1), C = x.dim(2);
  Tensor pe(Shape{T_, C});
  sinusoidal_encoding(pe.view(), start_pos, base);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T_; ++t)
      for (int64_t c = 0; c < C; ++c) out(b, t, c) = x(b, t, c) + pe(t, c);
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

}  // namespace attn::ops
