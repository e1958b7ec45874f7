// SPDX-License-Identifier: MIT
// The reference attention (the spec) against an independent brute force, its dense-mask equivalent,
// central finite differences in double, and its argument checks.
#include <cmath>
#include <limits>
#include <set>

#include "testing/testing.h"

namespace attn::testing {
namespace {

using ops::AttentionMask;

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Sizes {
  int64_t B, NH, NH_kv, T, S, HS, HSV;
};

// What a mask case sets; the bias itself is made per test from bias_dims.
struct MaskCase {
  std::string name;
  AttentionMask mask;
  bool alibi = false;
  int bias_kind = 0;  // 0 none, 1 full (B, NH, T, S), 2 (1, 1, T, S), 3 (B, 1, T, S) with some -inf
  bool offset_bottom_right = false;
};

std::vector<MaskCase> mask_cases() {
  std::vector<MaskCase> cases;
  auto add = [&](std::string name, auto&& set) {
    MaskCase c;
    c.name = std::move(name);
    set(c);
    cases.push_back(std::move(c));
  };
  add("none", [](MaskCase&) {});
  add("causal", [](MaskCase& c) { c.mask.causal = true; });
  add("window_3_1", [](MaskCase& c) { c.mask.window_left = 3, c.mask.window_right = 1; });
  add("window_0_0", [](MaskCase& c) { c.mask.window_left = 0, c.mask.window_right = 0; });
  add("window_left_only", [](MaskCase& c) { c.mask.window_left = 2; });
  add("window_right_only", [](MaskCase& c) { c.mask.window_right = 2; });
  add("dilation_3", [](MaskCase& c) { c.mask.dilation = 3; });
  add("window_dilation",
      [](MaskCase& c) { c.mask.window_left = 6, c.mask.window_right = 6, c.mask.dilation = 2; });
  add("chunk_3_all", [](MaskCase& c) { c.mask.chunk_size = 3; });
  add("chunk_2_left1", [](MaskCase& c) { c.mask.chunk_size = 2, c.mask.num_left_chunks = 1; });
  add("chunk_4_left0", [](MaskCase& c) { c.mask.chunk_size = 4, c.mask.num_left_chunks = 0; });
  add("key_lengths",
      [](MaskCase& c) { c.mask.key_lengths = {-1}; });  // filled per size, see make_mask
  add("alibi", [](MaskCase& c) { c.alibi = true; });
  add("bias_full", [](MaskCase& c) { c.bias_kind = 1; });
  add("bias_broadcast", [](MaskCase& c) { c.bias_kind = 2; });
  add("bias_batch_neginf", [](MaskCase& c) { c.bias_kind = 3; });
  add("causal_bottom_right",
      [](MaskCase& c) { c.mask.causal = true, c.offset_bottom_right = true; });
  add("window_causal_lengths_alibi", [](MaskCase& c) {
    c.mask.window_left = 2, c.mask.causal = true, c.mask.key_lengths = {-1}, c.alibi = true;
  });
  add("dilation_window_causal", [](MaskCase& c) {
    c.mask.window_left = 5, c.mask.window_right = 0, c.mask.dilation = 2, c.mask.causal = true;
  });
  add("chunk_lengths_bias", [](MaskCase& c) {
    c.mask.chunk_size = 2, c.mask.num_left_chunks = 1, c.mask.key_lengths = {-1}, c.bias_kind = 1;
  });
  // Keys that are one block of a longer sequence (sequence-parallel attention): chunk boundaries
  // that do not fall on the block's start, and dilation classes shifted by the offset.
  add("key_offset_causal", [](MaskCase& c) { c.mask.causal = true, c.mask.key_offset = -3; });
  add("key_offset_chunk_window_dilation", [](MaskCase& c) {
    c.mask.key_offset = 5, c.mask.query_offset = 7, c.mask.chunk_size = 4,
    c.mask.num_left_chunks = 1, c.mask.window_left = 6, c.mask.dilation = 3, c.alibi = true;
  });
  add("everything", [](MaskCase& c) {
    c.mask.causal = true, c.mask.window_left = 4, c.mask.window_right = 1, c.mask.dilation = 2;
    c.mask.chunk_size = 3, c.mask.num_left_chunks = 1, c.mask.key_lengths = {-1}, c.alibi = true;
    c.bias_kind = 2, c.offset_bottom_right = true;
  });
  return cases;
}

// Concrete inputs for one (sizes, mask case): the mask's key lengths, slopes and bias filled in.
struct Problem {
  Sizes z;
  TensorD q, k, v, bias;
  AttentionMask mask;
  double scale;
};

Problem make_problem(const Sizes& z, const MaskCase& mc, uint64_t seed) {
  Rng rng(seed);
  Problem p{z,
            random_tensor<double>(Shape{z.B, z.NH, z.T, z.HS}, rng),
            random_tensor<double>(Shape{z.B, z.NH_kv, z.S, z.HS}, rng),
            random_tensor<double>(Shape{z.B, z.NH_kv, z.S, z.HSV}, rng),
            TensorD(),
            mc.mask,
            ops::default_attention_scale(z.HS)};
  if (!p.mask.key_lengths.empty()) {
    p.mask.key_lengths.clear();
    for (int64_t b = 0; b < z.B; ++b) p.mask.key_lengths.push_back(b == 0 ? z.S : z.S / 2);
  }
  if (mc.alibi) p.mask.alibi_slopes = ops::alibi_slopes(z.NH);
  if (mc.offset_bottom_right) p.mask.query_offset = z.S - z.T;
  if (mc.bias_kind != 0) {
    const Shape bs = mc.bias_kind == 1   ? Shape{z.B, z.NH, z.T, z.S}
                     : mc.bias_kind == 2 ? Shape{1, 1, z.T, z.S}
                                         : Shape{z.B, 1, z.T, z.S};
    p.bias = random_tensor<double>(bs, rng);
    if (mc.bias_kind == 3)  // block a few keys through the bias alone
      for (int64_t i = 0; i < p.bias.numel(); i += 3) p.bias.data()[i] = -kInf;
  }
  return p;
}

// Independent statement of the mask: each rule enumerates its own allowed set; the result is their
// intersection. (Written from docs, not from AttentionMask::key_visible.)
std::vector<bool> allowed_keys(const AttentionMask& m, int64_t b, int64_t t, int64_t S) {
  // Every rule speaks of positions: query t at p, key s at s + key_offset.
  const int64_t p = t + m.query_offset, ko = m.key_offset;
  std::vector<bool> ok(static_cast<size_t>(S), true);
  auto keep_only = [&](const std::set<int64_t>& positions) {
    for (int64_t s = 0; s < S; ++s)
      if (!positions.count(s + ko)) ok[static_cast<size_t>(s)] = false;
  };
  auto range = [](int64_t lo, int64_t hi) {  // [lo, hi)
    std::set<int64_t> r;
    for (int64_t s = lo; s < hi; ++s) r.insert(s);
    return r;
  };
  const int64_t first = ko, end = ko + S;  // the key positions present
  if (m.causal) keep_only(range(first, p + 1));
  if (m.window_left >= 0) keep_only(range(p - m.window_left, end));
  if (m.window_right >= 0) keep_only(range(first, p + m.window_right + 1));
  if (m.dilation > 1) {
    std::set<int64_t> r;
    const int64_t reach = S + std::abs(p) + std::abs(ko);
    for (int64_t j = -reach; j <= reach; ++j) r.insert(p + j * m.dilation);
    keep_only(r);
  }
  if (m.chunk_size > 0) {  // WeNet subsequent_chunk_mask: [start, end)
    const int64_t C = m.chunk_size;
    const int64_t chunk =
        static_cast<int64_t>(std::floor(static_cast<double>(p) / static_cast<double>(C)));
    const int64_t start =
        m.num_left_chunks < 0 ? first : std::max<int64_t>((chunk - m.num_left_chunks) * C, first);
    keep_only(range(start, std::min((chunk + 1) * C, end)));
  }
  if (!m.key_lengths.empty()) {  // on local indices
    for (int64_t s = m.key_lengths[static_cast<size_t>(b)]; s < S; ++s)
      ok[static_cast<size_t>(s)] = false;
  }
  return ok;
}

// Brute force in long double: out and lse (-inf, zero output for rows without keys).
void brute_force(const Problem& pr, TensorD& out, TensorD& lse) {
  const Sizes& z = pr.z;
  out = TensorD(Shape{z.B, z.NH, z.T, z.HSV});
  lse = TensorD(Shape{z.B, z.NH, z.T});
  for (int64_t b = 0; b < z.B; ++b)
    for (int64_t h = 0; h < z.NH; ++h) {
      const int64_t hk = h * z.NH_kv / z.NH;
      for (int64_t t = 0; t < z.T; ++t) {
        const auto ok = allowed_keys(pr.mask, b, t, z.S);
        std::vector<long double> score(static_cast<size_t>(z.S),
                                       -static_cast<long double>(kInfinity));
        long double mx = -static_cast<long double>(kInfinity);
        for (int64_t s = 0; s < z.S; ++s) {
          if (!ok[static_cast<size_t>(s)]) continue;
          long double x = 0;
          for (int64_t i = 0; i < z.HS; ++i)
            x += static_cast<long double>(pr.q(b, h, t, i)) * pr.k(b, hk, s, i);
          x *= pr.scale;
          if (!pr.mask.alibi_slopes.empty())
            x -= static_cast<long double>(pr.mask.alibi_slopes[static_cast<size_t>(h)]) *
                 std::abs(t + pr.mask.query_offset - pr.mask.key_offset - s);
          if (pr.bias.defined())
            x += pr.bias(pr.bias.dim(0) == 1 ? 0 : b, pr.bias.dim(1) == 1 ? 0 : h, t, s);
          score[static_cast<size_t>(s)] = x;
          mx = std::max(mx, x);
        }
        if (mx == -static_cast<long double>(kInfinity)) {
          lse(b, h, t) = -kInf;
          continue;
        }
        long double sum = 0;
        for (auto x : score) sum += std::exp(x - mx);
        lse(b, h, t) = static_cast<double>(mx + std::log(sum));
        for (int64_t j = 0; j < z.HSV; ++j) {
          long double acc = 0;
          for (int64_t s = 0; s < z.S; ++s)
            acc += std::exp(score[static_cast<size_t>(s)] - mx) / sum * pr.v(b, hk, s, j);
          out(b, h, t, j) = static_cast<double>(acc);
        }
      }
    }
}

struct Forward {
  TensorD out, lse, probs;
};
Forward run_forward(const Problem& p, bool with_probs = true) {
  const Sizes& z = p.z;
  Context ctx;
  Forward f{TensorD(Shape{z.B, z.NH, z.T, z.HSV}), TensorD(Shape{z.B, z.NH, z.T}),
            with_probs ? TensorD(Shape{z.B, z.NH, z.T, z.S}) : TensorD()};
  ops::reference::attention_forward(p.q.view(), p.k.view(), p.v.view(), p.mask, p.bias.view(),
                                    p.scale, f.out.view(), f.lse.view(), f.probs.view(), ctx);
  return f;
}

const std::vector<Sizes> kSizes = {{1, 1, 1, 1, 1, 1, 1},  {1, 1, 1, 1, 7, 3, 2},
                                   {2, 2, 1, 5, 5, 3, 2},  {1, 4, 2, 7, 3, 5, 4},
                                   {2, 2, 2, 9, 12, 4, 3}, {1, 3, 1, 12, 9, 2, 5}};

TEST(AttentionReference, MatchesBruteForceForEveryMaskAndSize) {
  uint64_t seed = 1;
  for (const auto& mc : mask_cases())
    for (const auto& z : kSizes) {
      SCOPED_TRACE(mc.name + " B=" + std::to_string(z.B) + " NH=" + std::to_string(z.NH) + "/" +
                   std::to_string(z.NH_kv) + " T=" + std::to_string(z.T) +
                   " S=" + std::to_string(z.S) + " HS=" + std::to_string(z.HS));
      const Problem p = make_problem(z, mc, seed++);
      const Forward f = run_forward(p);
      TensorD out, lse;
      brute_force(p, out, lse);
      // Both accumulate in >= double; the difference is rounding of O(S·HS) terms.
      EXPECT_TRUE(all_close(f.out, out, 1e-12, 1e-12));
      EXPECT_TRUE(all_close(f.lse, lse, 1e-12, 1e-12));
    }
}

TEST(AttentionReference, ProbabilitiesAreARowSoftmaxThatReproducesOut) {
  uint64_t seed = 100;
  for (const auto& mc : mask_cases()) {
    SCOPED_TRACE(mc.name);
    const Problem p = make_problem({2, 2, 1, 6, 8, 3, 2}, mc, seed++);
    const Forward f = run_forward(p);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t t = 0; t < 6; ++t) {
          const auto ok = allowed_keys(p.mask, b, t, 8);
          double sum = 0.0;
          for (int64_t s = 0; s < 8; ++s) {
            if (!ok[static_cast<size_t>(s)]) {
              EXPECT_EQ(f.probs(b, h, t, s), 0.0);
            }
            EXPECT_GE(f.probs(b, h, t, s), 0.0);
            sum += f.probs(b, h, t, s);
          }
          if (std::isinf(f.lse(b, h, t))) {
            EXPECT_EQ(sum, 0.0);
          } else {
            EXPECT_NEAR(sum, 1.0, 1e-14);
          }
          for (int64_t j = 0; j < 2; ++j) {
            double acc = 0.0;
            for (int64_t s = 0; s < 8; ++s) acc += f.probs(b, h, t, s) * p.v(b, 0, s, j);
            EXPECT_NEAR(acc, f.out(b, h, t, j), 1e-14);
          }
        }
  }
}

TEST(AttentionReference, MaskParametersEqualTheirDenseEquivalent) {
  uint64_t seed = 200;
  for (const auto& mc : mask_cases()) {
    SCOPED_TRACE(mc.name);
    const Sizes z{2, 2, 2, 7, 9, 4, 3};
    const Problem p = make_problem(z, mc, seed++);
    const TensorD dense =
        ops::reference::materialize_attention_mask(p.mask, p.bias.view(), z.B, z.NH, z.T, z.S);
    for (int64_t b = 0; b < z.B; ++b)
      for (int64_t t = 0; t < z.T; ++t) {
        const auto ok = allowed_keys(p.mask, b, t, z.S);
        for (int64_t s = 0; s < z.S; ++s)
          if (!ok[static_cast<size_t>(s)]) {
            EXPECT_EQ(dense(b, 0, t, s), -kInf) << b << " " << t << " " << s;
          }
      }
    Problem dense_only = make_problem(z, MaskCase{}, seed - 1);
    dense_only.bias = TensorD::copy_of(dense.view());
    EXPECT_TRUE(all_close(run_forward(p).out, run_forward(dense_only).out, 0.0));
    EXPECT_TRUE(all_close(run_forward(p).lse, run_forward(dense_only).lse, 0.0));
  }
}

TEST(AttentionReference, HugeLogitsStayFinite) {
  Rng rng(5);
  MaskCase causal;
  causal.mask.causal = true;
  Problem p = make_problem({1, 2, 2, 6, 6, 4, 3}, causal, 5);
  for (auto& x : p.q.values()) x *= 100.0;  // scores ~ 1e4
  for (auto& x : p.k.values()) x *= 100.0;
  const Forward f = run_forward(p);
  TensorD out, lse;
  brute_force(p, out, lse);
  for (double x : f.out.values()) EXPECT_TRUE(std::isfinite(x));
  EXPECT_GT(max_abs(f.lse.view()), 1e3);
  EXPECT_TRUE(all_close(f.out, out, 1e-12, 1e-12));
  EXPECT_TRUE(all_close(f.lse, lse, 0.0, 1e-14));
}

TEST(AttentionReference, FullyMaskedRowsGiveZerosNeverNaN) {
  const Sizes z{3, 2, 1, 4, 5, 3, 2};
  std::vector<AttentionMask> masks(4);
  std::vector<bool> bias_blocks(4, false);
  masks[0].key_lengths = {5, 0, 2};  // batch 1 has no keys at all
  masks[1].window_left = 0, masks[1].window_right = 0,
  masks[1].query_offset = 3;                           // t >= 2: p >= 5 = S
  masks[2].causal = true, masks[2].query_offset = -2;  // the first two queries precede every key
  bias_blocks[3] = true;                               // a bias alone blocks everything
  for (size_t i = 0; i < masks.size(); ++i) {
    SCOPED_TRACE(i);
    MaskCase mc;
    Problem p = make_problem(z, mc, 40 + i);
    p.mask = masks[i];
    if (bias_blocks[i]) p.bias = TensorD::full(Shape{1, 1, 4, 5}, -kInf);
    const Forward f = run_forward(p);
    int64_t empty_rows = 0;
    for (int64_t b = 0; b < z.B; ++b)
      for (int64_t h = 0; h < z.NH; ++h)
        for (int64_t t = 0; t < z.T; ++t) {
          if (!std::isinf(f.lse(b, h, t))) continue;
          ++empty_rows;
          EXPECT_LT(f.lse(b, h, t), 0);
          for (int64_t j = 0; j < z.HSV; ++j) EXPECT_EQ(f.out(b, h, t, j), 0.0);
          for (int64_t s = 0; s < z.S; ++s) EXPECT_EQ(f.probs(b, h, t, s), 0.0);
        }
    EXPECT_GT(empty_rows, 0);
    for (double x : f.out.values()) EXPECT_FALSE(std::isnan(x));
    // Gradients are zero for those rows and never NaN.
    TensorD dout = TensorD::full(f.out.shape(), 1.0), dq(p.q.shape()), dk(p.k.shape()),
            dv(p.v.shape());
    TensorD dbias = p.bias.defined() ? TensorD(p.bias.shape()) : TensorD();
    Context ctx;
    ops::reference::attention_backward(p.q.view(), p.k.view(), p.v.view(), f.out.view(),
                                       f.lse.view(), dout.view(), p.mask, p.bias.view(), p.scale,
                                       dq.view(), dk.view(), dv.view(), dbias.view(), ctx);
    for (const TensorD* g : {&dq, &dk, &dv})
      for (double x : g->values()) EXPECT_FALSE(std::isnan(x));
  }
}

TEST(AttentionReference, FloatAndStridedInputsAgreeWithDouble) {
  uint64_t seed = 300;
  for (const auto& mc : mask_cases()) {
    SCOPED_TRACE(mc.name);
    Problem p = make_problem({2, 4, 2, 5, 7, 3, 3}, mc, seed++);
    // Round the inputs to float first, so that both runs see identical values.
    for (TensorD* t : {&p.q, &p.k, &p.v, &p.bias})
      for (double& x : t->values()) x = static_cast<double>(static_cast<float>(x));
    const Forward fd = run_forward(p);
    // float32 copies of the same values, as strided views
    const Tensor qf = Tensor::copy_of(p.q.view()), kf = Tensor::copy_of(p.k.view()),
                 vf = Tensor::copy_of(p.v.view());
    const auto qs = strided_copy(qf), ks = strided_copy(kf), vs = strided_copy(vf);
    Tensor bf;
    if (p.bias.defined()) bf = Tensor::copy_of(p.bias.view());
    Tensor out(fd.out.shape()), lse(fd.lse.shape());
    auto out_s = strided_copy(out);
    Context ctx;
    ops::reference::attention_forward(qs.view, ks.view, vs.view, p.mask, bf.view(), p.scale,
                                      out_s.view, lse.view(), {}, ctx);
    // Inputs are the same floats; only the final rounding to float differs.
    EXPECT_TRUE((all_close<float, double>(out_s.view, fd.out.view(),
                                          2 * kEpsF32 * max_abs(ConstTensorViewD(p.v.view())))));
    EXPECT_TRUE((all_close<float, double>(lse.view(), fd.lse.view(), 0.0, 2 * kEpsF32)));
  }
}

// Backward: reference vs central differences of L = <out, G> in double, for every mask kind.
TEST(AttentionReference, BackwardMatchesFiniteDifferences) {
  uint64_t seed = 400;
  for (const auto& mc : mask_cases()) {
    SCOPED_TRACE(mc.name);
    const Sizes z{2, 2, 1, 4, 5, 3, 2};
    Problem p = make_problem(z, mc, seed++);
    Rng rng(seed);
    const TensorD G = random_tensor<double>(Shape{z.B, z.NH, z.T, z.HSV}, rng);
    const Forward f = run_forward(p, false);
    TensorD dq(p.q.shape()), dk(p.k.shape()), dv(p.v.shape());
    TensorD dbias = p.bias.defined() ? TensorD(p.bias.shape()) : TensorD();
    Context ctx;
    ops::reference::attention_backward(p.q.view(), p.k.view(), p.v.view(), f.out.view(),
                                       f.lse.view(), G.view(), p.mask, p.bias.view(), p.scale,
                                       dq.view(), dk.view(), dv.view(), dbias.view(), ctx);
    auto loss = [&] { return dot<double, double>(run_forward(p, false).out.view(), G.view()); };
    EXPECT_TRUE(all_close(dq, numeric_gradient(loss, p.q.view()), 1e-8, 1e-7));
    EXPECT_TRUE(all_close(dk, numeric_gradient(loss, p.k.view()), 1e-8, 1e-7));
    EXPECT_TRUE(all_close(dv, numeric_gradient(loss, p.v.view()), 1e-8, 1e-7));
    if (p.bias.defined()) {
      // -inf bias entries have no finite neighbourhood: their gradient is defined as 0.
      TensorD num = numeric_gradient(loss, p.bias.view());
      for (int64_t i = 0; i < num.numel(); ++i)
        if (std::isinf(p.bias.data()[i])) num.data()[i] = 0.0;
      EXPECT_TRUE(all_close(dbias, num, 1e-8, 1e-7));
    }
  }
}

TEST(AttentionReference, BackwardAccumulates) {
  MaskCase mc;
  mc.mask.causal = true;
  const Problem p = make_problem({1, 2, 2, 4, 4, 3, 3}, mc, 9);
  const Forward f = run_forward(p, false);
  TensorD dout = TensorD::full(f.out.shape(), 0.5), dq(p.q.shape()), dk(p.k.shape()),
          dv(p.v.shape());
  Context ctx;
  auto backward = [&] {
    ops::reference::attention_backward(p.q.view(), p.k.view(), p.v.view(), f.out.view(),
                                       f.lse.view(), dout.view(), p.mask, p.bias.view(), p.scale,
                                       dq.view(), dk.view(), dv.view(), {}, ctx);
  };
  backward();
  const TensorD once = TensorD::copy_of(dq.view());
  backward();
  for (int64_t i = 0; i < dq.numel(); ++i) EXPECT_DOUBLE_EQ(dq.data()[i], 2 * once.data()[i]);
  EXPECT_GT(max_abs(once.view()), 0.0);
}

// The interval the kernels plan with is exactly the visible set when there is no dilation.
TEST(AttentionReference, KeyIntervalEqualsTheVisibleKeys) {
  for (const auto& mc : mask_cases()) {
    if (mc.mask.dilation > 1) continue;
    SCOPED_TRACE(mc.name);
    const Sizes z{2, 1, 1, 11, 13, 1, 1};
    const Problem p = make_problem(z, mc, 7);
    for (int64_t b = 0; b < z.B; ++b)
      for (int64_t t = 0; t < z.T; ++t) {
        const auto [lo, hi] = p.mask.key_interval(b, t, z.S);
        for (int64_t s = 0; s < z.S; ++s)
          EXPECT_EQ(p.mask.key_visible(b, t, s), lo <= s && s <= hi) << b << " " << t << " " << s;
      }
  }
}

TEST(AttentionReference, AlibiSlopesFollowThePaper) {
  const auto s8 = ops::alibi_slopes(8);
  for (int h = 0; h < 8; ++h)
    EXPECT_FLOAT_EQ(s8[static_cast<size_t>(h)], std::pow(2.0f, -static_cast<float>(h + 1)));
  // 6 heads: the 4-head slopes, then every other slope of the 8-head set.
  const std::vector<float> s6 = {0.25f, 0.0625f, 0.015625f, 0.00390625f, 0.5f, 0.125f};
  EXPECT_EQ(ops::alibi_slopes(6), s6);
  EXPECT_EQ(ops::alibi_slopes(1), std::vector<float>{std::pow(2.0f, -8.0f)});
  ATTN_EXPECT_THROW_MSG(ops::alibi_slopes(0), ValueError, "alibi_slopes", "num_heads");
}

TEST(AttentionReference, RejectsBadArgumentsWithClearMessages) {
  Context ctx;
  Tensor q(Shape{2, 4, 7, 64}), k(Shape{2, 2, 9, 64}), v(Shape{2, 2, 9, 32});
  Tensor out(Shape{2, 4, 7, 32}), lse(Shape{2, 4, 7});
  ops::AttentionMask m;
  auto fwd = [&](ConstTensorView qq, ConstTensorView kk, ConstTensorView vv,
                 const ops::AttentionMask& mm, TensorView oo, TensorView ll, double scale = 0.125,
                 ConstTensorView bias = {}) {
    ops::reference::attention_forward(qq, kk, vv, mm, bias, scale, oo, ll, {}, ctx);
  };
  fwd(q, k, v, m, out, lse);  // valid
  Tensor q3(Shape{2, 7, 64});
  ATTN_EXPECT_THROW_MSG(fwd(q3, k, v, m, out, lse), ShapeError, "attention_forward",
                        "q must have rank 4", "(2, 7, 64)");
  Tensor k48(Shape{2, 2, 9, 48});
  ATTN_EXPECT_THROW_MSG(fwd(q, k48, v, m, out, lse), ShapeError, "attention_forward",
                        "k has head size 48 but q has 64", "q (2, 4, 7, 64)", "k (2, 2, 9, 48)");
  Tensor k3(Shape{2, 3, 9, 64}), v3(Shape{2, 3, 9, 32});
  ATTN_EXPECT_THROW_MSG(fwd(q, k3, v3, m, out, lse), ShapeError, "not a multiple of k's 3 heads");
  Tensor v8(Shape{2, 2, 8, 32});
  ATTN_EXPECT_THROW_MSG(fwd(q, k, v8, m, out, lse), ShapeError,
                        "v must have the same heads and length as k");
  Tensor kb(Shape{3, 2, 9, 64});
  ATTN_EXPECT_THROW_MSG(fwd(q, kb, v, m, out, lse), ShapeError, "same batch size");
  Tensor out_bad(Shape{2, 4, 7, 64});
  ATTN_EXPECT_THROW_MSG(fwd(q, k, v, m, out_bad, lse), ShapeError, "out has shape (2, 4, 7, 64)",
                        "(2, 4, 7, 32)");
  ATTN_EXPECT_THROW_MSG(fwd(q, k, v, m, out, lse, std::nan("")), ValueError,
                        "scale must be finite");

  auto bad_mask = [&](auto&& set, auto error_tag, std::initializer_list<const char*> fragments) {
    ops::AttentionMask mm;
    set(mm);
    using E = decltype(error_tag);
    try {
      fwd(q, k, v, mm, out, lse);
      ADD_FAILURE() << "expected an error";
    } catch (const E& e) {
      for (const char* f : fragments)
        EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
    }
  };
  bad_mask([](auto& mm) { mm.window_left = -3; }, ValueError(""),
           {"window_left must be >= 0 or -1", "-3"});
  bad_mask([](auto& mm) { mm.window_right = -2; }, ValueError(""), {"window_right"});
  bad_mask([](auto& mm) { mm.dilation = 0; }, ValueError(""), {"dilation must be >= 1"});
  bad_mask([](auto& mm) { mm.chunk_size = -1; }, ValueError(""), {"chunk_size"});
  bad_mask([](auto& mm) { mm.chunk_size = 2, mm.num_left_chunks = -5; }, ValueError(""),
           {"num_left_chunks"});
  bad_mask([](auto& mm) { mm.key_lengths = {9}; }, ShapeError(""),
           {"key_lengths has 1 entries", "batch size is 2"});
  bad_mask(
      [](auto& mm) {
        mm.key_lengths = {9, 10};
      },
      ValueError(""), {"key_lengths[1] = 10", "S = 9"});
  bad_mask([](auto& mm) { mm.key_lengths = {-1, 3}; }, ValueError(""), {"key_lengths[0] = -1"});
  bad_mask(
      [](auto& mm) {
        mm.alibi_slopes = {1, 2};
      },
      ShapeError(""), {"alibi_slopes has 2 entries", "4 heads"});
  bad_mask(
      [](auto& mm) {
        mm.alibi_slopes = {1, 2, 3, std::numeric_limits<float>::infinity()};
      },
      ValueError(""), {"alibi_slopes[3]"});
  Tensor bias_bad(Shape{2, 4, 7, 8});
  ATTN_EXPECT_THROW_MSG(fwd(q, k, v, m, out, lse, 0.125, bias_bad), ShapeError, "attention_forward",
                        "bias has shape (2, 4, 7, 8)", "(2 or 1, 4 or 1, 7, 9)");
  {  // batch 1: the batch dimension reads "1", not "1 or 1"
    Tensor q1(Shape{1, 4, 7, 64}), k1(Shape{1, 2, 9, 64}), v1(Shape{1, 2, 9, 32});
    Tensor out1(Shape{1, 4, 7, 32}), lse1(Shape{1, 4, 7}), bias1(Shape{7, 9});
    ATTN_EXPECT_THROW_MSG(fwd(q1, k1, v1, m, out1, lse1, 0.125, bias1), ShapeError,
                          "bias has shape (7, 9) but (1, 4 or 1, 7, 9) is expected");
  }

  // Outputs may not alias inputs.
  Tensor shared(Shape{2, 4, 7, 64});
  ATTN_EXPECT_THROW_MSG(fwd(shared, k, v, m, shared.view().slice(3, 0, 32), lse), ValueError,
                        "out overlaps an input");

  // Backward: the gradient shapes and a dbias without bias.
  Tensor dq(q.shape()), dk(k.shape()), dv(v.shape()), dout(out.shape()), dq_bad(Shape{2, 4, 7, 63});
  auto bwd = [&](TensorView dqq, TensorView dbias) {
    ops::reference::attention_backward(q, k, v, out, lse, dout, m, {}, 0.125, dqq, dk, dv, dbias,
                                       ctx);
  };
  ATTN_EXPECT_THROW_MSG(bwd(dq_bad, {}), ShapeError, "attention_backward",
                        "dq has shape (2, 4, 7, 63)");
  Tensor dbias(Shape{1, 1, 7, 9});
  ATTN_EXPECT_THROW_MSG(bwd(dq, dbias), ValueError, "dbias was given but there is no bias");
}

}  // namespace
}  // namespace attn::testing
