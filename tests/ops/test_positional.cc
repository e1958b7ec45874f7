// SPDX-License-Identifier: MIT
// Sinusoidal positional encoding: closed form, and the lecture's property that PE(pos + k) is a
// fixed linear map of PE(pos). Also shows that the common "(2i+1)/d for the cosine" variant loses
// it (docs/positional_encoding.md explains why).
#include <cmath>
#include <functional>

#include "testing/testing.h"

namespace attn::testing {
namespace {

using PeFn = std::function<double(int64_t pos, int64_t c, int64_t C)>;

// Closed form, written with pow (the library uses exp/log).
double closed_form(int64_t pos, int64_t c, int64_t C) {
  const double pair = static_cast<double>(c / 2);
  const double angle =
      static_cast<double>(pos) / std::pow(10000.0, 2.0 * pair / static_cast<double>(C));
  return c % 2 == 0 ? std::sin(angle) : std::cos(angle);
}
// The variant: the cosine of column 2i+1 uses exponent (2i+1)/d instead of 2i/d.
double odd_exponent_variant(int64_t pos, int64_t c, int64_t C) {
  const double angle =
      static_cast<double>(pos) / std::pow(10000.0, static_cast<double>(c) / static_cast<double>(C));
  return c % 2 == 0 ? std::sin(angle) : std::cos(angle);
}

TEST(SinusoidalEncoding, MatchesTheClosedForm) {
  for (int64_t C : {1, 2, 7, 64, 512}) {
    TensorD table(Shape{300, C});
    ops::sinusoidal_encoding(table.view());
    for (int64_t pos = 0; pos < 300; ++pos)
      for (int64_t c = 0; c < C; ++c)
        ASSERT_NEAR(table(pos, c), closed_form(pos, c, C), 1e-12) << pos << "," << c;
  }
  // The lecture's printout starts 0.8415 (sin 1), 0.5403 (cos 1), 0.8219, 0.5697 for d = 512.
  TensorD row(Shape{1, 512});
  ops::sinusoidal_encoding(row.view(), 1);
  EXPECT_NEAR(row(0, 0), 0.8415, 5e-5);
  EXPECT_NEAR(row(0, 1), 0.5403, 5e-5);
  EXPECT_NEAR(row(0, 2), 0.8219, 5e-5);
  EXPECT_NEAR(row(0, 3), 0.5697, 5e-5);
}

TEST(SinusoidalEncoding, StartPositionFloatTableAndAddAgree) {
  TensorD full(Shape{50, 10});
  ops::sinusoidal_encoding(full.view());
  TensorD tail(Shape{20, 10});
  ops::sinusoidal_encoding(tail.view(), 30);
  EXPECT_TRUE((all_close<double, double>(tail.view(), full.view().slice(0, 30, 50), 1e-12)));
  Tensor f(Shape{50, 10});
  ops::sinusoidal_encoding(f.view());
  EXPECT_TRUE(all_close(f, full, 1e-7));

  Rng rng(1);
  const Tensor x = random_tensor<float>(Shape{2, 20, 10}, rng);
  Tensor out(x.shape());
  Context ctx;
  ops::add_sinusoidal_encoding(x, out, 30, ctx);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 20; ++t)
      for (int64_t c = 0; c < 10; ++c)
        EXPECT_FLOAT_EQ(out(b, t, c), x(b, t, c) + static_cast<float>(tail(t, c)));
  Tensor inplace = Tensor::copy_of(x.view());
  ops::add_sinusoidal_encoding(inplace, inplace, 30, ctx);
  EXPECT_TRUE(all_close(inplace, out, 0.0));
  ATTN_EXPECT_THROW_MSG(ops::add_sinusoidal_encoding(Tensor(Shape{20, 10}), out, 0, ctx),
                        ShapeError, "add_sinusoidal_encoding", "rank 3");
  ATTN_EXPECT_THROW_MSG(ops::sinusoidal_encoding(f.view(), 0, 1.0), ValueError,
                        "base must be finite and > 1");
  ATTN_EXPECT_THROW_MSG(ops::sinusoidal_encoding(f.view(), -1), ValueError, "start_pos");
}

// max over pos of |PE(pos + k) − M · PE(pos)|.
double shift_error(const TensorD& M, const PeFn& pe, int64_t k, int64_t C) {
  double worst = 0.0;
  for (int64_t pos = 0; pos < 2000; pos += 7) {
    for (int64_t r = 0; r < C; ++r) {
      double mapped = 0.0;
      for (int64_t c = 0; c < C; ++c) mapped += M(r, c) * pe(pos, c, C);
      worst = std::max(worst, std::abs(pe(pos + k, r, C) - mapped));
    }
  }
  return worst;
}

TEST(SinusoidalEncoding, ShiftByKIsAFixedBlockRotation) {
  const int64_t C = 32;
  for (int64_t k : {1, 2, 5, 17, 100, 999, -3}) {
    SCOPED_TRACE(k);
    const TensorD M = ops::sinusoidal_shift_matrix(k, C);
    EXPECT_LT(shift_error(M, closed_form, k, C), 1e-9);
    // The map depends on k alone: it can be read off PE(k) itself, block i = [[c, s], [-s, c]] with
    // (s, c) = (PE(k, 2i), PE(k, 2i+1)).
    for (int64_t i = 0; i < C / 2; ++i) {
      EXPECT_NEAR(M(2 * i, 2 * i), closed_form(k, 2 * i + 1, C), 1e-12);
      EXPECT_NEAR(M(2 * i, 2 * i + 1), closed_form(k, 2 * i, C), 1e-12);
      EXPECT_NEAR(M(2 * i + 1, 2 * i), -closed_form(k, 2 * i, C), 1e-12);
    }
    // A rotation: Mᵀ M = I, and zero outside the 2×2 diagonal blocks.
    for (int64_t r = 0; r < C; ++r)
      for (int64_t c = 0; c < C; ++c) {
        double mtm = 0.0;
        for (int64_t j = 0; j < C; ++j) mtm += M(j, r) * M(j, c);
        EXPECT_NEAR(mtm, r == c ? 1.0 : 0.0, 1e-12);
        if (r / 2 != c / 2) {
          EXPECT_EQ(M(r, c), 0.0);
        }
      }
  }
  ATTN_EXPECT_THROW_MSG(ops::sinusoidal_shift_matrix(1, 7), ValueError, "C must be even");
}

// Best block-diagonal linear map (any 2×2 per pair, rotation or not) from PE(pos) to PE(pos+k),
// fitted by least squares over many positions; returns the largest residual. Zero iff such a map
// exists.
double best_block_map_residual(const PeFn& pe, int64_t k, int64_t C) {
  double worst = 0.0;
  for (int64_t i = 0; i < C / 2; ++i) {
    // Normal equations A = Y Xᵀ (X Xᵀ)⁻¹ for this pair's 2-vectors.
    double xx[2][2] = {}, yx[2][2] = {};
    auto x_of = [&](int64_t pos, int j) { return pe(pos, 2 * i + j, C); };
    for (int64_t pos = 0; pos < 2000; pos += 7)
      for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b) {
          xx[a][b] += x_of(pos, a) * x_of(pos, b);
          yx[a][b] += x_of(pos + k, a) * x_of(pos, b);
        }
    const double det = xx[0][0] * xx[1][1] - xx[0][1] * xx[1][0];
    const double inv[2][2] = {{xx[1][1] / det, -xx[0][1] / det}, {-xx[1][0] / det, xx[0][0] / det}};
    double A[2][2];
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b) A[a][b] = yx[a][0] * inv[0][b] + yx[a][1] * inv[1][b];
    for (int64_t pos = 0; pos < 2000; pos += 7)
      for (int a = 0; a < 2; ++a)
        worst = std::max(
            worst, std::abs(x_of(pos + k, a) - A[a][0] * x_of(pos, 0) - A[a][1] * x_of(pos, 1)));
  }
  return worst;
}

TEST(SinusoidalEncoding, OddExponentVariantHasNoFixedShiftMap) {
  const int64_t C = 32;
  for (int64_t k : {1, 5, 17}) {
    SCOPED_TRACE(k);
    EXPECT_LT(best_block_map_residual(closed_form, k, C), 1e-9);
    // With different frequencies for sin and cos of a pair, no fixed map can advance both.
    EXPECT_GT(best_block_map_residual(odd_exponent_variant, k, C), 0.05);
  }
}

}  // namespace
}  // namespace attn::testing
