// SPDX-License-Identifier: MIT
// The fused attention kernel through the op harness (testing/op_case.h): against the reference on
// size sweeps around vector and block edges, every mask kind and combination, GQA, strided views,
// huge logits; the reference against finite differences; bitwise determinism across thread counts.
// Plus the kernel-specific cases: fully masked rows, streamed outputs, accumulation, the returning
// forms.
#include <cmath>
#include <cstring>

#include "ops/internal/attention_backward.h"
#include "ops/op_specs.h"

namespace attn::testing {
namespace {

struct Case {
  int64_t B, NH, NH_kv, T, S, HS, HSV;
  ops::AttentionMask mask;
  bool bias = false, bias_broadcast = false, alibi = false;
  std::string name;
};

struct Inputs {
  Tensor q, k, v, bias, dout;
  ops::AttentionMask mask;
  double scale;
};

Inputs make_inputs(const Case& c, uint64_t seed, double magnitude = 1.0) {
  Rng rng(seed);
  Inputs in{random_tensor<float>(Shape{c.B, c.NH, c.T, c.HS}, rng, magnitude),
            random_tensor<float>(Shape{c.B, c.NH_kv, c.S, c.HS}, rng, magnitude),
            random_tensor<float>(Shape{c.B, c.NH_kv, c.S, c.HSV}, rng),
            Tensor(),
            random_tensor<float>(Shape{c.B, c.NH, c.T, c.HSV}, rng),
            c.mask,
            ops::default_attention_scale(c.HS)};
  if (c.alibi) in.mask.alibi_slopes = ops::alibi_slopes(c.NH);
  if (c.bias) {
    in.bias = random_tensor<float>(
        c.bias_broadcast ? Shape{1, c.NH, c.T, c.S} : Shape{c.B, 1, c.T, c.S}, rng);
    for (int64_t i = 0; i < in.bias.numel(); i += 5)
      in.bias.data()[i] = -std::numeric_limits<float>::infinity();
  }
  return in;
}

struct Result {
  Tensor out, lse, probs, dq, dk, dv, dbias;
};

Result run(const Inputs& in, bool reference, int threads = 2, bool with_probs = false,
           bool backward = true) {
  Context ctx(ContextOptions{.num_threads = threads});
  const Shape& qs = in.q.shape();
  Result r{Tensor(Shape{qs[0], qs[1], qs[2], in.v.dim(3)}),
           Tensor(Shape{qs[0], qs[1], qs[2]}),
           with_probs ? Tensor(Shape{qs[0], qs[1], qs[2], in.k.dim(2)}) : Tensor(),
           Tensor(in.q.shape()),
           Tensor(in.k.shape()),
           Tensor(in.v.shape()),
           in.bias.defined() ? Tensor(in.bias.shape()) : Tensor()};
  if (reference) {
    ops::reference::attention_forward(in.q, in.k, in.v, in.mask, in.bias, in.scale, r.out, r.lse,
                                      r.probs.view(), ctx);
  } else {
    // Outputs are overwritten: start them at NaN so that any element the kernel skips shows up.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    fill(r.out.view(), nan);
    fill(r.lse.view(), nan);
    if (with_probs) fill(r.probs.view(), nan);
    ops::attention_forward(in.q, in.k, in.v, in.mask, in.bias, in.scale, r.out, r.lse,
                           r.probs.view(), ctx);
  }
  if (backward) {
    if (reference) {
      ops::reference::attention_backward(in.q, in.k, in.v, r.out, r.lse, in.dout, in.mask, in.bias,
                                         in.scale, r.dq, r.dk, r.dv, r.dbias.view(), ctx);
    } else {
      ops::attention_backward(in.q, in.k, in.v, r.out, r.lse, in.dout, in.mask, in.bias, in.scale,
                              r.dq, r.dk, r.dv, r.dbias.view(), ctx);
    }
  }
  return r;
}

// Tolerances from the float32 error model. A score carries error δs ≈ HS·eps·scale·|q||k| (dot
// product) plus eps·|s|; softmax turns δs into a relative change of the weights, so outputs move by
// ≤ 2·δs·max|v|, and the P·V sum over S keys adds ≤ sqrt(S)·eps·max|v| (random-walk rounding).
// Gradients chain two more products of the same kind, so they get the same form scaled by their
// magnitudes. dS = P ⊙ (dP − D) cancels when one key dominates (exactly 0 for S = 1), so gradient
// errors scale with the terms |dP| ~ |dO||V|, not with the result: they are compared against that
// magnitude too.
struct Tolerance {
  double out, lse, grad_rel, terms;
};
Tolerance tolerance(const OpCase& c, double scale) {
  const TensorD &q = c.inputs[0], &k = c.inputs[1], &v = c.inputs[2];
  const double hs = static_cast<double>(q.dim(3)), s = static_cast<double>(k.dim(2));
  const double qk = scale * max_abs(q.view()) * max_abs(k.view());
  const double score_err = kEpsF32 * (hs * qk + qk * std::sqrt(hs) + 8.0);
  const double vm = max_abs(v.view());
  const double terms =
      kMaxGrad * (vm + 1.0) * (scale * std::max(max_abs(q.view()), max_abs(k.view())) + 1.0);
  return {4.0 * (2.0 * score_err + std::sqrt(s) * kEpsF32) * vm + 1e-7, 4.0 * score_err + 1e-6,
          8.0 * (2.0 * score_err + std::sqrt(s + hs) * kEpsF32), terms};
}

// Attention registered with the op harness for one mask and scale: in = {q, k, v, bias or
// undefined}; out = {out, lse[, probs]}; gradients {dq, dk, dv, dbias}.
OpSpec attention_spec(const ops::AttentionMask& mask, double scale, bool with_probs) {
  OpSpec spec;
  spec.name = "attention";
  auto out_shapes = [=](const auto& in) {
    const Shape& q = in[0].shape();
    std::vector<Shape> shapes{Shape{q[0], q[1], q[2], in[2].dim(3)}, Shape{q[0], q[1], q[2]}};
    if (with_probs) shapes.push_back(Shape{q[0], q[1], q[2], in[1].dim(2)});
    return shapes;
  };
  spec.forward = [=](const OpSpec::Views& in, const Context& ctx) {
    std::vector<Tensor> out;
    for (const Shape& shape : out_shapes(in))
      out.push_back(Tensor::full(shape, std::nanf("")));  // all overwritten
    ops::attention_forward(in[0], in[1], in[2], mask, in[3], scale, out[0], out[1],
                           with_probs ? out[2].view() : TensorView(), ctx);
    return out;
  };
  spec.reference = [=](const OpSpec::ViewsD& in, const Context& ctx) {
    std::vector<TensorD> out;
    for (const Shape& shape : out_shapes(in)) out.emplace_back(shape);
    ops::reference::attention_forward(in[0], in[1], in[2], mask, in[3], scale, out[0], out[1],
                                      with_probs ? out[2].view() : TensorViewD(), ctx);
    return out;
  };
  spec.backward = [=](const OpSpec::Views& in, const OpSpec::Views& out, const OpSpec::Views& g,
                      const Context& ctx) {
    auto d = zeros_like<float>({in[0], in[1], in[2], in[3]});
    ops::attention_backward(in[0], in[1], in[2], out[0], out[1], g[0], mask, in[3], scale, d[0],
                            d[1], d[2], d[3], ctx);
    return d;
  };
  spec.reference_backward = [=](const OpSpec::ViewsD& in, const OpSpec::ViewsD& out,
                                const OpSpec::ViewsD& g, const Context& ctx) {
    auto d = zeros_like<double>({in[0], in[1], in[2], in[3]});
    ops::reference::attention_backward(in[0], in[1], in[2], out[0], out[1], g[0], mask, in[3],
                                       scale, d[0], d[1], d[2], d[3], ctx);
    return d;
  };
  spec.differentiable_outputs = {true, false, false};
  spec.differentiable_outputs.resize(with_probs ? 3 : 2);
  spec.forward_tolerance = [=](const OpCase& c, size_t i, const TensorD&) {
    const Tolerance t = tolerance(c, scale);
    return i == 0 ? t.out : t.lse;  // lse and probs: the score error
  };
  spec.backward_tolerance = [=](const OpCase& c, size_t, const TensorD& expected) {
    const Tolerance t = tolerance(c, scale);
    return t.grad_rel * (max_abs(expected.view()) + t.terms);
  };
  return spec;
}

std::string describe(const Case& c);

// The case as the harness takes it (double inputs) and its spec.
OpCase op_case(const Case& c, uint64_t seed, double magnitude = 1.0);
OpCase op_case(const Case& c, uint64_t seed, double magnitude) {
  const Inputs in = make_inputs(c, seed, magnitude);
  return {describe(c), tensors(TensorD::copy_of(in.q.view()), TensorD::copy_of(in.k.view()),
                               TensorD::copy_of(in.v.view()),
                               in.bias.defined() ? TensorD::copy_of(in.bias.view()) : TensorD())};
}
OpSpec spec_of(const Case& c, bool with_probs = false) {
  ops::AttentionMask mask = c.mask;
  if (c.alibi) mask.alibi_slopes = ops::alibi_slopes(c.NH);
  return attention_spec(mask, ops::default_attention_scale(c.HS), with_probs);
}
std::vector<OpCase> one(OpCase c) {
  std::vector<OpCase> v;
  v.push_back(std::move(c));
  return v;
}

std::string describe(const Case& c) {
  return c.name + " B=" + std::to_string(c.B) + " NH=" + std::to_string(c.NH) + "/" +
         std::to_string(c.NH_kv) + " T=" + std::to_string(c.T) + " S=" + std::to_string(c.S) +
         " HS=" + std::to_string(c.HS) + " HSV=" + std::to_string(c.HSV);
}

TEST(Attention, ForwardSweepOfSizes) {
  const std::vector<int64_t> lengths = {1, 2, 7, 15, 16, 17, 31, 63, 64, 65, 127, 200, 513};
  const std::vector<int64_t> head_sizes = {1, 3, 8, 16, 17, 32, 64, 80, 128};
  uint64_t seed = 1;
  for (int64_t T : lengths)
    for (int64_t S : lengths) {
      // Every (T, S) pair, cycling through head sizes so that each head size meets many shapes.
      const int64_t HS = head_sizes[static_cast<size_t>(seed) % head_sizes.size()];
      if (T * S * HS > 4'000'000) continue;  // keep the reference affordable
      Case c{1, 2, 1, T, S, HS, HS, {}, false, false, false, "full"};
      if (seed % 3 == 1)
        c.mask.causal = true, c.mask.query_offset = S - T, c.name = "causal_bottom_right";
      check_forward(spec_of(c), one(op_case(c, seed++)));
    }
}

TEST(Attention, BackwardSweepOfSizes) {
  uint64_t seed = 100;
  for (int64_t T : {1, 7, 16, 17, 65, 127})
    for (int64_t S : {1, 15, 64, 65, 200})
      for (int64_t HS : {3, 16, 17, 64}) {
        if (seed++ % 2) continue;  // half of the grid, alternating
        Case c{2, 2, 2, T, S, HS, HS == 17 ? 5 : HS, {}, false, false, false, "full"};
        check_backward(spec_of(c), one(op_case(c, seed)));
      }
}

std::vector<Case> mask_cases(int64_t NH = 4, int64_t NH_kv = 2) {
  std::vector<Case> cases;
  auto add = [&](std::string name, auto&& set) {
    Case c{2, NH, NH_kv, 70, 90, 16, 8, {}, false, false, false, std::move(name)};
    set(c);
    cases.push_back(std::move(c));
  };
  add("causal", [](Case& c) { c.mask.causal = true; });
  add("window_8_3", [](Case& c) { c.mask.window_left = 8, c.mask.window_right = 3; });
  add("window_0_0", [](Case& c) { c.mask.window_left = 0, c.mask.window_right = 0; });
  add("window_left_only", [](Case& c) { c.mask.window_left = 20; });
  add("dilation_3", [](Case& c) { c.mask.dilation = 3; });
  add("dilation_window",
      [](Case& c) { c.mask.dilation = 2, c.mask.window_left = 13, c.mask.window_right = 9; });
  add("chunk_16_all", [](Case& c) { c.mask.chunk_size = 16; });
  add("chunk_lengths", [](Case& c) {
    c.mask.chunk_size = 10, c.mask.num_left_chunks = 1, c.mask.key_lengths = {90, 33};
  });
  add("key_lengths_empty", [](Case& c) { c.mask.key_lengths = {0, 41}; });
  add("alibi", [](Case& c) { c.alibi = true; });
  add("bias_per_batch", [](Case& c) { c.bias = true; });
  add("bias_broadcast_batch", [](Case& c) { c.bias = true, c.bias_broadcast = true; });
  add("window_causal_lengths_alibi", [](Case& c) {
    c.mask.window_left = 12, c.mask.causal = true, c.mask.key_lengths = {77, 50}, c.alibi = true;
  });
  add("everything", [](Case& c) {
    c.mask.causal = true, c.mask.window_left = 30, c.mask.window_right = 5, c.mask.dilation = 2;
    c.mask.chunk_size = 12, c.mask.num_left_chunks = 2, c.mask.key_lengths = {85, 60},
    c.alibi = true;
    c.bias = true, c.mask.query_offset = 20;
  });
  add("key_offset_chunk_dilation_alibi", [](Case& c) {  // keys as one block of a longer sequence
    c.mask.key_offset = 37, c.mask.query_offset = 50, c.mask.chunk_size = 16,
    c.mask.num_left_chunks = 1, c.mask.dilation = 2, c.alibi = true;
  });
  add("key_offset_window_causal", [](Case& c) {
    c.mask.key_offset = -45, c.mask.causal = true, c.mask.window_left = 40;
  });
  add("negative_offset_empty_rows",
      [](Case& c) { c.mask.causal = true, c.mask.query_offset = -10; });
  // Dilations wider than every distance t - s + offset (here in [-89, 69] before the offsets): the
  // one multiple of the dilation among them, if any, is kept (the diagonal; keys 10 to the right of
  // each query), else every row is empty. 2^31 classes took seconds before they were bounded.
  add("dilation_200_alibi", [](Case& c) { c.mask.dilation = 200, c.alibi = true; });
  add("dilation_2^31_offset_lengths", [](Case& c) {
    c.mask.dilation = int64_t{1} << 31, c.mask.query_offset = (int64_t{1} << 31) + 10,
    c.mask.key_lengths = {90, 50};
  });
  add("dilation_2^31_no_multiple",
      [](Case& c) { c.mask.dilation = int64_t{1} << 31, c.mask.key_offset = 1000; });
  return cases;
}

TEST(Attention, EveryMaskKindForwardBackwardAndProbs) {
  uint64_t seed = 200;
  for (const Case& c : mask_cases()) {
    const auto cases = one(op_case(c, seed++));
    check_forward(spec_of(c, true), cases);
    check_backward(spec_of(c), cases);
  }
}

// Decoding shapes (a few queries against a long cache): with fewer (block, head) tasks than threads
// want, the forward splits each task's keys and merges the parts by their maxima and sums
// (flash-decoding). Masks that leave some parts without a visible key, or every part, included.
TEST(Attention, DecodingShapesSplitTheKeysAndMatchTheReference) {
  uint64_t seed = 400;
  for (int64_t T : {1, 3, 16})
    for (int64_t S : {1030, 2600}) {
      std::vector<Case> cases;
      auto add = [&](std::string name, auto&& set) {
        Case c{1, 2, 1, T, S, 16, 8, {}, false, false, false, std::move(name)};
        set(c);
        cases.push_back(std::move(c));
      };
      add("full", [](Case&) {});
      add("causal_bottom_right",
          [&](Case& c) { c.mask.causal = true, c.mask.query_offset = S - T; });
      add("window_300_bottom_right", [&](Case& c) {
        c.mask.window_left = 300, c.mask.window_right = 0, c.mask.query_offset = S - T;
      });
      add("key_length_700", [](Case& c) { c.mask.key_lengths = {700}; });
      add("key_length_0", [](Case& c) { c.mask.key_lengths = {0}; });
      add("dilation_2_alibi", [](Case& c) { c.mask.dilation = 2, c.alibi = true; });
      add("bias", [](Case& c) { c.bias = true; });
      for (const Case& c : cases) {
        const auto one_case = one(op_case(c, seed++));
        check_forward(spec_of(c), one_case);
        check_threads(spec_of(c), one_case);
      }
    }
}

// The backward's two forms (internal/attention_backward.h), each forced on every mask case: the
// fused pass (dQ added by the key tasks) and the two passes. The shape's own choice is covered
// above; here both forms meet the reference whatever the shape picks, and are thread-independent.
TEST(Attention, FusedAndTwoPassBackwardsBothMatchTheReference) {
  for (const int64_t min_tasks : {int64_t{0}, std::numeric_limits<int64_t>::max()}) {
    SCOPED_TRACE(min_tasks == 0 ? "fused" : "two passes");
    const internal::ScopedFusedBackwardMinTasks form(min_tasks);
    uint64_t seed = 600;
    for (const Case& c : mask_cases(6, 3)) {
      const auto cases = one(op_case(c, seed++));
      check_backward(spec_of(c), cases);
      check_threads(spec_of(c), cases);
    }
  }
}

// At the default threshold: B·NH_kv = 2·4 takes the fused pass, and its dQ agrees with the two
// passes', which a dBias request selects on the same inputs (query blocks of 1 and 128 rows).
TEST(Attention, FusedBackwardAgreesWithTwoPassesOnALargerShape) {
  Case c{2, 8, 4, 257, 300, 64, 64, {}, true, false, false, "fused_vs_two_pass"};
  c.mask.window_left = 100, c.mask.causal = true;
  const Inputs in = make_inputs(c, 17);
  const Result two_pass = run(in, false);  // a bias and its dBias: two passes
  Tensor dq(in.q.shape()), dk(in.k.shape()), dv(in.v.shape());
  Context ctx(ContextOptions{.num_threads = 2});
  ops::attention_backward(in.q, in.k, in.v, two_pass.out, two_pass.lse, in.dout, in.mask, in.bias,
                          in.scale, dq, dk, dv, {}, ctx);
  const double tol = 1e-5 * (max_abs(two_pass.dq.view()) + 1.0);
  EXPECT_TRUE((all_close<float, float>(dq.view(), two_pass.dq.view(), tol)));
  EXPECT_TRUE((all_close<float, float>(dk.view(), two_pass.dk.view(), 0.0)));  // same order
  EXPECT_TRUE((all_close<float, float>(dv.view(), two_pass.dv.view(), 0.0)));
}

TEST(Attention, ReferenceBackwardMatchesFiniteDifferencesForEveryMaskKind) {
  // Small copies of the mask cases (the reference is O(T·S·HS) per loss evaluation).
  uint64_t seed = 250;
  for (Case c : mask_cases()) {
    c.T = 7, c.S = 9, c.HS = 3, c.HSV = 2, c.B = 2, c.NH = 2, c.NH_kv = 1;
    if (c.mask.chunk_size > 0) c.mask.chunk_size = 3;
    if (c.mask.window_left > 0) c.mask.window_left = 3;
    if (c.mask.window_right > 0) c.mask.window_right = 2;
    if (c.mask.query_offset > 0) c.mask.query_offset = 2;
    if (c.mask.query_offset < 0) c.mask.query_offset = -2;
    if (c.mask.key_offset != 0) c.mask.key_offset = c.mask.key_offset > 0 ? 3 : -2;
    for (auto& n : c.mask.key_lengths) n = std::min<int64_t>(n, 9) / 2;
    check_gradients(spec_of(c), one(op_case(c, seed++)), 1e-8, 1e-6);
  }
}

TEST(Attention, FullyMaskedRowsAreZeroNotNaN) {
  Case c{2, 2, 1, 20, 30, 8, 8, {}, false, false, false, "empty"};
  c.mask.key_lengths = {0, 30};
  const Result r = run(make_inputs(c, 7), false, 2, true);
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t t = 0; t < 20; ++t) {
      EXPECT_EQ(r.lse(0, h, t), -std::numeric_limits<float>::infinity());
      for (int64_t j = 0; j < 8; ++j) EXPECT_EQ(r.out(0, h, t, j), 0.0f);
    }
  for (const Tensor* t : {&r.out, &r.dq, &r.dk, &r.dv, &r.probs})
    for (float x : t->values()) EXPECT_FALSE(std::isnan(x));
}

TEST(Attention, HugeLogitsStayFiniteAndAccurate) {
  Case c{1, 2, 2, 40, 50, 16, 16, {}, false, false, false, "huge"};
  c.mask.causal = true;
  const Inputs in = make_inputs(c, 8, 50.0);  // scores ~ 50·50·16/4 = 1e4
  const Result r = run(in, false);
  for (float x : r.out.values()) EXPECT_TRUE(std::isfinite(x));
  EXPECT_GT(max_abs(r.lse.view()), 1e3);
  check_forward(spec_of(c), one(op_case(c, 8, 50.0)));
  check_backward(spec_of(c), one(op_case(c, 8, 50.0)));
}

// Strided q, k, v, dO and outputs give the bits of contiguous ones. NH_kv = 4 (B·NH_kv = 8) takes
// the fused backward, 2 the two passes.
void check_strided_views(int64_t NH_kv) {
  SCOPED_TRACE("NH_kv " + std::to_string(NH_kv));
  Case c{2, 4, NH_kv, 33, 47, 16, 12, {}, false, false, true, "strided"};
  c.mask.window_left = 9, c.mask.window_right = 9;
  const Inputs in = make_inputs(c, 9);
  const Result want = run(in, false);
  const auto qs = strided_copy(in.q), ks = strided_copy(in.k), vs = strided_copy(in.v),
             gs = strided_copy(in.dout);
  Tensor out(want.out.shape()), lse(want.lse.shape()), dq(in.q.shape()), dk(in.k.shape()),
      dv(in.v.shape());
  auto outs = strided_copy(out), dqs = strided_copy(dq), dks = strided_copy(dk),
       dvs = strided_copy(dv);
  EXPECT_NE(qs.view.stride(-1), 1);  // strided_copy reverses dimensions: the inner stride is large
  Context ctx(ContextOptions{.num_threads = 2});
  ops::attention_forward(qs.view, ks.view, vs.view, in.mask, in.bias, in.scale, outs.view, lse, {},
                         ctx);
  ops::attention_backward(qs.view, ks.view, vs.view, outs.view, lse, gs.view, in.mask, in.bias,
                          in.scale, dqs.view, dks.view, dvs.view, {}, ctx);
  // Same arithmetic on the same values: identical results.
  EXPECT_TRUE((all_close<float, float>(outs.view, want.out.view(), 0.0)));
  EXPECT_TRUE((all_close<float, float>(dqs.view, want.dq.view(), 0.0)));
  EXPECT_TRUE((all_close<float, float>(dks.view, want.dk.view(), 0.0)));
  EXPECT_TRUE((all_close<float, float>(dvs.view, want.dv.view(), 0.0)));
}

TEST(Attention, StridedAndNonUnitInnerStrideViews) {
  for (const int64_t NH_kv : {2, 4}) check_strided_views(NH_kv);
}

TEST(Attention, OutputsLargeEnoughToStreamMatchTheSameRowsComputedSmall) {
  // 2 heads × 32768 rows × 64 floats = 16 MiB of output: the kernel writes it with non-temporal
  // stores. Under a window ±8, query rows far from the end see the same keys whatever the length,
  // so the first rows must equal, bit for bit, those of a 512-long copy (whose output is written
  // the ordinary way).
  Case c{1, 2, 2, 32768, 32768, 64, 64, {}, false, false, false, "streamed"};
  c.mask.window_left = 8, c.mask.window_right = 8;
  const Inputs big = make_inputs(c, 12);
  auto first_rows = [](const Tensor& t) { return Tensor::copy_of(t.view().slice(2, 0, 512)); };
  const Inputs small{first_rows(big.q), first_rows(big.k), first_rows(big.v), Tensor(),
                     Tensor(),          big.mask,          big.scale};
  const Result r_big = run(big, false, 2, false, false),
               r_small = run(small, false, 2, false, false);
  const int64_t rows = 512 - 64 - 8;  // clear of the last query block and its window
  EXPECT_TRUE((all_close<float, float>(r_big.out.view().slice(2, 0, rows),
                                       r_small.out.view().slice(2, 0, rows), 0.0)));
  EXPECT_TRUE((all_close<float, float>(r_big.lse.view().slice(2, 0, rows),
                                       r_small.lse.view().slice(2, 0, rows), 0.0)));
  for (float x : r_big.out.values()) ASSERT_FALSE(std::isnan(x));  // every streamed row was written
}

TEST(Attention, BitwiseIdenticalForOneAndThreeThreads) {
  for (const Case& c : mask_cases()) check_threads(spec_of(c, true), one(op_case(c, 300)));
}

TEST(Attention, GradientsAccumulate) {
  Case c{1, 2, 1, 20, 20, 8, 8, {}, false, false, false, "acc"};
  const Inputs in = make_inputs(c, 11);
  const Result once = run(in, false);
  Context ctx;
  Tensor dq = Tensor::copy_of(once.dq.view()), dk = Tensor::copy_of(once.dk.view()),
         dv = Tensor::copy_of(once.dv.view());
  ops::attention_backward(in.q, in.k, in.v, once.out, once.lse, in.dout, in.mask, in.bias, in.scale,
                          dq, dk, dv, {}, ctx);
  for (int64_t i = 0; i < dq.numel(); ++i) EXPECT_FLOAT_EQ(dq.data()[i], 2 * once.dq.data()[i]);
  for (int64_t i = 0; i < dv.numel(); ++i) EXPECT_FLOAT_EQ(dv.data()[i], 2 * once.dv.data()[i]);
}

TEST(Attention, ReturningFormsEqualTheOutParameterForms) {
  Case c{2, 4, 2, 19, 23, 8, 6, {}, true, false, true, "returning"};
  c.mask.window_left = 5, c.mask.causal = true;
  const Inputs in = make_inputs(c, 21);
  const Result want = run(in, false, 2, true);
  Context ctx(ContextOptions{.num_threads = 2});
  // The default scale is 1/sqrt(HS), what make_inputs passes to the out-parameter forms.
  ops::AttentionOptions options;
  options.mask = in.mask, options.return_probs = true;
  const ops::AttentionResult r = ops::attention(in.q, in.k, in.v, options, in.bias, ctx);
  EXPECT_TRUE(bitwise_equal(r.out, want.out));
  EXPECT_TRUE(bitwise_equal(r.lse, want.lse));
  EXPECT_TRUE(bitwise_equal(r.probs, want.probs));
  const ops::AttentionGrads g =
      ops::attention_grad(in.q, in.k, in.v, r.out, r.lse, in.dout, options, in.bias, ctx);
  EXPECT_TRUE(bitwise_equal(g.dq, want.dq));
  EXPECT_TRUE(bitwise_equal(g.dk, want.dk));
  EXPECT_TRUE(bitwise_equal(g.dv, want.dv));
  EXPECT_TRUE(bitwise_equal(g.dbias, want.dbias));
  // No probabilities unless asked; an explicit scale is used as given; the thread's own context
  // works too.
  ops::AttentionOptions half;
  half.mask = in.mask, half.scale = 0.5;
  const ops::AttentionResult plain = ops::attention(in.q, in.k, in.v, half, in.bias);
  EXPECT_FALSE(plain.probs.defined());
  Tensor out(want.out.shape()), lse(want.lse.shape());
  ops::attention_forward(in.q, in.k, in.v, in.mask, in.bias, 0.5, out, lse, {}, ctx);
  EXPECT_TRUE(bitwise_equal(plain.out, out));
  half.scale = std::nan("");
  ATTN_EXPECT_THROW_MSG(ops::attention(in.q, in.k, in.v, half, in.bias), ValueError, "attention",
                        "scale must be finite");
  ATTN_EXPECT_THROW_MSG(ops::attention_grad(in.q, in.k, in.v, r.out, r.lse, in.q, options, in.bias),
                        ShapeError, "dout has shape");
}

TEST(Attention, RejectsBadInputLikeTheReference) {
  Context ctx;
  Tensor q(Shape{1, 3, 4, 8}), k(Shape{1, 2, 4, 8}), v(Shape{1, 2, 4, 8}), out(Shape{1, 3, 4, 8}),
      lse(Shape{1, 3, 4});
  ATTN_EXPECT_THROW_MSG(ops::attention_forward(q, k, v, {}, {}, 1.0, out, lse, {}, ctx), ShapeError,
                        "attention_forward", "not a multiple of k's 2 heads");
  ops::AttentionMask m;
  m.window_left = -2;
  Tensor k3(Shape{1, 3, 4, 8}), v3(Shape{1, 3, 4, 8});
  ATTN_EXPECT_THROW_MSG(ops::attention_forward(q, k3, v3, m, {}, 1.0, out, lse, {}, ctx),
                        ValueError, "window_left");
}

}  // namespace
}  // namespace attn::testing
