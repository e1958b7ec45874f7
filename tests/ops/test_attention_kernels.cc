// SPDX-License-Identifier: MIT
// The SIMD building blocks of the fused attention on their own: the exp2 every probability goes
// through and the broadcast micro-kernel every tile product uses. The attention sweeps test them
// only through tolerances sized for whole outputs, which an exp2 a few ulp off would still pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ops/internal/attention_kernels.h"
#include "testing/testing.h"

namespace attn {
namespace {

namespace k = internal::kernels;

TEST(AttentionKernels, Exp2WithinTwoUlpOverTheUsedRange) {
  // Softmax arguments are s - max ≤ 0 (slightly above 0 only by rounding); sample [-126, 4]
  // densely, plus the edges of every unit interval where the polynomial argument is ±1/2.
  std::vector<float> x;
  for (int i = 0; i <= 130000; ++i) x.push_back(-126.0f + 0.001f * static_cast<float>(i));
  for (int n = -126; n <= 4; ++n)
    for (float e : {-0.5f, 0.5f}) x.push_back(std::nextafter(static_cast<float>(n) + e, 0.0f));
  std::vector<float> y(x.size());
  k::exp2_row(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double exact = std::exp2(static_cast<double>(x[i]));
    worst = std::max(worst, std::abs(static_cast<double>(y[i]) - exact) / exact);
  }
  // The degree-5 fit has relative error 7.7e-8 in exact arithmetic; float rounding of the Horner
  // steps adds about 1 ulp (2^-24 = 6e-8 relative). 2 ulp of float at the top of a binade: 2.4e-7.
  EXPECT_LT(worst, 2.4e-7);
}

TEST(AttentionKernels, Exp2UnderflowsToExactZero) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {-inf,    -1e30f,  -1000.0f, -127.0f, -127.4f,
                                -128.0f, -126.0f, 0.0f,     3.0f};
  std::vector<float> y(x.size());
  k::exp2_row(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(y[i], 0.0f) << "x = " << x[i];
  EXPECT_NEAR(y[6], std::exp2(-126.0), 2.4e-7 * std::exp2(-126.0));
  EXPECT_NEAR(y[7], 1.0f, 2.4e-7f);
  EXPECT_NEAR(y[8], 8.0f, 8 * 2.4e-7f);
}

// A NaN score must make its row NaN, so exp2 must not clamp NaN to -127 (every lane position, and
// the partial vector at the end).
TEST(AttentionKernels, Exp2PropagatesNaN) {
  std::vector<float> x(37, 0.5f), y(x.size());
  for (size_t i = 0; i < x.size(); i += 3) x[i] = std::numeric_limits<float>::quiet_NaN();
  k::exp2_row(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(std::isnan(y[i]), i % 3 == 0) << "i = " << i << ": " << y[i];
}

TEST(AttentionKernels, GemmBcastMatchesPlainLoopsOnOddShapes) {
  // Every register tile (rows 1..6, 1..4 vectors and the masked tail; the wide one- and two-row
  // strips of up to 8 vectors) and both A layouts.
  for (int64_t M : {1, 2, 5, 6, 7, 13}) {
    for (int64_t N : {1, 15, 16, 17, 33, 48, 64, 65, 80, 129, 200}) {
      for (int64_t K : {1, 3, 64}) {
        for (bool a_rows_contiguous : {true, false}) {
          for (bool accumulate : {false, true}) {
            const int64_t a_rs = a_rows_contiguous ? K + 1 : 1,
                          a_ks = a_rows_contiguous ? 1 : M + 2;
            const int64_t b_rs = N + 3, c_rs = N + 1;
            std::vector<float> A(static_cast<size_t>((M + 2) * (K + 1) + 8)),
                B(static_cast<size_t>(K * b_rs)), C(static_cast<size_t>(M * c_rs));
            for (size_t i = 0; i < A.size(); ++i) A[i] = static_cast<float>((i * 7) % 11) - 5.0f;
            for (size_t i = 0; i < B.size(); ++i) B[i] = static_cast<float>((i * 5) % 13) - 6.0f;
            for (size_t i = 0; i < C.size(); ++i) C[i] = static_cast<float>(i % 3);
            std::vector<float> expected = C;
            for (int64_t r = 0; r < M; ++r)
              for (int64_t c = 0; c < N; ++c) {
                double acc = accumulate
                                 ? static_cast<double>(expected[static_cast<size_t>(r * c_rs + c)])
                                 : 0.0;
                for (int64_t kk = 0; kk < K; ++kk)
                  acc += static_cast<double>(A[static_cast<size_t>(r * a_rs + kk * a_ks)]) *
                         static_cast<double>(B[static_cast<size_t>(kk * b_rs + c)]);
                expected[static_cast<size_t>(r * c_rs + c)] = static_cast<float>(acc);
              }
            k::gemm_bcast(M, N, K, A.data(), a_rs, a_ks, B.data(), b_rs, C.data(), c_rs,
                          accumulate);
            // Small integers: every product and partial sum is exact in float, so the match is
            // exact; columns c ≥ N of each C row (padding) must be untouched.
            for (int64_t r = 0; r < M; ++r)
              for (int64_t c = 0; c < c_rs; ++c) {
                const size_t i = static_cast<size_t>(r * c_rs + c);
                const float want = c < N ? expected[i] : static_cast<float>(i % 3);
                ASSERT_EQ(C[i], want)
                    << "M=" << M << " N=" << N << " K=" << K << " r=" << r << " c=" << c;
              }
          }
        }
      }
    }
  }
}

TEST(AttentionKernels, GemmColumnMaxFoldsEveryRowOfEveryColumn) {
  // The max must cover all row tiles (6-row and remainder) and every column strip width.
  for (int64_t M : {1, 7, 13, 128}) {
    for (int64_t N : {16, 17, 48, 64, 80, 128}) {
      const int64_t K = 5;
      std::vector<float> A(static_cast<size_t>(M * K)), B(static_cast<size_t>(K * N)),
          C(static_cast<size_t>(M * N));
      for (size_t i = 0; i < A.size(); ++i) A[i] = static_cast<float>((i * 7) % 11) - 5.0f;
      for (size_t i = 0; i < B.size(); ++i) B[i] = static_cast<float>((i * 5) % 13) - 6.0f;
      std::vector<float> col_max(static_cast<size_t>(N), 3.0f);  // folds into what is there
      k::gemm_bcast_col_max(M, N, K, A.data(), K, 1, B.data(), N, C.data(), N, col_max.data());
      for (int64_t c = 0; c < N; ++c) {
        float want = 3.0f;
        for (int64_t r = 0; r < M; ++r) want = std::max(want, C[static_cast<size_t>(r * N + c)]);
        ASSERT_EQ(col_max[static_cast<size_t>(c)], want) << "M=" << M << " N=" << N << " c=" << c;
      }
    }
  }
}

TEST(AttentionKernels, PackTransposedScalesTransposesAndZeroPads) {
  for (int64_t cols : {1, 3, 4, 8, 17, 64}) {
    for (int64_t n_valid : {1, 5, 16, 31, 32}) {
      const int64_t width = 32, row_stride = cols + 3;
      std::vector<float> rows(static_cast<size_t>(width * row_stride));
      for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i % 97) - 40.0f;
      std::vector<float> packed(static_cast<size_t>(cols * width), -1.0f);
      k::pack_transposed(rows.data(), row_stride, n_valid, width, cols, 0.5f, packed.data());
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t i = 0; i < width; ++i) {
          const float want =
              i < n_valid ? 0.5f * rows[static_cast<size_t>(i * row_stride + c)] : 0.0f;
          ASSERT_EQ(packed[static_cast<size_t>(c * width + i)], want)
              << "cols=" << cols << " n_valid=" << n_valid;
        }
    }
  }
}

TEST(AttentionKernels, StoreScaledRowsWritesEveryRowWithOrWithoutStreaming) {
  // Streaming takes only rows that start on a vector boundary and are whole vectors; the offsets
  // make some rows aligned and others not, so both store paths and the scalar tail run in one call.
  for (bool streaming : {false, true}) {
    for (int64_t cols : {1, 7, 16, 64, 67}) {
      for (int64_t offset : {0, 1, 16}) {
        const int64_t rows = 5, out_rs = cols + 9;
        std::vector<float> x(static_cast<size_t>(rows * cols)), scale(static_cast<size_t>(rows));
        for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 29) - 14.0f;
        for (size_t i = 0; i < scale.size(); ++i) scale[i] = 0.25f * static_cast<float>(i);
        // 64-byte aligned storage, so that offset 0 and 16 floats start rows on a vector boundary.
        std::vector<float> storage(static_cast<size_t>(rows * out_rs + offset + 32), -7.0f);
        const size_t align =
            (64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64 / sizeof(float);
        float* out = storage.data() + align + offset;
        k::store_scaled_rows(x.data(), rows, cols, scale.data(), out, out_rs, streaming);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < out_rs; ++c) {
            const float want =
                c < cols ? x[static_cast<size_t>(r * cols + c)] * scale[static_cast<size_t>(r)]
                         : -7.0f;
            ASSERT_EQ(out[r * out_rs + c], want)
                << "streaming=" << streaming << " cols=" << cols << " r=" << r;
          }
      }
    }
  }
}

TEST(AttentionKernels, LinePrefetcherIssuesEachLineOnceAtItsPace) {
  // Three ranges of 3, 1 and 2 rows of 20 floats (two 64-byte lines each): 12 lines. Paced over
  // 1200 multiply-adds, a line costs 100; the cursor must finish exactly when the task's credit
  // runs out.
  std::vector<float> data(256);
  k::LinePrefetcher p;
  p.add(data.data(), 3, 20, 24);
  p.add(data.data() + 100, 1, 20, 24);
  p.add(nullptr, 4, 20, 24);  // ignored
  p.add(data.data() + 150, 2, 20, 40);
  ASSERT_EQ(p.total_lines, 12);
  p.pace(1200.0);
  EXPECT_EQ(p.fmas_per_line, 100);
  p.credit(650);  // 6 lines: all of range 0
  EXPECT_EQ(p.range, 1u);
  EXPECT_EQ(p.budget, 50);
  p.credit(499);  // 1149 in all: 11 lines, the last one still owed
  EXPECT_EQ(p.range, 2u);
  EXPECT_EQ(p.row, 1);
  EXPECT_EQ(p.line, 1);
  p.credit(1000);  // pays the last line; nothing beyond it is issued
  EXPECT_EQ(p.range, 3u);
  EXPECT_EQ(p.row, 0);
  EXPECT_EQ(p.line, 0);
}

// Every SIMD target this build runs here computes the same attention (within float rounding) as
// the reference, so lower targets (AVX2 on an AVX-512 machine) are tested too; set_simd_target
// switches the dispatch and "" restores the best.
TEST(AttentionKernels, EveryRunnableSimdTargetMatchesTheReference) {
  const auto targets = ops::available_simd_targets();
  ASSERT_FALSE(targets.empty());
  EXPECT_EQ(targets.front(), ops::simd_target());
  Rng rng(77);
  const Tensor q = testing::random_tensor<float>(Shape{1, 2, 70, 24}, rng),
               kv = testing::random_tensor<float>(Shape{1, 2, 90, 24}, rng);
  ops::AttentionOptions options;
  options.mask.causal = true, options.mask.window_left = 40;
  const auto expected = ops::reference::attention(q, kv, kv, options);
  for (const std::string& target : targets) {
    ops::set_simd_target(target);
    EXPECT_EQ(ops::simd_target(), target);
    const auto got = ops::attention(q, kv, kv, options);
    EXPECT_TRUE(testing::all_close(got.out, expected.out, 2e-5, 2e-5)) << target;
  }
  ops::set_simd_target("");
  EXPECT_EQ(ops::simd_target(), targets.front());
  const std::string choose = "choose one of " + targets.front();
  ATTN_EXPECT_THROW_MSG(ops::set_simd_target("NOPE"), ValueError, "set_simd_target",
                        choose.c_str());
}

// A view whose rows start one float past the storage's: (dims..., n) inside (dims..., n + 3).
// The kernels take such views as they are (last stride 1), so every row is misaligned.
Tensor misaligned_rows(Shape shape, Rng& rng, ConstTensorView* view) {
  std::vector<int64_t> wide(shape.begin(), shape.end());
  const int64_t n = wide.back();
  wide.back() += 3;
  Tensor storage = testing::random_tensor<float>(Shape(wide), rng);
  *view = storage.view().slice(static_cast<int>(wide.size()) - 1, 1, 1 + n);
  return storage;
}

// Odd head sizes and lengths at odd offsets on every target: the tails of each row go through
// the partial-vector paths (which must not read or write past the row on SSE4, where Highway's
// MaskedLoad is an aligned full load), forward and backward, with a window and a bias.
TEST(AttentionKernels, EveryRunnableSimdTargetHandlesOddSizesAtOddOffsets) {
  Rng rng(78);
  struct Case {
    int64_t T, S, HS, HSV;
  };
  for (const Case c : {Case{37, 45, 13, 11}, Case{5, 70, 24, 17}, Case{33, 9, 7, 40}}) {
    SCOPED_TRACE(::testing::Message()
                 << "T=" << c.T << " S=" << c.S << " HS=" << c.HS << " HSV=" << c.HSV);
    ConstTensorView q, k, v, dout, bias;
    const Tensor q_s = misaligned_rows(Shape{1, 2, c.T, c.HS}, rng, &q),
                 k_s = misaligned_rows(Shape{1, 2, c.S, c.HS}, rng, &k),
                 v_s = misaligned_rows(Shape{1, 2, c.S, c.HSV}, rng, &v),
                 d_s = misaligned_rows(Shape{1, 2, c.T, c.HSV}, rng, &dout),
                 b_s = misaligned_rows(Shape{1, 1, c.T, c.S}, rng, &bias);
    ops::AttentionOptions options;
    options.mask.window_left = 20, options.mask.window_right = 6;
    const auto ref = ops::reference::attention(q, k, v, options, bias);
    const auto ref_g =
        ops::reference::attention_grad(q, k, v, ref.out, ref.lse, dout, options, bias);
    for (const std::string& target : ops::available_simd_targets()) {
      SCOPED_TRACE(target);
      ops::set_simd_target(target);
      const auto got = ops::attention(q, k, v, options, bias);
      EXPECT_TRUE(testing::all_close(got.out, ref.out, 2e-5, 2e-5));
      const auto g = ops::attention_grad(q, k, v, got.out, got.lse, dout, options, bias);
      EXPECT_TRUE(testing::all_close(g.dq, ref_g.dq, 1e-4, 1e-4));
      EXPECT_TRUE(testing::all_close(g.dk, ref_g.dk, 1e-4, 1e-4));
      EXPECT_TRUE(testing::all_close(g.dv, ref_g.dv, 1e-4, 1e-4));
      EXPECT_TRUE(testing::all_close(g.dbias, ref_g.dbias, 1e-4, 1e-4));
    }
    ops::set_simd_target("");
  }
}

}  // namespace
}  // namespace attn
