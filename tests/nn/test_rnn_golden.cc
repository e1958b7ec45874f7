// SPDX-License-Identifier: MIT
// nn::LSTM and nn::GRU against torch.nn.LSTM / GRU (tests/golden/rnn, made by
// scripts/gen_rnn_golden.py): outputs, final states, input and state gradients and every parameter
// gradient. The expectations are float64 PyTorch results from the same float32 values, so the only
// error is attn's float32 arithmetic: reductions of <= 4·H + IN = 21 terms over T = 6 steps and two
// layers, well inside 1e-5 of each tensor's scale (the modules' bar).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "attn/attn.h"
#include "testing/golden_fixture.h"
#include "testing/testing.h"

namespace attn::nn {
namespace {

using attn::testing::all_close;
using attn::testing::golden_path;
using attn::testing::max_abs;

using Fixture = attn::testing::GoldenFixture;

::testing::AssertionResult close_to(ConstTensorView actual, ConstTensorView expected) {
  return all_close<float, float>(actual, expected, 1e-5 * std::max(1.0, max_abs<float>(expected)));
}

void check_case(const std::string& name) {
  SCOPED_TRACE(name);
  const Fixture f("rnn/" + name);
  const auto& c = f.config;
  RnnOptions o;
  o.input_size = c["input_size"];
  o.hidden_size = c["hidden_size"];
  o.num_layers = c["num_layers"];
  o.bidirectional = c["bidirectional"];
  o.batch_first = c["batch_first"];
  Rng rng(0);
  const bool lstm = c["kind"] == "lstm";
  std::unique_ptr<RNNBase> m;
  if (lstm)
    m = std::make_unique<LSTM>(o, rng);
  else
    m = std::make_unique<GRU>(o, rng);
  m->load_state_dict(f.params());  // strict: the names are PyTorch's
  std::vector<int64_t> lengths;
  if (!c["lengths"].is_null()) lengths = c["lengths"].get<std::vector<int64_t>>();
  Context ctx(ContextOptions{.num_threads = 2});
  RNNBase::Cache cache;
  const auto out =
      m->forward(f.at("in.x"), f.maybe("in.h0"), f.maybe("in.c0"), lengths, &cache, ctx);
  EXPECT_TRUE(close_to(out.output, f.at("out.y")));
  EXPECT_TRUE(close_to(out.h_n, f.at("out.h_n")));
  if (lstm) {
    EXPECT_TRUE(close_to(out.c_n, f.at("out.c_n")));
  }
  const auto g = m->backward(f.at("in.dout"), f.at("in.dh_n"), f.maybe("in.dc_n"), cache, ctx);
  EXPECT_TRUE(close_to(g.dx, f.at("grad.in.x")));
  if (f.has("grad.in.h0")) {
    EXPECT_TRUE(close_to(g.dh0, f.at("grad.in.h0")));
  }
  if (f.has("grad.in.c0")) {
    EXPECT_TRUE(close_to(g.dc0, f.at("grad.in.c0")));
  }
  for (auto& [pname, p] : m->named_parameters()) {
    SCOPED_TRACE(pname);
    EXPECT_TRUE(close_to(p->grad, f.at("grad.param." + pname)));
  }
}

TEST(RnnGolden, LstmMatchesTorch) {
  for (const char* name :
       {"lstm_l1", "lstm_l1_reverse_lengths_batch_first", "lstm_l2_bi_h0_batch_first",
        "lstm_l2_bi_h0_lengths", "lstm_l2_h0_lengths"})
    check_case(name);
}

TEST(RnnGolden, GruMatchesTorch) {
  for (const char* name : {"gru_l1", "gru_l1_reverse_lengths_batch_first",
                           "gru_l2_bi_h0_batch_first", "gru_l2_bi_h0_lengths", "gru_l2_h0_lengths"})
    check_case(name);
}

TEST(Rnn, ParameterNamesAndShapesArePyTorchs) {
  Rng rng(0);
  LSTM m({.input_size = 3, .hidden_size = 5, .num_layers = 2, .bidirectional = true}, rng);
  std::vector<std::string> names;
  for (auto& [n, p] : m.named_parameters()) names.push_back(n + p->value.shape().str());
  EXPECT_EQ(
      names,
      (std::vector<std::string>{
          "weight_ih_l0(20, 3)", "weight_hh_l0(20, 5)", "bias_ih_l0(20,)", "bias_hh_l0(20,)",
          "weight_ih_l0_reverse(20, 3)", "weight_hh_l0_reverse(20, 5)", "bias_ih_l0_reverse(20,)",
          "bias_hh_l0_reverse(20,)", "weight_ih_l1(20, 10)", "weight_hh_l1(20, 5)",
          "bias_ih_l1(20,)", "bias_hh_l1(20,)", "weight_ih_l1_reverse(20, 10)",
          "weight_hh_l1_reverse(20, 5)", "bias_ih_l1_reverse(20,)", "bias_hh_l1_reverse(20,)"}));
  for (auto& [n, p] : m.named_parameters())
    EXPECT_LE(max_abs<float>(p->value.view()), 1.0 / std::sqrt(5.0)) << n;  // U(±1/√H)
  GRU gru({.input_size = 3, .hidden_size = 5, .bias = false}, rng);
  EXPECT_EQ(gru.named_parameters().size(), 2u);
  EXPECT_EQ(gru.parameter("weight_hh_l0").value.shape(), (Shape{15, 5}));
}

TEST(Rnn, UnbatchedInputIsABatchOfOne) {
  Rng rng(1);
  GRU m({.input_size = 3, .hidden_size = 4, .num_layers = 2, .bidirectional = true}, rng);
  const Tensor x = attn::testing::random_tensor<float>(Shape{5, 3}, rng);
  Context ctx;
  const auto one = m.forward(x, {}, {}, {}, nullptr, ctx);
  const auto batch = m.forward(x.view().unsqueeze(1), {}, {}, {}, nullptr, ctx);
  EXPECT_EQ(one.output.shape(), (Shape{5, 8}));
  EXPECT_EQ(one.h_n.shape(), (Shape{4, 4}));
  EXPECT_TRUE((all_close<float, float>(one.output.view(), batch.output.view().select(1, 0), 0.0)));
}

TEST(Rnn, DropoutActsBetweenLayersInTrainingOnly) {
  Rng rng(2);
  LSTM m({.input_size = 3, .hidden_size = 6, .num_layers = 2, .dropout = 0.5}, rng, 7);
  const Tensor x = attn::testing::random_tensor<float>(Shape{4, 2, 3}, rng);
  Context ctx;
  RNNBase::Cache cache;
  const auto train = m.forward(x, {}, {}, {}, &cache, ctx);
  ASSERT_EQ(cache.dropout.size(), 1u);
  EXPECT_TRUE(cache.dropout[0].mask.defined());
  m.set_training(false);
  const auto eval1 = m.forward(x, {}, {}, {}, nullptr, ctx);
  LSTM plain({.input_size = 3, .hidden_size = 6, .num_layers = 2}, rng);
  std::map<std::string, Tensor> state;
  for (auto& [n, v] : m.state_dict()) state.emplace(n, Tensor::copy_of(v));
  plain.load_state_dict(state);
  plain.set_training(false);
  const auto eval2 = plain.forward(x, {}, {}, {}, nullptr, ctx);
  EXPECT_TRUE((all_close<float, float>(eval1.output.view(), eval2.output.view(), 0.0)));
  EXPECT_FALSE((all_close<float, float>(train.output.view(), eval1.output.view(), 1e-6)));
}

TEST(Rnn, RejectsBadInputWithShapes) {
  Rng rng(3);
  LSTM m({.input_size = 3, .hidden_size = 4, .num_layers = 2}, rng);
  Context ctx;
  const Tensor x(Shape{5, 2, 3}), wrong(Shape{5, 2, 7}), h0(Shape{1, 2, 4});
  ATTN_EXPECT_THROW_MSG(m.forward(wrong, {}, {}, {}, nullptr, ctx), ShapeError, "LSTM.forward",
                        "7 features", "(5, 2, 7)", "input_size is 3");
  ATTN_EXPECT_THROW_MSG(m.forward(x, h0, {}, {}, nullptr, ctx), ShapeError,
                        "h0 has shape (1, 2, 4)", "(2, 2, 4)");
  const std::vector<int64_t> too_long = {5, 6}, three = {1, 2, 3};
  ATTN_EXPECT_THROW_MSG(m.forward(x, {}, {}, too_long, nullptr, ctx), ValueError, "lengths[1] = 6",
                        "[1, T = 5]");
  ATTN_EXPECT_THROW_MSG(m.forward(x, {}, {}, three, nullptr, ctx), ShapeError,
                        "lengths has 3 values", "batch is 2");
  ATTN_EXPECT_THROW_MSG(m.forward(Tensor(Shape{3}), {}, {}, {}, nullptr, ctx), ShapeError,
                        "unbatched (T, IN)", "(3,)");
  GRU gru({.input_size = 3, .hidden_size = 4}, rng);
  ATTN_EXPECT_THROW_MSG(gru.forward(x, {}, Tensor(Shape{1, 2, 4}), {}, nullptr, ctx), ValueError,
                        "GRU.forward", "c0 is for LSTM only");
  RNNBase::Cache cache;
  m.forward(x, {}, {}, {}, &cache, ctx);
  ATTN_EXPECT_THROW_MSG(m.backward(Tensor(Shape{5, 2, 3}), {}, {}, cache, ctx), ShapeError,
                        "LSTM.backward", "doutput has shape (5, 2, 3)", "(5, 2, 4)");
  ATTN_EXPECT_THROW_MSG(LSTM({.input_size = 0, .hidden_size = 4}, rng), ValueError,
                        "input_size, hidden_size and num_layers must be >= 1");
}

}  // namespace
}  // namespace attn::nn
