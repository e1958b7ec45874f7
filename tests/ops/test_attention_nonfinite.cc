// SPDX-License-Identifier: MIT
// Non-finite inputs (docs/masks.md): one NaN or ±Inf placed in q, k, v, the bias or dO, under every
// mask kind, forward and backward. Checked three ways: the fused kernel and the reference agree
// element by element on what is NaN, ±inf or finite (finite values close); what the policy predicts
// from the mask alone holds (which rows turn NaN, which zeros); and every result that cannot see
// the poisoned element equals the clean run's, so a hidden key's NaN never leaks.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "attn/ops/attention.h"
#include "attn/ops/positional.h"
#include "ops/internal/attention_backward.h"
#include "testing/testing.h"

namespace attn::testing {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int64_t B = 2, NH = 2, T = 150, S = 170, HS = 16, HSV = 8;  // one kv head for both

struct Inputs {
  Tensor q, k, v, bias, dout;
  ops::AttentionMask mask;
};

struct Results {
  Tensor out, lse, probs, dq, dk, dv, dbias;
};

Results run(const Inputs& in, bool reference) {
  Context ctx(ContextOptions{.num_threads = 2});
  const double scale = ops::default_attention_scale(HS);
  Results r{Tensor(Shape{B, NH, T, HSV}),
            Tensor(Shape{B, NH, T}),
            Tensor(Shape{B, NH, T, S}),
            Tensor(in.q.shape()),
            Tensor(in.k.shape()),
            Tensor(in.v.shape()),
            in.bias.defined() ? Tensor(in.bias.shape()) : Tensor()};
  if (reference) {
    ops::reference::attention_forward(in.q, in.k, in.v, in.mask, in.bias, scale, r.out, r.lse,
                                      r.probs, ctx);
    ops::reference::attention_backward(in.q, in.k, in.v, r.out, r.lse, in.dout, in.mask, in.bias,
                                       scale, r.dq, r.dk, r.dv, r.dbias.view(), ctx);
  } else {
    ops::attention_forward(in.q, in.k, in.v, in.mask, in.bias, scale, r.out, r.lse, r.probs, ctx);
    ops::attention_backward(in.q, in.k, in.v, r.out, r.lse, in.dout, in.mask, in.bias, scale, r.dq,
                            r.dk, r.dv, r.dbias.view(), ctx);
  }
  return r;
}

struct MaskCase {
  std::string name;
  ops::AttentionMask mask;
  bool bias = false;
};

std::vector<MaskCase> mask_cases() {
  std::vector<MaskCase> cases(9);
  cases[0].name = "full";
  cases[1].name = "causal", cases[1].mask.causal = true;
  cases[2].name = "window_20_5", cases[2].mask.window_left = 20, cases[2].mask.window_right = 5;
  cases[3].name = "key_lengths", cases[3].mask.key_lengths = {120, 170};
  cases[4].name = "dilation_window", cases[4].mask.dilation = 2, cases[4].mask.window_left = 40;
  cases[5].name = "chunk", cases[5].mask.chunk_size = 32, cases[5].mask.num_left_chunks = 1;
  cases[6].name = "causal_alibi", cases[6].mask.causal = true;
  cases[6].mask.alibi_slopes = ops::alibi_slopes(NH);
  cases[7].name = "bias_with_inf", cases[7].bias = true;
  // Five queries per residue class: the forward's score-rows (decoding) layout.
  cases[8].name = "dilation_30_window", cases[8].mask.dilation = 30;
  cases[8].mask.window_left = 1000, cases[8].mask.window_right = 30;
  return cases;
}

Inputs clean_inputs(const MaskCase& mc, uint64_t seed) {
  Rng rng(seed);
  Inputs in{random_tensor<float>(Shape{B, NH, T, HS}, rng),
            random_tensor<float>(Shape{B, 1, S, HS}, rng),
            random_tensor<float>(Shape{B, 1, S, HSV}, rng),
            Tensor(),
            random_tensor<float>(Shape{B, NH, T, HSV}, rng),
            mc.mask};
  if (mc.bias) {
    in.bias = random_tensor<float>(Shape{B, 1, T, S}, rng);
    for (int64_t i = 0; i < in.bias.numel(); i += 7) in.bias.data()[i] = -kInf;
  }
  return in;
}

// One poisoned element and what the policy says it does to each forward row.
enum class Row { kClean, kAllNaN, kZero, kNonFiniteColumn, kFree };
struct Poison {
  std::string name;
  std::function<void(Inputs&)> apply;
  // Expected state of forward row (b, h, t) (kNonFiniteColumn: only out[..., column]).
  std::function<Row(const Inputs&, int64_t b, int64_t h, int64_t t)> row;
  int64_t column = -1;
  bool dout_row = false;  // the poison is in dO row (1, 0, 60): backward only
};

bool sees(const Inputs& in, int64_t b, int64_t t, int64_t s) {
  return in.mask.key_visible(b, t, s);
}
bool sees_any(const Inputs& in, int64_t b, int64_t t) {
  for (int64_t s = 0; s < S; ++s)
    if (sees(in, b, t, s)) return true;
  return false;
}

std::vector<Poison> poisons() {
  std::vector<Poison> p;
  // q[1, 1, 100, 3]: that row only. +inf there makes each visible score ±inf by the sign of
  // k[s][3]: any +inf score makes the row NaN; if all are -inf the row counts as fully masked.
  auto q_row = [](float value) {
    return [value](const Inputs& in, int64_t b, int64_t h, int64_t t) {
      if (b != 1 || h != 1 || t != 100) return Row::kClean;
      if (std::isnan(value)) return sees_any(in, b, t) ? Row::kAllNaN : Row::kZero;
      bool any = false, positive = false;
      for (int64_t s = 0; s < S; ++s)
        if (sees(in, b, t, s)) {
          any = true;
          positive = positive || (value > 0) == (in.k(b, 0, s, 3) > 0.0f);
        }
      return !any ? Row::kZero : positive ? Row::kAllNaN : Row::kZero;
    };
  };
  for (float value : {kNaN, kInf, -kInf})
    p.push_back({"q=" + std::to_string(value), [value](Inputs& in) { in.q(1, 1, 100, 3) = value; },
                 q_row(value)});
  // k[0, 0, 130, 2] = NaN: every row that sees key 130 turns NaN, and no other.
  p.push_back({"k=nan", [](Inputs& in) { in.k(0, 0, 130, 2) = kNaN; },
               [](const Inputs& in, int64_t b, int64_t, int64_t t) {
                 return b == 0 && sees(in, b, t, 130) ? Row::kAllNaN : Row::kClean;
               }});
  // k[0, 0, 100, 2] = +inf: scores ±inf by the sign of q[t][2]; rows with -inf lose that key.
  p.push_back({"k=inf", [](Inputs& in) { in.k(0, 0, 100, 2) = kInf; },
               [](const Inputs& in, int64_t b, int64_t h, int64_t t) {
                 if (b != 0 || !sees(in, b, t, 100)) return Row::kClean;
                 return in.q(b, h, t, 2) > 0.0f ? Row::kAllNaN : Row::kFree;
               }});
  // v[0, 0, 130, 1]: column 1 of every row that sees key 130.
  for (float value : {kNaN, kInf}) {
    Poison v{"v=" + std::to_string(value), [value](Inputs& in) { in.v(0, 0, 130, 1) = value; },
             [](const Inputs& in, int64_t b, int64_t, int64_t t) {
               return b == 0 && sees(in, b, t, 130) ? Row::kNonFiniteColumn : Row::kClean;
             }};
    v.column = 1;
    p.push_back(std::move(v));
  }
  // bias[0, 0, 60, 130] = NaN (broadcast over heads): row 60 of batch 0 if it sees key 130.
  p.push_back({"bias=nan",
               [](Inputs& in) {
                 if (in.bias.defined()) in.bias(0, 0, 60, 130) = kNaN;
               },
               [](const Inputs& in, int64_t b, int64_t, int64_t t) {
                 return in.bias.defined() && b == 0 && t == 60 && sees(in, b, t, 130) ? Row::kAllNaN
                                                                                      : Row::kClean;
               }});
  Poison dout{"dout=nan", [](Inputs& in) { in.dout(1, 0, 60, 0) = kNaN; },
              [](const Inputs&, int64_t, int64_t, int64_t) { return Row::kClean; }};
  dout.dout_row = true;
  p.push_back(std::move(dout));
  return p;
}

enum class Kind { kIsNaN, kPosInf, kNegInf, kFinite };
Kind kind(float x) {
  return std::isnan(x) ? Kind::kIsNaN
         : x == kInf   ? Kind::kPosInf
         : x == -kInf  ? Kind::kNegInf
                       : Kind::kFinite;
}
bool close(float a, float b, double tol) {
  const double x = a, y = b;
  return std::abs(x - y) <= tol * (1.0 + std::abs(y));
}

// Fused and reference agree element by element on NaN / ±inf / finite, finite values within tol.
void expect_same_kinds(const Tensor& fused, const Tensor& ref, const std::string& what) {
  if (!ref.defined()) return;
  int failures = 0;
  for (int64_t i = 0; i < ref.numel() && failures < 3; ++i) {
    const float f = fused.data()[i], r = ref.data()[i];
    if (kind(f) != kind(r) || (kind(r) == Kind::kFinite && !close(f, r, 5e-4))) {
      ADD_FAILURE() << what << " element " << i << ": fused " << f << ", reference " << r;
      ++failures;
    }
  }
}

// The rows of one run whose results may differ from the clean run's: the forward rows the poison
// touches, and the dO row it sits in.
struct Touched {
  std::vector<char> row;  // [b][h][t]
  bool at(int64_t b, int64_t h, int64_t t) const {
    return row[static_cast<size_t>((b * NH + h) * T + t)] != 0;
  }
};

void check_forward_prediction(const Poison& p, const Inputs& in, const Results& r,
                              const Results& clean, Touched& touched, const std::string& what) {
  touched.row.assign(static_cast<size_t>(B * NH * T), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const Row expect = p.row(in, b, h, t);
        const std::string at = what + " row (" + std::to_string(b) + ", " + std::to_string(h) +
                               ", " + std::to_string(t) + ")";
        touched.row[static_cast<size_t>((b * NH + h) * T + t)] =
            expect != Row::kClean || (p.dout_row && b == 1 && h == 0 && t == 60);
        for (int64_t c = 0; c < HSV; ++c) {
          const float o = r.out(b, h, t, c);
          switch (expect) {
            case Row::kClean:
              ASSERT_TRUE(close(o, clean.out(b, h, t, c), 1e-5)) << at << " changed: " << o;
              break;
            case Row::kAllNaN:
              ASSERT_TRUE(std::isnan(o)) << at << " should be NaN: " << o;
              break;
            case Row::kZero:
              ASSERT_EQ(o, 0.0f) << at << " should be 0";
              break;
            case Row::kNonFiniteColumn:
              if (c == p.column)
                ASSERT_FALSE(std::isfinite(o)) << at << " should be non-finite";
              else
                ASSERT_TRUE(close(o, clean.out(b, h, t, c), 1e-5)) << at << " changed: " << o;
              break;
            case Row::kFree:
              ASSERT_TRUE(std::isfinite(o)) << at << " should be finite";
              break;
          }
        }
        const float lse = r.lse(b, h, t);
        if (expect == Row::kAllNaN) {
          EXPECT_TRUE(std::isnan(lse)) << at << " lse " << lse;
        } else if (expect == Row::kZero) {
          EXPECT_EQ(lse, -kInf) << at << " lse " << lse;
        } else if (expect != Row::kFree) {
          EXPECT_TRUE(close(lse, clean.lse(b, h, t), 1e-5)) << at << " lse " << lse;
        }
        for (int64_t s = 0; s < S; ++s) {
          if (!sees(in, b, t, s)) {
            ASSERT_EQ(r.probs(b, h, t, s), 0.0f) << at << " hidden prob";
          }
        }
      }
}

// Gradients that no touched row reaches equal the clean run's (and so are finite).
void check_untouched_gradients(const Inputs& in, const Results& r, const Results& clean,
                               const Touched& touched, const std::string& what) {
  int failures = 0;
  auto expect_clean = [&](float x, float c, const std::string& where) {
    if (failures < 3 && !close(x, c, 1e-4)) {
      ADD_FAILURE() << what << " " << where << " leaked: " << x << " (clean " << c << ")";
      ++failures;
    }
  };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h)
      for (int64_t t = 0; t < T; ++t) {
        if (touched.at(b, h, t)) continue;
        for (int64_t c = 0; c < HS; ++c) expect_clean(r.dq(b, h, t, c), clean.dq(b, h, t, c), "dq");
        if (r.dbias.defined() && !touched.at(b, 1 - h, t))
          for (int64_t s = 0; s < S; ++s)
            expect_clean(r.dbias(b, 0, t, s), clean.dbias(b, 0, t, s), "dbias");
      }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s) {
      bool reached = false;
      for (int64_t h = 0; h < NH; ++h)
        for (int64_t t = 0; t < T; ++t)
          reached = reached || (touched.at(b, h, t) && sees(in, b, t, s));
      if (reached) continue;
      for (int64_t c = 0; c < HS; ++c) expect_clean(r.dk(b, 0, s, c), clean.dk(b, 0, s, c), "dk");
      for (int64_t c = 0; c < HSV; ++c) expect_clean(r.dv(b, 0, s, c), clean.dv(b, 0, s, c), "dv");
    }
}

TEST(AttentionNonFinite, PropagatesLikeIEEEWithinVisibleKeysAndNeverLeaksAcrossTheMask) {
  uint64_t seed = 900;
  for (const MaskCase& mc : mask_cases()) {
    const Inputs clean_in = clean_inputs(mc, seed++);
    const Results clean = run(clean_in, false);
    for (const Poison& p : poisons()) {
      if (p.name == "bias=nan" && !mc.bias) continue;
      Inputs in{Tensor::copy_of(clean_in.q.view()),
                Tensor::copy_of(clean_in.k.view()),
                Tensor::copy_of(clean_in.v.view()),
                mc.bias ? Tensor::copy_of(clean_in.bias.view()) : Tensor(),
                Tensor::copy_of(clean_in.dout.view()),
                clean_in.mask};
      p.apply(in);
      const std::string what = mc.name + " / " + p.name;
      const Results ref = run(in, true);
      // The backward in both of its forms (internal/attention_backward.h).
      for (const int64_t min_tasks : {int64_t{0}, std::numeric_limits<int64_t>::max()}) {
        const std::string form = what + (min_tasks == 0 ? " (fused pass)" : " (two passes)");
        const internal::ScopedFusedBackwardMinTasks scoped(min_tasks);
        const Results fused = run(in, false);
        expect_same_kinds(fused.out, ref.out, form + " out");
        expect_same_kinds(fused.lse, ref.lse, form + " lse");
        expect_same_kinds(fused.probs, ref.probs, form + " probs");
        expect_same_kinds(fused.dq, ref.dq, form + " dq");
        expect_same_kinds(fused.dk, ref.dk, form + " dk");
        expect_same_kinds(fused.dv, ref.dv, form + " dv");
        expect_same_kinds(fused.dbias, ref.dbias, form + " dbias");
        Touched touched;
        for (const Results* r : {&fused, &ref}) {
          check_forward_prediction(p, in, *r, clean, touched, form);
          check_untouched_gradients(in, *r, clean, touched, form);
        }
      }
    }
  }
}

}  // namespace
}  // namespace attn::testing
