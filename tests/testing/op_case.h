// SPDX-License-Identifier: MIT
// The op harness (in the spirit of ggml's test-backend-ops, at a fraction of its size): an op
// registers once, as an OpSpec (its fast float path, its double reference, their backwards and its
// tolerances), and every check runs over a list of OpCases (inputs plus a printable description):
//   check_forward    fast vs reference, on contiguous inputs and on strided, misaligned copies
//   check_backward   fast backward vs reference backward
//   check_gradients  reference backward vs central finite differences in double
//   check_threads    fast forward and backward on 1 and 3 threads: bitwise identical (the 3-thread
//                    run lowers the work threshold, so even small cases really run in parallel)
// Inputs are made in double and rounded to float values, so both paths see the same numbers and the
// difference is the fast path's arithmetic alone. Error messages are checked with
// ATTN_EXPECT_THROW_MSG next to each registration.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "testing/testing.h"

namespace attn::testing {

struct OpCase {
  std::string vars;  // what the case is, printed on failure: "rows=7 C=33 affine strided"
  std::vector<TensorD> inputs;  // an undefined tensor is an optional argument left out
};

// Zero tensors shaped like the given views (undefined where a view is): gradient buffers for
// backward.
template <typename T>
std::vector<BasicTensor<T>> zeros_like(std::initializer_list<BasicView<const T>> views) {
  std::vector<BasicTensor<T>> v;
  for (const auto& view : views)
    v.push_back(view.defined() ? BasicTensor<T>(view.shape()) : BasicTensor<T>());
  return v;
}

// A vector of tensors from move-only tensors: OpCase{"vars", tensors(x, w, TensorD())}.
template <typename... T>
std::vector<TensorD> tensors(T&&... t) {
  std::vector<TensorD> v;
  (v.push_back(std::move(t)), ...);
  return v;
}

struct OpSpec {
  std::string name;
  using Views = std::vector<ConstTensorView>;
  using ViewsD = std::vector<ConstTensorViewD>;
  // Outputs of the fast path and of the reference for the inputs (views may be strided).
  std::function<std::vector<Tensor>(const Views& in, const Context& ctx)> forward;
  std::function<std::vector<TensorD>(const ViewsD& in, const Context& ctx)> reference;
  // Gradients of every input (undefined: that input has none) from the forward's outputs and the
  // output gradients; dout[i] is undefined for outputs that are not differentiable (lse, mean,
  // rstd).
  std::function<std::vector<Tensor>(const Views& in, const Views& out, const Views& dout,
                                    const Context&)>
      backward;
  std::function<std::vector<TensorD>(const ViewsD& in, const ViewsD& out, const ViewsD& dout,
                                     const Context&)>
      reference_backward;
  std::vector<bool>
      differentiable_outputs;  // which outputs the loss Σ⟨out_i, G_i⟩ of gradient checks uses
  // Absolute tolerance of fast output i (or of the gradient of input i) against the reference's
  // value `expected`, derived from the case's inputs and that value's magnitude (each registration
  // states its error model).
  std::function<double(const OpCase&, size_t output, const TensorD& expected)> forward_tolerance;
  std::function<double(const OpCase&, size_t input, const TensorD& expected)> backward_tolerance;
};

namespace op_case_detail {

// A deep copy of the case (tensors are move-only), its values rounded to float if asked.
inline OpCase copy_case(const OpCase& c, bool round_to_float) {
  OpCase r{c.vars, {}};
  for (const TensorD& t : c.inputs) {
    r.inputs.push_back(t.defined() ? TensorD::copy_of(t.view()) : TensorD());
    if (round_to_float)
      for (double& x : r.inputs.back().values()) x = static_cast<double>(static_cast<float>(x));
  }
  return r;
}
inline OpCase rounded(const OpCase& c) { return copy_case(c, true); }

struct FloatInputs {
  std::vector<Tensor> contiguous;
  std::vector<Strided<float>> strided;
  OpSpec::Views views(bool use_strided) const {
    OpSpec::Views v;
    for (size_t i = 0; i < contiguous.size(); ++i)
      v.push_back(!contiguous[i].defined() ? ConstTensorView()
                  : use_strided            ? ConstTensorView(strided[i].view)
                                           : contiguous[i].view());
    return v;
  }
};

inline FloatInputs float_inputs(const OpCase& c) {
  FloatInputs f;
  for (const TensorD& t : c.inputs) {
    f.contiguous.push_back(t.defined() ? Tensor::copy_of(t.view()) : Tensor());
    f.strided.push_back(t.defined() ? strided_copy(f.contiguous.back()) : Strided<float>{});
  }
  return f;
}

inline OpSpec::ViewsD views_d(const std::vector<TensorD>& ts) {
  OpSpec::ViewsD v;
  for (const TensorD& t : ts) v.push_back(t.view());
  return v;
}
inline OpSpec::Views views_f(const std::vector<Tensor>& ts) {
  OpSpec::Views v;
  for (const Tensor& t : ts) v.push_back(t.view());
  return v;
}

// Random output gradients for the differentiable outputs (undefined for the others).
inline std::vector<TensorD> output_grads(const OpSpec& spec, const std::vector<TensorD>& outs,
                                         uint64_t seed) {
  Rng rng(seed);
  std::vector<TensorD> g;
  for (size_t i = 0; i < outs.size(); ++i)
    g.push_back(spec.differentiable_outputs.at(i) ? random_tensor<double>(outs[i].shape(), rng)
                                                  : TensorD());
  for (TensorD& t : g)
    for (double& x : t.values()) x = static_cast<double>(static_cast<float>(x));
  return g;
}

}  // namespace op_case_detail

// Same definedness, same size, same bits.
inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.defined() == b.defined() && a.numel() == b.numel() &&
         (a.numel() == 0 ||
          std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * sizeof(float)) == 0);
}

inline void check_forward(const OpSpec& spec, const std::vector<OpCase>& cases) {
  using namespace op_case_detail;
  Context ctx(ContextOptions{.num_threads = 2});
  for (const OpCase& raw : cases) {
    const OpCase c = rounded(raw);
    SCOPED_TRACE(spec.name + " forward " + c.vars);
    const auto want = spec.reference(views_d(c.inputs), ctx);
    const FloatInputs f = float_inputs(c);
    for (bool strided : {false, true}) {
      SCOPED_TRACE(strided ? "strided inputs" : "contiguous inputs");
      const auto got = spec.forward(f.views(strided), ctx);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].defined(), want[i].defined()) << "output " << i;
        if (!got[i].defined()) continue;  // an optional output not produced (running statistics)
        EXPECT_TRUE(all_close(got[i], want[i], spec.forward_tolerance(c, i, want[i]), 4 * kEpsF32))
            << "output " << i;
      }
    }
  }
}

inline void check_backward(const OpSpec& spec, const std::vector<OpCase>& cases) {
  using namespace op_case_detail;
  Context ctx(ContextOptions{.num_threads = 2});
  uint64_t seed = 1;
  for (const OpCase& raw : cases) {
    const OpCase c = rounded(raw);
    SCOPED_TRACE(spec.name + " backward " + c.vars);
    const auto out_d = spec.reference(views_d(c.inputs), ctx);
    const auto g_d = output_grads(spec, out_d, seed++);
    const auto want = spec.reference_backward(views_d(c.inputs), views_d(out_d), views_d(g_d), ctx);
    const FloatInputs f = float_inputs(c);
    std::vector<Tensor> g_f;
    for (const TensorD& g : g_d) g_f.push_back(g.defined() ? Tensor::copy_of(g.view()) : Tensor());
    for (bool strided : {false, true}) {
      SCOPED_TRACE(strided ? "strided inputs" : "contiguous inputs");
      const auto out_f = spec.forward(f.views(strided), ctx);
      const auto got = spec.backward(f.views(strided), views_f(out_f), views_f(g_f), ctx);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].defined(), want[i].defined()) << "gradient of input " << i;
        if (got[i].defined()) {
          EXPECT_TRUE(
              all_close(got[i], want[i], spec.backward_tolerance(c, i, want[i]), 4 * kEpsF32))
              << "gradient of input " << i;
        }
      }
    }
  }
}

// The reference's gradients against central differences of loss = Σ_i ⟨out_i, G_i⟩, all in double.
inline void check_gradients(const OpSpec& spec, const std::vector<OpCase>& cases,
                            double atol = 1e-8, double rtol = 1e-6) {
  using namespace op_case_detail;
  Context ctx;
  uint64_t seed = 1000;
  for (const OpCase& c0 : cases) {
    OpCase c = copy_case(c0, false);
    SCOPED_TRACE(spec.name + " finite differences " + c.vars);
    const auto out = spec.reference(views_d(c.inputs), ctx);
    const auto g = output_grads(spec, out, seed++);
    const auto grads = spec.reference_backward(views_d(c.inputs), views_d(out), views_d(g), ctx);
    auto loss = [&] {
      const auto o = spec.reference(views_d(c.inputs), ctx);
      double sum = 0.0;
      for (size_t i = 0; i < o.size(); ++i)
        if (g[i].defined()) sum += dot<double, double>(o[i].view(), g[i].view());
      return sum;
    };
    for (size_t i = 0; i < grads.size(); ++i)
      if (grads[i].defined()) {
        EXPECT_TRUE(all_close(grads[i], numeric_gradient(loss, c.inputs[i].view()), atol, rtol))
            << "input " << i;
      }
  }
}

inline void check_threads(const OpSpec& spec, const std::vector<OpCase>& cases) {
  using namespace op_case_detail;
  uint64_t seed = 2000;
  for (const OpCase& raw : cases) {
    const OpCase c = rounded(raw);
    SCOPED_TRACE(spec.name + " threads " + c.vars);
    const FloatInputs f = float_inputs(c);
    std::vector<Tensor> first;
    for (int threads : {1, 3}) {
      Context ctx(ContextOptions{.num_threads = threads});
      // Every op with more than one task really runs on 3 threads, however small the case.
      const internal::ScopedMinWorkPerThread all_parallel(
          threads > 1 ? 0.0 : internal::kMinWorkPerThread);
      std::vector<Tensor> results = spec.forward(f.views(false), ctx);
      if (spec.backward) {
        std::vector<TensorD> out_d;
        for (const Tensor& o : results)
          out_d.push_back(o.defined() ? TensorD::copy_of(o.view()) : TensorD());
        std::vector<Tensor> g_f;
        for (const TensorD& g : output_grads(spec, out_d, seed))
          g_f.push_back(g.defined() ? Tensor::copy_of(g.view()) : Tensor());
        for (Tensor& grad : spec.backward(f.views(false), views_f(results), views_f(g_f), ctx))
          results.push_back(std::move(grad));
      }
      if (first.empty()) {
        first = std::move(results);
        continue;
      }
      ASSERT_EQ(results.size(), first.size());
      for (size_t i = 0; i < results.size(); ++i)
        EXPECT_TRUE(bitwise_equal(results[i], first[i])) << "result " << i;
    }
    ++seed;
  }
}

}  // namespace attn::testing
