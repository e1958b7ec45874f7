// SPDX-License-Identifier: MIT
// attention_merge: registered with the op harness (fast vs reference, strided inputs, finite
// differences, threads), and checked against what it is for: attention over the union of two
// disjoint key blocks (key_offset placing the second block), under every mask kind, with parts and
// rows that see no key at all.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "attn/ops/attention.h"
#include "testing/op_case.h"
#include "testing/testing.h"

namespace attn::testing {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

Shape without_last(const Shape& s) {
  return Shape(std::span<const int64_t>(s.begin(), static_cast<size_t>(s.rank() - 1)));
}

// in = {out_a (..., D), lse_a (...), out_b, lse_b}; out = {out, lse}.
// Error model: w_a, w_b are float exps of rounded differences (a few eps relative each), so out
// errs by a few eps times max(|out_a|, |out_b|) and lse by a few eps times its magnitude plus the
// log1p's rounding. Backward: dout_x = w·g (a few eps·|g|), dlse_x = w·(D-term dot + dlse) with
// terms up to |g|·(|out_x| + |out|).
OpSpec merge_spec() {
  OpSpec s;
  s.name = "attention_merge";
  s.forward = [](const OpSpec::Views& in, const Context& ctx) {
    std::vector<Tensor> out;
    out.emplace_back(in[0].shape());
    out.emplace_back(without_last(in[0].shape()));
    ops::attention_merge_forward(in[0], in[1], in[2], in[3], out[0], out[1], ctx);
    return out;
  };
  s.reference = [](const OpSpec::ViewsD& in, const Context& ctx) {
    std::vector<TensorD> out;
    out.emplace_back(in[0].shape());
    out.emplace_back(without_last(in[0].shape()));
    ops::reference::attention_merge_forward(in[0], in[1], in[2], in[3], out[0], out[1], ctx);
    return out;
  };
  s.backward = [](const OpSpec::Views& in, const OpSpec::Views& out, const OpSpec::Views& g,
                  const Context& ctx) {
    auto d = zeros_like<float>({in[0], in[1], in[2], in[3]});
    ops::attention_merge_backward(in[0], in[1], in[2], in[3], out[0], out[1], g[0], g[1], d[0],
                                  d[1], d[2], d[3], ctx);
    return d;
  };
  s.reference_backward = [](const OpSpec::ViewsD& in, const OpSpec::ViewsD& out,
                            const OpSpec::ViewsD& g, const Context& ctx) {
    auto d = zeros_like<double>({in[0], in[1], in[2], in[3]});
    ops::reference::attention_merge_backward(in[0], in[1], in[2], in[3], out[0], out[1], g[0], g[1],
                                             d[0], d[1], d[2], d[3], ctx);
    return d;
  };
  s.differentiable_outputs = {true, true};
  auto big = [](const OpCase& c) {
    return std::max(max_abs(c.inputs[0].view()), max_abs(c.inputs[2].view()));
  };
  s.forward_tolerance = [=](const OpCase& c, size_t i, const TensorD& want) {
    return i == 0 ? 8 * kEpsF32 * big(c) : 4 * kEpsF32 * (max_abs(want.view()) + 1.0);
  };
  s.backward_tolerance = [=](const OpCase& c, size_t i, const TensorD&) {
    const double D = static_cast<double>(c.inputs[0].dim(-1));
    return i % 2 == 0 ? 8 * kEpsF32 * 5.0 : 8 * (D + 2) * kEpsF32 * 5.0 * (2 * big(c) + 1.0);
  };
  return s;
}

// Partial results with lse spread over ±3 so that both weights matter, and some rows where one
// part's lse dominates by far (1e3: its weight rounds to 1, the other's to 0).
OpCase merge_case(const Shape& out_shape, uint64_t seed) {
  Rng rng(seed);
  TensorD oa = random_tensor<double>(out_shape, rng), ob = random_tensor<double>(out_shape, rng);
  TensorD la = random_tensor<double>(without_last(out_shape), rng, 3.0),
          lb = random_tensor<double>(without_last(out_shape), rng, 3.0);
  if (la.numel() > 3) la.data()[1] += 1e3, lb.data()[2] += 1e3;
  return {"out " + out_shape.str(),
          tensors(std::move(oa), std::move(la), std::move(ob), std::move(lb))};
}

std::vector<OpCase> merge_cases() {
  std::vector<OpCase> cases;
  uint64_t seed = 1;
  for (const Shape& s :
       {Shape{2, 3, 17, 5}, Shape{1, 1, 1, 1}, Shape{300, 33}, Shape{4, 1}, Shape{2, 2, 600, 64}})
    cases.push_back(merge_case(s, seed++));
  return cases;
}

TEST(AttentionMerge, FastMatchesReferenceOnContiguousAndStridedViews) {
  check_forward(merge_spec(), merge_cases());
  check_backward(merge_spec(), merge_cases());
}

TEST(AttentionMerge, ReferenceBackwardMatchesFiniteDifferences) {
  std::vector<OpCase> cases;
  cases.push_back(merge_case(Shape{2, 3, 4}, 7));
  cases.push_back(merge_case(Shape{5, 1}, 8));
  check_gradients(merge_spec(), cases, 1e-7, 1e-6);
}

TEST(AttentionMerge, SameBitsForOneAndThreeThreads) { check_threads(merge_spec(), merge_cases()); }

TEST(AttentionMerge, PartsThatSawNoKeyHaveWeightZeroAndNothingIsNaN) {
  // Rows: (a empty), (b empty), (both empty), (neither).
  TensorD oa(Shape{4, 2}), ob(Shape{4, 2}), la(Shape{4}), lb(Shape{4});
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t j = 0; j < 2; ++j)
      oa(r, j) = 1.0 + static_cast<double>(j), ob(r, j) = -3.0 - static_cast<double>(j);
  la(0) = kNegInf, lb(0) = 0.5;
  la(1) = 0.25, lb(1) = kNegInf;
  la(2) = kNegInf, lb(2) = kNegInf;
  la(3) = 0.0, lb(3) = 0.0;
  for (int64_t j = 0; j < 2; ++j) oa(0, j) = ob(1, j) = oa(2, j) = ob(2, j) = 0.0;  // as attention
  TensorD out(Shape{4, 2}), lse(Shape{4});
  Context ctx;
  ops::reference::attention_merge_forward(oa, la, ob, lb, out, lse, ctx);
  EXPECT_EQ(lse(0), 0.5);
  EXPECT_EQ(lse(1), 0.25);
  EXPECT_EQ(lse(2), kNegInf);
  EXPECT_DOUBLE_EQ(lse(3), std::log(2.0));
  for (int64_t j = 0; j < 2; ++j) {
    EXPECT_EQ(out(0, j), ob(0, j));
    EXPECT_EQ(out(1, j), oa(1, j));
    EXPECT_EQ(out(2, j), 0.0);
    EXPECT_DOUBLE_EQ(out(3, j), 0.5 * (oa(3, j) + ob(3, j)));
  }
  // The fast path and both backwards: the same, and no NaN anywhere.
  Tensor oa_f = Tensor::copy_of(oa.view()), ob_f = Tensor::copy_of(ob.view()),
         la_f = Tensor::copy_of(la.view()), lb_f = Tensor::copy_of(lb.view());
  Tensor out_f(Shape{4, 2}), lse_f(Shape{4});
  ops::attention_merge_forward(oa_f, la_f, ob_f, lb_f, out_f, lse_f, ctx);
  EXPECT_TRUE(all_close(out_f, out, 1e-6));
  EXPECT_TRUE(all_close(lse_f, lse, 1e-6));
  Tensor g(Shape{4, 2}), gl(Shape{4}), d_oa(Shape{4, 2}), d_la(Shape{4}), d_ob(Shape{4, 2}),
      d_lb(Shape{4});
  for (float& x : g.values()) x = 1.0f;
  for (float& x : gl.values()) x = 0.5f;
  ops::attention_merge_backward(oa_f, la_f, ob_f, lb_f, out_f, lse_f, g, gl, d_oa, d_la, d_ob, d_lb,
                                ctx);
  for (const Tensor* t : {&d_oa, &d_la, &d_ob, &d_lb})
    for (float x : t->values()) EXPECT_FALSE(std::isnan(x));
  EXPECT_EQ(d_la(0), 0.0f);  // a part without keys gets no gradient
  EXPECT_EQ(d_oa(0, 0), 0.0f);
  EXPECT_EQ(d_lb(2), 0.0f);
  EXPECT_EQ(d_ob(0, 1), 1.0f);  // the only part: weight 1
}

TEST(AttentionMerge, InPlaceIntoThePartialResultIsAllowed) {
  Rng rng(3);
  Tensor oa = random_tensor<float>(Shape{3, 7, 4}, rng),
         la = random_tensor<float>(Shape{3, 7}, rng);
  const Tensor ob = random_tensor<float>(Shape{3, 7, 4}, rng),
               lb = random_tensor<float>(Shape{3, 7}, rng);
  Context ctx;
  const ops::AttentionMerge want = ops::attention_merge(oa, la, ob, lb, ctx);
  ops::attention_merge_forward(oa, la, ob, lb, oa, la, ctx);
  EXPECT_TRUE(all_close(oa, want.out, 0.0));
  EXPECT_TRUE(all_close(la, want.lse, 0.0));
}

TEST(AttentionMerge, BadArgumentsNameTheFunctionTheArgumentAndTheShapes) {
  Tensor o(Shape{2, 3, 4}), l(Shape{2, 3}), l_bad(Shape{2, 4}), o_bad(Shape{2, 3, 5});
  Tensor out(Shape{2, 3, 4}), lse(Shape{2, 3});
  Context ctx;
  ATTN_EXPECT_THROW_MSG(ops::attention_merge_forward(o, l_bad, o, l, out, lse, ctx), ShapeError,
                        "attention_merge_forward", "lse_a", "(2, 4)", "(2, 3)");
  ATTN_EXPECT_THROW_MSG(ops::attention_merge(o, l, o_bad, l, ctx), ShapeError,
                        "attention_merge_forward", "out_b", "(2, 3, 5)");
  ATTN_EXPECT_THROW_MSG(ops::attention_merge_forward(o, l, out, lse, out, lse, ctx), ValueError,
                        "attention_merge_forward", "out", "overlaps");
  ATTN_EXPECT_THROW_MSG(ops::attention_merge(Tensor(), l, o, l, ctx), ShapeError, "attention_merge",
                        "out_a", "required");
  Tensor d(Shape{2, 3, 4});
  ATTN_EXPECT_THROW_MSG(
      ops::attention_merge_backward(o, l, o, l, out, lse, o_bad, {}, d, {}, {}, {}, ctx),
      ShapeError, "attention_merge_backward", "dout", "(2, 3, 5)");
  ATTN_EXPECT_THROW_MSG(
      ops::attention_merge_backward(o, l, o, l, out, lse, d, {}, d, {}, {}, {}, ctx), ValueError,
      "attention_merge_backward", "dout_a", "overlaps");
}

// ---------------------------------------------------------------------------------------------------
// What the merge is for: attention over keys [0, S) from attention over [0, S1) and [S1, S).

struct Split {
  std::string name;
  ops::AttentionMask mask;
  int64_t S1;
};

// The mask for keys [lo, hi) of the full sequence: the same rules at global positions, key lengths
// cut to the block.
ops::AttentionMask block_mask(const ops::AttentionMask& m, int64_t lo, int64_t hi) {
  ops::AttentionMask r = m;
  r.key_offset = m.key_offset + lo;
  for (int64_t& n : r.key_lengths) n = std::clamp<int64_t>(n - lo, 0, hi - lo);
  return r;
}

ops::AttentionOptions options(const ops::AttentionMask& m) {
  ops::AttentionOptions o;
  o.mask = m;
  return o;
}

std::vector<Split> splits(int64_t T, int64_t S) {
  std::vector<Split> v;
  auto add = [&](std::string name, int64_t S1, auto&& set) {
    Split s{std::move(name), {}, S1};
    set(s.mask);
    v.push_back(std::move(s));
  };
  add("full", 40, [](ops::AttentionMask&) {});
  add("causal (the second block is empty for early queries)", 37,
      [](ops::AttentionMask& m) { m.causal = true; });
  add("causal bottom-right", 5,
      [&](ops::AttentionMask& m) { m.causal = true, m.query_offset = S - T; });
  add("window crossing the split", 50,
      [](ops::AttentionMask& m) { m.window_left = 9, m.window_right = 4; });
  add("chunks not aligned with the split", 45,
      [](ops::AttentionMask& m) { m.chunk_size = 16, m.num_left_chunks = 1; });
  add("dilation 3 (classes shift with the offset)", 41,
      [](ops::AttentionMask& m) { m.dilation = 3, m.window_left = 20; });
  add("key lengths ending in either block, or at 0", 30, [](ops::AttentionMask& m) {
    m.key_lengths = {25, 70, 0};
  });
  add("alibi and causal", 61,
      [](ops::AttentionMask& m) { m.causal = true, m.alibi_slopes = ops::alibi_slopes(2); });
  return v;
}

TEST(AttentionMerge, TwoKeyBlocksMergeToAttentionOverTheirUnionUnderEveryMask) {
  constexpr int64_t B = 3, NH = 2, T = 70, S = 90, HS = 16, HSV = 8;
  Rng rng(11);
  const Tensor q = random_tensor<float>(Shape{B, NH, T, HS}, rng),
               k = random_tensor<float>(Shape{B, NH, S, HS}, rng),
               v = random_tensor<float>(Shape{B, NH, S, HSV}, rng);
  Context ctx(ContextOptions{.num_threads = 2});
  for (const Split& sp : splits(T, S)) {
    SCOPED_TRACE(sp.name);
    const ops::AttentionResult whole = ops::attention(q, k, v, options(sp.mask), {}, ctx);
    const ops::AttentionResult a =
        ops::attention(q, k.view().slice(2, 0, sp.S1), v.view().slice(2, 0, sp.S1),
                       options(block_mask(sp.mask, 0, sp.S1)), {}, ctx);
    const ops::AttentionResult b =
        ops::attention(q, k.view().slice(2, sp.S1, S), v.view().slice(2, sp.S1, S),
                       options(block_mask(sp.mask, sp.S1, S)), {}, ctx);
    const ops::AttentionMerge m = ops::attention_merge(a.out, a.lse, b.out, b.lse, ctx);
    EXPECT_TRUE(all_close(m.out, whole.out, 1e-5, 1e-5));
    EXPECT_TRUE(all_close(m.lse, whole.lse, 1e-5, 1e-5));  // -inf rows must match exactly
  }
}

}  // namespace
}  // namespace attn::testing
