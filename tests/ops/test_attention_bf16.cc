// SPDX-License-Identifier: MIT
// Attention with bf16 q, k, v (and float q with bf16 k, v): the fused forward and backward against
// the double reference on the same (widened) values, on the best SIMD target this machine runs and
// on AVX2 (and SSE4 for the size sweep): on AVX-512 with AVX512_BF16 the best is the native path
// (bf16 pair products, probabilities rounded to bf16), elsewhere the widened float kernel. Masks,
// sizes around vector and block edges, odd head sizes, GQA, strided views, non-finite hidden
// values, thread counts, errors.
#include <cmath>
#include <string>
#include <vector>

#include "ops/internal/attention_backward.h"
#include "testing/testing.h"

namespace attn::testing {
namespace {

template <typename T>
BasicView<const T> cv(const BasicTensor<T>& t) {
  return t.view();
}

struct Case {
  int64_t B, NH, NH_kv, T, S, HS, HSV;
  ops::AttentionMask mask;
  bool bias = false;
  std::string name;
};

std::string describe(const Case& c) {
  return c.name + " B=" + std::to_string(c.B) + " NH=" + std::to_string(c.NH) + "/" +
         std::to_string(c.NH_kv) + " T=" + std::to_string(c.T) + " S=" + std::to_string(c.S) +
         " HS=" + std::to_string(c.HS) + " HSV=" + std::to_string(c.HSV) + " on " +
         ops::simd_target() + (ops::bf16_dot_products() ? " (native bf16)" : " (widened)");
}

// Inputs drawn in float and rounded to bf16; qf holds q's float values for the mixed form.
struct Inputs {
  TensorBF16 q, k, v;
  Tensor qf, bias, dout;
  ops::AttentionOptions options;
};

Inputs make_inputs(const Case& c, uint64_t seed) {
  Rng rng(seed);
  Inputs in;
  in.qf = random_tensor<float>(Shape{c.B, c.NH, c.T, c.HS}, rng);
  in.q = TensorBF16::copy_of(in.qf.view());
  in.k = TensorBF16::copy_of(random_tensor<float>(Shape{c.B, c.NH_kv, c.S, c.HS}, rng).view());
  in.v = TensorBF16::copy_of(random_tensor<float>(Shape{c.B, c.NH_kv, c.S, c.HSV}, rng).view());
  in.dout = random_tensor<float>(Shape{c.B, c.NH, c.T, c.HSV}, rng);
  in.options.mask = c.mask;
  if (c.bias) {
    in.bias = random_tensor<float>(Shape{c.B, 1, c.T, c.S}, rng);
    for (int64_t i = 0; i < in.bias.numel(); i += 5)
      in.bias.data()[i] = -std::numeric_limits<float>::infinity();
  }
  return in;
}

// The float32 error model of test_attention.cc (score error δs ≈ eps·HS·scale·|q||k|, outputs ≤
// 2·δs·max|v| plus sqrt(S)·eps·max|v| from the P·V sum), plus, on the native path, the rounding of
// the probabilities to bf16: each weight within 2^-8 of itself (relative), so out moves by at most
// 2^-8·max|v| (the weights sum to 1). Scores keep float accuracy there (the pair products are
// exact), so lse's tolerance is unchanged.
struct Tolerance {
  double out, lse, grad;
};
Tolerance tolerance(const Case& c, const Inputs& in, bool native, double max_expected_grad) {
  const double eps = kEpsF32, hs = static_cast<double>(c.HS), s = static_cast<double>(c.S);
  const double scale = ops::default_attention_scale(c.HS);
  const double qm = max_abs(cv(in.q)), km = max_abs(cv(in.k)), vm = max_abs(cv(in.v));
  const double qk = scale * qm * km, score_err = eps * (hs * qk + qk * std::sqrt(hs) + 8.0);
  const double out = 4.0 * (2.0 * score_err + std::sqrt(s) * eps) * vm + 1e-7 +
                     (native ? std::ldexp(vm, -8) : 0.0);
  const double terms = (vm + 1.0) * (scale * std::max(qm, km) + 1.0) * max_abs(cv(in.dout));
  const double grad =
      8.0 * (2.0 * score_err + std::sqrt(s + hs) * eps) * (max_expected_grad + terms) * 4.0;
  return {out, 4.0 * score_err + 1e-6, grad};
}

double max_of(const ops::AttentionGrads& g) {
  return std::max({max_abs(cv(g.dq)), max_abs(cv(g.dk)), max_abs(cv(g.dv))});
}

// Forward (both forms) and backward against the reference on the widened values.
void check_case(const Case& c, uint64_t seed, int threads = 2, bool probs = false) {
  SCOPED_TRACE(describe(c));
  Inputs in = make_inputs(c, seed);
  in.options.return_probs = probs;
  Context ctx(ContextOptions{.num_threads = threads});
  const ConstTensorView bias = cv(in.bias);
  const auto want = ops::reference::attention(cv(in.q), cv(in.k), cv(in.v), in.options, bias, ctx);
  const bool native =
      ops::bf16_dot_products() && c.HS % 2 == 0 &&
      (c.T + std::max<int64_t>(c.mask.dilation, 1) - 1) / std::max<int64_t>(c.mask.dilation, 1) > 8;
  const auto got = ops::attention(cv(in.q), cv(in.k), cv(in.v), in.options, bias, ctx);
  const auto want_grads = ops::reference::attention_grad(
      cv(in.q), cv(in.k), cv(in.v), cv(want.out), cv(want.lse), cv(in.dout), in.options, bias, ctx);
  const Tolerance tol = tolerance(c, in, native, max_of(want_grads));
  EXPECT_TRUE(all_close(got.out, want.out, tol.out, 4 * kEpsF32)) << "out";
  EXPECT_TRUE(all_close(got.lse, want.lse, tol.lse, 4 * kEpsF32)) << "lse";
  if (in.options.return_probs) {  // exp(score - lse): the score and lse errors, relative
    EXPECT_TRUE(all_close(got.probs, want.probs, 2.0 * tol.lse, 2.0 * tol.lse)) << "probs";
  }

  // Mixed form: float q (not rounded), bf16 k and v: always the widened kernel.
  const auto want_mixed =
      ops::reference::attention(cv(in.qf), cv(in.k), cv(in.v), in.options, bias, ctx);
  const auto got_mixed = ops::attention(cv(in.qf), cv(in.k), cv(in.v), in.options, bias, ctx);
  const Tolerance tol_mixed = tolerance(c, in, false, 0.0);
  EXPECT_TRUE(all_close(got_mixed.out, want_mixed.out, tol_mixed.out, 4 * kEpsF32)) << "mixed out";
  EXPECT_TRUE(all_close(got_mixed.lse, want_mixed.lse, tol_mixed.lse, 4 * kEpsF32)) << "mixed lse";

  // Backward from the reference's out and lse, so that it is tested alone.
  const auto grads = ops::attention_grad(cv(in.q), cv(in.k), cv(in.v), cv(want.out), cv(want.lse),
                                         cv(in.dout), in.options, bias, ctx);
  EXPECT_TRUE(all_close(grads.dq, want_grads.dq, tol.grad, 4 * kEpsF32)) << "dq";
  EXPECT_TRUE(all_close(grads.dk, want_grads.dk, tol.grad, 4 * kEpsF32)) << "dk";
  EXPECT_TRUE(all_close(grads.dv, want_grads.dv, tol.grad, 4 * kEpsF32)) << "dv";
  const auto mixed_grads =
      ops::attention_grad(cv(in.qf), cv(in.k), cv(in.v), cv(want_mixed.out), cv(want_mixed.lse),
                          cv(in.dout), in.options, bias, ctx);
  const auto want_mixed_grads =
      ops::reference::attention_grad(cv(in.qf), cv(in.k), cv(in.v), cv(want_mixed.out),
                                     cv(want_mixed.lse), cv(in.dout), in.options, bias, ctx);
  EXPECT_TRUE(all_close(mixed_grads.dk, want_mixed_grads.dk, tol.grad, 4 * kEpsF32)) << "mixed dk";
}

// Runs fn on the best SIMD target this machine runs (native bf16 products where the CPU has them)
// and on AVX2 (widened, 8 lanes), plus SSE4 (4 lanes) when `narrow`, restoring the best afterwards.
// Lower targets run the same widened code at other widths; the sanitizer build's time is spent on
// the reference, so they are left to the size sweep.
template <typename F>
void on_every_target(F&& fn, bool narrow = false) {
  const std::vector<std::string> available = ops::available_simd_targets();
  for (size_t i = 0; i < available.size(); ++i) {
    const std::string& target = available[i];
    if (i > 0 && target != "AVX2" && !(narrow && target == "SSE4")) continue;
    ops::set_simd_target(target);
    fn();
  }
  ops::set_simd_target("");
}

std::vector<Case> mask_cases(int64_t T, int64_t S, int64_t HS) {
  std::vector<Case> cases;
  auto add = [&](std::string name, auto&& set) {
    Case c{2, 4, 2, T, S, HS, HS == 64 ? 48 : 8, {}, false, std::move(name)};
    set(c);
    cases.push_back(std::move(c));
  };
  add("full", [](Case&) {});
  add("causal", [](Case& c) { c.mask.causal = true; });
  add("window_8_3", [](Case& c) { c.mask.window_left = 8, c.mask.window_right = 3; });
  add("window_0_0", [](Case& c) { c.mask.window_left = 0, c.mask.window_right = 0; });
  add("dilation_3", [](Case& c) { c.mask.dilation = 3; });
  add("chunk_lengths", [&](Case& c) {
    c.mask.chunk_size = 10, c.mask.num_left_chunks = 1, c.mask.key_lengths = {S, S / 3};
  });
  add("alibi", [](Case& c) { c.mask.alibi_slopes = ops::alibi_slopes(c.NH); });
  add("bias", [](Case& c) { c.bias = true; });
  add("everything", [&](Case& c) {
    c.mask.causal = true, c.mask.window_left = 30, c.mask.window_right = 5, c.mask.dilation = 2;
    c.mask.key_lengths = {S, S / 2}, c.mask.alibi_slopes = ops::alibi_slopes(c.NH);
    c.mask.query_offset = 20;
  });
  return cases;
}

TEST(AttentionBf16, EveryMaskKindOnEveryTarget) {
  on_every_target([] {
    uint64_t seed = 1;
    for (const Case& c : mask_cases(70, 90, 16)) check_case(c, seed++, 2, /*probs=*/true);
    // A window narrower than a key tile over a longer sequence: 64-query blocks, band-following
    // tiles whose column groups start on odd keys.
    for (const Case& c : mask_cases(300, 300, 64))
      if (c.name == "window_8_3" || c.name == "everything" || c.name == "causal")
        check_case(c, seed++);
  });
}

TEST(AttentionBf16, SweepOfSizesOnEveryTarget) {
  on_every_target(
      [] {
        uint64_t seed = 100;
        for (int64_t T : {1, 9, 17, 65, 130})
          for (int64_t S : {1, 2, 17, 64, 129, 257})
            for (int64_t HS : {2, 16, 17, 64, 80}) {
              if (seed++ % 3 != 0) continue;  // a third of the grid, rotating through it
              check_case(
                  Case{1, 2, 1, T, S, HS, HS == 17 ? 5 : (HS == 80 ? 33 : HS), {}, false, "full"},
                  seed);
            }
      },
      /*narrow=*/true);
}

// Decoding shapes: a few queries against a long cache. T ≤ 8 per class takes the score-rows layout
// (widened); T = 16 with one head the key splits (flash-decoding), native where available.
TEST(AttentionBf16, DecodingShapesOnEveryTarget) {
  on_every_target([] {
    uint64_t seed = 500;
    for (int64_t T : {1, 5, 16}) {
      Case c{1, 2, 1, T, 2600, 64, 64, {}, false, "decode_causal_bottom_right"};
      c.mask.causal = true, c.mask.query_offset = 2600 - T;
      check_case(c, seed++);
      c.name = "decode_window_300", c.mask.causal = false, c.mask.window_left = 300;
      c.mask.window_right = 0;
      check_case(c, seed++);
    }
  });
}

// Both forms of the backward (one fused pass; two passes), each widening its own key tiles.
TEST(AttentionBf16, FusedAndTwoPassBackwardsBothMatchTheReference) {
  for (int64_t min_tasks : {int64_t{0}, std::numeric_limits<int64_t>::max()}) {
    const internal::ScopedFusedBackwardMinTasks form(min_tasks);
    uint64_t seed = 300;
    for (const Case& c : mask_cases(70, 90, 16)) check_case(c, seed++);
  }
}

TEST(AttentionBf16, BitwiseIdenticalForOneAndTwoThreads) {
  on_every_target([] {
    for (const Case& c : mask_cases(130, 200, 64)) {
      SCOPED_TRACE(describe(c));
      const Inputs in = make_inputs(c, 7);
      Context one(ContextOptions{.num_threads = 1}), two(ContextOptions{.num_threads = 2});
      const auto a = ops::attention(cv(in.q), cv(in.k), cv(in.v), in.options, cv(in.bias), one);
      const auto b = ops::attention(cv(in.q), cv(in.k), cv(in.v), in.options, cv(in.bias), two);
      EXPECT_TRUE(all_close(a.out, b.out, 0.0));
      EXPECT_TRUE(all_close(a.lse, b.lse, 0.0));
      const auto ga = ops::attention_grad(cv(in.q), cv(in.k), cv(in.v), cv(a.out), cv(a.lse),
                                          cv(in.dout), in.options, cv(in.bias), one);
      const auto gb = ops::attention_grad(cv(in.q), cv(in.k), cv(in.v), cv(a.out), cv(a.lse),
                                          cv(in.dout), in.options, cv(in.bias), two);
      EXPECT_TRUE(all_close(ga.dq, gb.dq, 0.0));
      EXPECT_TRUE(all_close(ga.dk, gb.dk, 0.0));
      EXPECT_TRUE(all_close(ga.dv, gb.dv, 0.0));
    }
  });
}

TEST(AttentionBf16, StridedViewsMatchContiguousOnes) {
  on_every_target([] {
    const Case c{2, 4, 2, 70, 90, 16, 16, {}, false, "strided"};
    const Inputs in = make_inputs(c, 11);
    Context ctx;
    const auto want = ops::attention(cv(in.q), cv(in.k), cv(in.v), in.options, {}, ctx);
    // Every dimension strided and the inner one not unit-stride (copied first by the kernel).
    const auto q = strided_copy(in.q), k = strided_copy(in.k), v = strided_copy(in.v);
    const auto got = ops::attention(ConstTensorViewBF16(q.view), ConstTensorViewBF16(k.view),
                                    ConstTensorViewBF16(v.view), in.options, {}, ctx);
    EXPECT_TRUE(all_close(got.out, want.out, 0.0));
    // Rows strided, inner unit-stride (read in place): every other row of longer tensors.
    TensorBF16 k2(Shape{2, 2, 180, 16}), v2(Shape{2, 2, 180, 16});
    copy(cv(in.k), k2.view().slice(2, 0, 180, 2));
    copy(cv(in.v), v2.view().slice(2, 0, 180, 2));
    const auto got2 =
        ops::attention(cv(in.q), ConstTensorViewBF16(k2.view().slice(2, 0, 180, 2)),
                       ConstTensorViewBF16(v2.view().slice(2, 0, 180, 2)), in.options, {}, ctx);
    EXPECT_TRUE(all_close(got2.out, want.out, 0.0));
  });
}

// A NaN or inf in a value or key that no query sees must not reach any output (docs/masks.md): the
// native path's zero weights would carry it (0 · NaN), so its tile takes the float P·V.
TEST(AttentionBf16, NonFiniteHiddenValuesDoNotLeak) {
  on_every_target([] {
    Case c{1, 2, 2, 150, 150, 16, 16, {}, false, "causal_nan_in_last_keys"};
    c.mask.causal = true;
    Inputs in = make_inputs(c, 21);
    const float bad[] = {std::numeric_limits<float>::quiet_NaN(),
                         std::numeric_limits<float>::infinity()};
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t cc = 0; cc < 16; ++cc) {
        in.v.view()(0, h, 149, cc) = bf16(bad[cc % 2]);
        in.k.view()(0, h, 148, cc) = bf16(bad[(cc + 1) % 2]);
      }
    Context ctx;
    const auto want = ops::reference::attention(cv(in.q), cv(in.k), cv(in.v), in.options, {}, ctx);
    const auto got = ops::attention(cv(in.q), cv(in.k), cv(in.v), in.options, {}, ctx);
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t t = 0; t < 148; ++t)
        for (int64_t cc = 0; cc < 16; ++cc)
          ASSERT_TRUE(std::isfinite(got.out(0, h, t, cc)))
              << describe(c) << " h " << h << " t " << t << " c " << cc;
    const Tensor rows = Tensor::copy_of(cv(got.out).slice(2, 0, 148));
    const Tensor want_rows = Tensor::copy_of(cv(want.out).slice(2, 0, 148));
    EXPECT_TRUE(all_close(rows, want_rows, std::ldexp(4.0, -8), 4 * kEpsF32)) << describe(c);
  });
}

TEST(AttentionBf16, KeysAndValuesTakeHalfTheBytes) {
  const TensorBF16 k(Shape{1, 8, 4096, 64});
  EXPECT_EQ(static_cast<int64_t>(k.numel() * sizeof(bf16)), 1 * 8 * 4096 * 64 * 2);
}

TEST(AttentionBf16, RejectsBadInputNamingFunctionAndShapes) {
  Context ctx;
  TensorBF16 q(Shape{1, 3, 4, 8}), k(Shape{1, 2, 4, 8}), v(Shape{1, 2, 4, 8});
  Tensor out(Shape{1, 3, 4, 8}), lse(Shape{1, 3, 4});
  ATTN_EXPECT_THROW_MSG(ops::attention_forward(cv(q), cv(k), cv(v), {}, {}, 1.0, out, lse, {}, ctx),
                        ShapeError, "attention_forward", "not a multiple of k's 2 heads");
  TensorBF16 k6(Shape{1, 3, 4, 6}), v3(Shape{1, 3, 4, 8});
  ATTN_EXPECT_THROW_MSG(ops::attention(cv(Tensor(Shape{1, 3, 4, 8})), cv(k6), cv(v3)), ShapeError,
                        "attention", "k has head size 6 but q has 8");
  Tensor bad_out(Shape{1, 3, 4, 7});
  TensorBF16 k3(Shape{1, 3, 4, 8});
  ATTN_EXPECT_THROW_MSG(
      ops::attention_forward(cv(q), cv(k3), cv(v3), {}, {}, 1.0, bad_out, lse, {}, ctx), ShapeError,
      "attention_forward", "out");
  Tensor dq(Shape{1, 3, 4, 8}), dk(Shape{1, 3, 4, 8}), dv(Shape{1, 3, 4, 9});
  ATTN_EXPECT_THROW_MSG(ops::attention_backward(cv(q), cv(k3), cv(v3), out, lse, out, {}, {}, 1.0,
                                                dq, dk, dv, {}, ctx),
                        ShapeError, "attention_backward", "dv");
}

}  // namespace
}  // namespace attn::testing
