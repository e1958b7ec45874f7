// SPDX-License-Identifier: MIT
// LSTM and GRU layers through the op harness: the fast path (input GEMM, per-step recurrent GEMM
// on fixed unit blocks, Highway gate rows) against the double reference on odd sizes, strided
// views, one and two directions, lengths, optional biases and initial states; the reference against
// finite differences; 1 vs 3 threads bitwise; and the error messages.
#include <array>

#include "ops/op_specs.h"

namespace attn::testing {
namespace {

using ops::RnnCell;

// The layer as the harness sees it. Inputs: x (T, B, IN), then per direction w_ih, w_hh, b_ih,
// b_hh, h0, c0 (undefined where left out). Outputs per direction: y, h_n and, for LSTM, c_n.
struct RnnCaseShape {
  RnnCell cell;
  int dirs;                      // 1 or 2
  bool reverse_single;           // with dirs == 1: the direction walks backwards
  std::vector<int64_t> lengths;  // empty: all T
};
constexpr size_t kPerDir = 6;

template <typename T>
std::vector<ops::BasicRnnDirection<T>> directions(const RnnCaseShape& s,
                                                  const std::vector<BasicView<const T>>& in,
                                                  std::vector<BasicTensor<T>>& out) {
  const int64_t T_ = in[0].dim(0), B = in[0].dim(1), H = in[2].dim(1);
  const bool lstm = s.cell == RnnCell::kLSTM;
  std::vector<ops::BasicRnnDirection<T>> dirs;
  for (int d = 0; d < s.dirs; ++d) {
    out.emplace_back(Shape{T_, B, H});
    out.emplace_back(Shape{B, H});
    if (lstm) out.emplace_back(Shape{B, H});
  }
  const size_t per_out = lstm ? 3 : 2;
  for (int d = 0; d < s.dirs; ++d) {
    const size_t o = 1 + kPerDir * static_cast<size_t>(d), r = per_out * static_cast<size_t>(d);
    ops::BasicRnnDirection<T> p{in[o],
                                in[o + 1],
                                in[o + 2],
                                in[o + 3],
                                in[o + 4],
                                in[o + 5],
                                s.dirs == 2 ? d == 1 : s.reverse_single,
                                out[r].view(),
                                out[r + 1].view(),
                                lstm ? out[r + 2].view() : BasicView<T>()};
    dirs.push_back(p);
  }
  return dirs;
}

template <typename T>
std::vector<ops::BasicRnnDirectionGrad<T>> direction_grads(
    const RnnCaseShape& s, const std::vector<BasicView<const T>>& in,
    const std::vector<BasicView<const T>>& g, std::vector<BasicTensor<T>>& d) {
  const bool lstm = s.cell == RnnCell::kLSTM;
  d.emplace_back(in[0].shape());  // dx
  for (size_t i = 1; i < in.size(); ++i)
    d.push_back(in[i].defined() ? BasicTensor<T>(in[i].shape()) : BasicTensor<T>());
  std::vector<ops::BasicRnnDirectionGrad<T>> grads;
  const size_t per_out = lstm ? 3 : 2;
  for (int k = 0; k < s.dirs; ++k) {
    const size_t o = 1 + kPerDir * static_cast<size_t>(k), r = per_out * static_cast<size_t>(k);
    grads.push_back({g[r], g[r + 1], lstm ? g[r + 2] : BasicView<const T>(), d[o].view(),
                     d[o + 1].view(), d[o + 2].view(), d[o + 3].view(), d[o + 4].view(),
                     d[o + 5].view()});
  }
  return grads;
}

OpSpec rnn_spec(const RnnCaseShape& s) {
  OpSpec spec;
  spec.name = std::string(ops::rnn_cell_name(s.cell)) + (s.dirs == 2 ? " bidirectional" : "") +
              (s.reverse_single ? " reverse" : "") + (s.lengths.empty() ? "" : " lengths");
  spec.forward = [s](const OpSpec::Views& in, const Context& ctx) {
    std::vector<Tensor> out;
    const auto dirs = directions<float>(s, in, out);
    ops::rnn_forward(s.cell, in[0], s.lengths, dirs, nullptr, ctx);
    return out;
  };
  spec.reference = [s](const OpSpec::ViewsD& in, const Context& ctx) {
    std::vector<TensorD> out;
    const auto dirs = directions<double>(s, in, out);
    ops::reference::rnn_forward(s.cell, in[0], s.lengths, dirs, ctx);
    return out;
  };
  spec.backward = [s](const OpSpec::Views& in, const OpSpec::Views&, const OpSpec::Views& g,
                      const Context& ctx) {
    std::vector<Tensor> out, d;
    const auto dirs = directions<float>(s, in, out);
    std::vector<ops::RnnSaved> saved(dirs.size());
    ops::rnn_forward(s.cell, in[0], s.lengths, dirs, saved.data(), ctx);
    const auto grads = direction_grads<float>(s, in, g, d);
    ops::rnn_backward(s.cell, in[0], s.lengths, dirs, saved.data(), grads, d[0].view(), ctx);
    return d;
  };
  spec.reference_backward = [s](const OpSpec::ViewsD& in, const OpSpec::ViewsD&,
                                const OpSpec::ViewsD& g, const Context& ctx) {
    std::vector<TensorD> out, d;
    const auto dirs = directions<double>(s, in, out);
    const auto grads = direction_grads<double>(s, in, g, d);
    ops::reference::rnn_backward(s.cell, in[0], s.lengths, dirs, grads, d[0].view(), ctx);
    return d;
  };
  spec.differentiable_outputs.assign(
      static_cast<size_t>(s.dirs) * (s.cell == RnnCell::kLSTM ? 3 : 2), true);
  // Error model. A gate's pre-activation sums K = IN + H + 2 float products (≤ K·eps·Σ|terms|),
  // the Highway tanh adds ≤ 4 ulp, and σ, tanh have slope ≤ 1. With weights ~ U(±1/√H) (PyTorch's
  // initialisation) the recurrence contracts, so an error made at one step shrinks at the next and
  // the bound of one step holds for the sequence: 2K·eps·(max|x|·max|w| + max|w| + 2·max|b| + 1).
  // Gradients pass back through (G·H + IN)-term products scaled by |G| ≤ kMaxGrad. (Measured: the
  // worst errors of these cases sit about 100x below the bound: rounding errors add up like √K.)
  auto scale = [](const OpCase& c) {
    double w = 0.0, b = 0.0;
    for (size_t i = 1; i < c.inputs.size(); ++i) {
      const size_t slot = (i - 1) % kPerDir;
      if (slot < 2)
        w = std::max(w, max_abs_of(c.inputs[i]));
      else if (slot < 4)
        b = std::max(b, max_abs_of(c.inputs[i]));
    }
    return std::max(1.0, max_abs_of(c.inputs[0])) * w + w + 2 * b + 1.0;
  };
  spec.forward_tolerance = [scale](const OpCase& c, size_t, const TensorD&) {
    const double K = static_cast<double>(c.inputs[0].dim(2) + c.inputs[2].dim(1) + 2);
    return 2 * K * kEpsF32 * scale(c);
  };
  spec.backward_tolerance = [scale](const OpCase& c, size_t, const TensorD& expected) {
    const double K = static_cast<double>(c.inputs[0].dim(2) + 4 * c.inputs[2].dim(1) + 2);
    return 2 * K * kEpsF32 * kMaxGrad * scale(c) * std::max(1.0, max_abs_of(expected));
  };
  return spec;
}

struct Size {
  int64_t T, B, IN, H;
};

std::vector<OpCase> rnn_cases(const RnnCaseShape& s, const std::vector<Size>& sizes,
                              uint64_t seed) {
  std::vector<OpCase> cases;
  for (const Size& z : sizes)
    for (int variant = 0; variant < 2; ++variant) {
      // variant 0: biases and initial states; variant 1: neither.
      Rng rng(seed++);
      const int64_t G = ops::rnn_gates(s.cell);
      const double w = 1.0 / std::sqrt(static_cast<double>(z.H));
      std::vector<TensorD> in;
      in.push_back(random_tensor<double>(Shape{z.T, z.B, z.IN}, rng));
      for (int d = 0; d < s.dirs; ++d) {
        in.push_back(random_tensor<double>(Shape{G * z.H, z.IN}, rng, w));
        in.push_back(random_tensor<double>(Shape{G * z.H, z.H}, rng, w));
        for (int k = 0; k < 2; ++k)
          in.push_back(variant == 0 ? random_tensor<double>(Shape{G * z.H}, rng, w) : TensorD());
        in.push_back(variant == 0 ? random_tensor<double>(Shape{z.B, z.H}, rng) : TensorD());
        in.push_back(variant == 0 && s.cell == RnnCell::kLSTM
                         ? random_tensor<double>(Shape{z.B, z.H}, rng)
                         : TensorD());
      }
      cases.push_back({"T=" + std::to_string(z.T) + " B=" + std::to_string(z.B) +
                           " IN=" + std::to_string(z.IN) + " H=" + std::to_string(z.H) +
                           (variant == 0 ? " bias h0" : ""),
                       std::move(in)});
    }
  return cases;
}

// Every layout the layer has: both cells, one direction each way, both directions, with lengths.
std::vector<RnnCaseShape> shapes(int64_t B) {
  std::vector<int64_t> lengths;
  for (int64_t b = 0; b < B; ++b) lengths.push_back(b % 2 == 0 ? 2 + b : 5);  // T = 5 or more
  std::vector<RnnCaseShape> v;
  for (RnnCell cell : {RnnCell::kLSTM, RnnCell::kGRU}) {
    v.push_back({cell, 1, false, {}});
    v.push_back({cell, 1, true, lengths});
    v.push_back({cell, 2, false, {}});
    v.push_back({cell, 2, false, lengths});
  }
  return v;
}

// Sizes whose H crosses the fast path's 64-unit blocks and SIMD widths; B = 3 everywhere so that
// the lengths (2, 5, 4) apply (T >= 5).
const std::vector<Size> kSizes = {{5, 3, 1, 1}, {6, 3, 7, 5}, {5, 3, 9, 67}, {7, 3, 4, 130}};
const std::vector<Size> kTiny = {{5, 3, 2, 3}};

TEST(Rnn, FastMatchesReferenceOnOddSizesAndStridedViews) {
  uint64_t seed = 1;
  for (const auto& s : shapes(3)) {
    const OpSpec spec = rnn_spec(s);
    check_forward(spec, rnn_cases(s, kSizes, seed));
    check_backward(spec, rnn_cases(s, kSizes, seed));
    seed += 100;
  }
}

TEST(Rnn, ReferenceBackwardMatchesFiniteDifferences) {
  uint64_t seed = 5000;
  for (const auto& s : shapes(3)) check_gradients(rnn_spec(s), rnn_cases(s, kTiny, seed++));
}

TEST(Rnn, SameResultForOneAndThreeThreads) {
  uint64_t seed = 9000;
  for (const auto& s : shapes(3))
    check_threads(rnn_spec(s), rnn_cases(s, {{6, 3, 5, 67}, {5, 3, 3, 130}}, seed++));
}

// The gate rows and the panel GEMM are compiled per SIMD target: every target this machine runs
// (AVX2 and below on an AVX-512 machine) matches the reference, forward and backward.
TEST(Rnn, EveryRunnableSimdTargetMatchesTheReference) {
  uint64_t seed = 7000;
  for (const std::string& target : ops::available_simd_targets()) {
    SCOPED_TRACE(target);
    ops::set_simd_target(target);
    for (const auto& s :
         {RnnCaseShape{RnnCell::kLSTM, 2, false, {}}, RnnCaseShape{RnnCell::kGRU, 1, false, {}}}) {
      const auto cases = rnn_cases(s, {{5, 5, 3, 67}}, seed++);
      check_forward(rnn_spec(s), cases);
      check_backward(rnn_spec(s), cases);
    }
  }
  ops::set_simd_target("");
}

// PyTorch's packed-sequence semantics, spelled out: zeros past a sequence's end, the final state
// at its last valid step, and a reverse direction that starts there.
TEST(Rnn, LengthsActLikeTruncatedSequences) {
  Context ctx;
  Rng rng(3);
  const int64_t T = 6, IN = 4, H = 5, G = 4;
  const Tensor x = random_tensor<float>(Shape{T, 1, IN}, rng);
  const Tensor w_ih = random_tensor<float>(Shape{G * H, IN}, rng, 0.4),
               w_hh = random_tensor<float>(Shape{G * H, H}, rng, 0.4);
  for (bool reverse : {false, true}) {
    SCOPED_TRACE(reverse ? "reverse" : "forward");
    Tensor y(Shape{T, 1, H}), h(Shape{1, H}), yt(Shape{3, 1, H}), ht(Shape{1, H});
    const std::vector<int64_t> three = {3};
    const ops::RnnDirection full{w_ih, w_hh, {}, {}, {}, {}, reverse, y, h, {}};
    ops::rnn_forward(RnnCell::kLSTM, x, three, {&full, 1}, nullptr, ctx);
    const ops::RnnDirection cut{w_ih, w_hh, {}, {}, {}, {}, reverse, yt, ht, {}};
    ops::rnn_forward(RnnCell::kLSTM, x.view().slice(0, 0, 3), {}, {&cut, 1}, nullptr, ctx);
    EXPECT_TRUE((all_close<float, float>(y.view().slice(0, 0, 3), yt.view(), 0.0)));
    EXPECT_EQ(max_abs<float>(y.view().slice(0, 3, T)), 0.0);
    EXPECT_TRUE((all_close<float, float>(h.view(), ht.view(), 0.0)));
  }
}

TEST(Rnn, RejectsBadArguments) {
  Context ctx;
  const int64_t T = 4, B = 2, IN = 3, H = 5;
  Tensor x(Shape{T, B, IN}), w_ih(Shape{4 * H, IN}), w_hh(Shape{4 * H, H}), y(Shape{T, B, H});
  Tensor bad_w(Shape{4 * H, IN + 1}), h0(Shape{B + 1, H}), gru_w(Shape{3 * H, IN});
  auto run = [&](const ops::RnnDirection& p, std::span<const int64_t> lengths = {},
                 RnnCell cell = RnnCell::kLSTM) {
    ops::rnn_forward(cell, x, lengths, {&p, 1}, nullptr, ctx);
  };
  ATTN_EXPECT_THROW_MSG(run({bad_w, w_hh, {}, {}, {}, {}, false, y, {}, {}}), ShapeError,
                        "rnn_forward", "w_ih has shape (20, 4)", "(20, 3)", "IN");
  ATTN_EXPECT_THROW_MSG(run({gru_w, w_hh, {}, {}, {}, {}, false, y, {}, {}}, {}, RnnCell::kGRU),
                        ShapeError, "w_hh has shape (20, 5)", "3·H for GRU");
  ATTN_EXPECT_THROW_MSG(run({w_ih, w_hh, {}, {}, h0, {}, false, y, {}, {}}), ShapeError,
                        "h0 has shape (3, 5)", "(2, 5)");
  const std::vector<int64_t> too_long = {4, 5}, zero = {0, 2}, short_list = {4};
  ATTN_EXPECT_THROW_MSG(run({w_ih, w_hh, {}, {}, {}, {}, false, y, {}, {}}, too_long), ValueError,
                        "lengths[1] = 5", "[1, T = 4]");
  ATTN_EXPECT_THROW_MSG(run({w_ih, w_hh, {}, {}, {}, {}, false, y, {}, {}}, zero), ValueError,
                        "lengths[0] = 0");
  ATTN_EXPECT_THROW_MSG(run({w_ih, w_hh, {}, {}, {}, {}, false, y, {}, {}}, short_list), ShapeError,
                        "lengths has 1 values", "batch 2");
  ATTN_EXPECT_THROW_MSG(run({w_ih, w_hh, {}, {}, {}, {}, false, x, {}, {}}), ShapeError,
                        "y has shape (4, 2, 3)", "(4, 2, 5)");
  Tensor g3(Shape{3 * H, IN}), g3h(Shape{3 * H, H}), c(Shape{B, H}), yg(Shape{T, B, H});
  ATTN_EXPECT_THROW_MSG(run({g3, g3h, {}, {}, {}, c, false, yg, {}, {}}, {}, RnnCell::kGRU),
                        ValueError, "c0 and c_n are for LSTM only");
  const ops::RnnDirection p{w_ih, w_hh, {}, {}, {}, {}, false, y, {}, {}};
  ATTN_EXPECT_THROW_MSG(ops::rnn_backward(RnnCell::kLSTM, x, {}, {&p, 1}, nullptr, {}, {}, ctx),
                        ValueError, "one gradient entry per direction");
  const ops::RnnDirectionGrad g{};
  ATTN_EXPECT_THROW_MSG(
      ops::rnn_backward(RnnCell::kLSTM, x, {}, {&p, 1}, nullptr, {&g, 1}, {}, ctx), ValueError,
      "needs what rnn_forward saved");
}

}  // namespace
}  // namespace attn::testing
