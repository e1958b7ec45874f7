// SPDX-License-Identifier: MIT
// Every module's forward output and input/parameter gradients against PyTorch (tests/golden/nn,
// made by scripts/gen_nn_golden.py). The expectations are float64 PyTorch results from the same
// float32 values, so the only error is attn's float32 arithmetic: for these sizes (reductions of <=
// 64 terms, a few layers) that stays below ~1e-6 relative to each tensor's scale; we allow 1e-5 of
// max|expected| (the bar).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "attn/attn.h"
#include "testing/testing.h"

namespace attn::nn {
namespace {

using attn::testing::all_close;
using attn::testing::golden_path;
using attn::testing::max_abs;

struct Case {
  io::SafetensorsFile file;
  nlohmann::json config;

  explicit Case(const std::string& name)
      : file(io::read_safetensors(golden_path("nn/" + name + ".safetensors"))) {
    config = nlohmann::json::parse(file.metadata.at("config"));
  }
  const Tensor& at(const std::string& name) const {
    const auto it = file.tensors.find(name);
    if (it == file.tensors.end()) throw std::runtime_error("fixture has no tensor " + name);
    return it->second;
  }
  std::map<std::string, Tensor> params() const {
    std::map<std::string, Tensor> out;
    for (const auto& [k, v] : file.tensors)
      if (k.rfind("param.", 0) == 0) out.emplace(k.substr(6), Tensor::copy_of(v.view()));
    return out;
  }
};

::testing::AssertionResult close_to(ConstTensorView actual, const Tensor& expected) {
  return all_close<float, float>(actual, expected.view(),
                                 1e-5 * std::max(1.0, max_abs<float>(expected.view())));
}

void expect_param_grads(Module& m, const Case& c) {
  for (auto& [name, p] : m.named_parameters()) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(close_to(p->grad.view(), c.at("grad.param." + name)));
  }
}

Context& ctx() {
  static Context c(ContextOptions{.num_threads = 2});
  return c;
}

TEST(ModulesGolden, Linear) {
  const Case c("linear");
  Rng rng(0);
  Linear m(7, 5, true, rng);
  m.load_state_dict(c.params());
  Linear::Cache cache;
  const Tensor y = m.forward(c.at("in.x"), &cache, ctx());
  EXPECT_TRUE(close_to(y.view(), c.at("out.y")));
  const Tensor dx = m.backward(c.at("in.dout"), cache, ctx());
  EXPECT_TRUE(close_to(dx.view(), c.at("grad.in.x")));
  expect_param_grads(m, c);
}

TEST(ModulesGolden, LayerNorm) {
  const Case c("layer_norm");
  LayerNorm m(6, 1e-5);
  m.load_state_dict(c.params());
  LayerNorm::Cache cache;
  EXPECT_TRUE(close_to(m.forward(c.at("in.x"), &cache, ctx()).view(), c.at("out.y")));
  EXPECT_TRUE(close_to(m.backward(c.at("in.dout"), cache, ctx()).view(), c.at("grad.in.x")));
  expect_param_grads(m, c);
}

TEST(ModulesGolden, ReluAndGelu) {
  for (const char* kind : {"relu", "gelu"}) {
    SCOPED_TRACE(kind);
    const Case c(kind);
    Activation m(parse_activation(kind));
    Activation::Cache cache;
    EXPECT_TRUE(close_to(m.forward(c.at("in.x"), &cache, ctx()).view(), c.at("out.y")));
    EXPECT_TRUE(close_to(m.backward(c.at("in.dout"), cache, ctx()).view(), c.at("grad.in.x")));
  }
}

TEST(ModulesGolden, MultiheadSelfAttentionWithPaddingAndAveragedWeights) {
  const Case c("mha_self");
  Rng rng(0);
  MultiheadAttention m(c.config["C"], c.config["NH"], true, rng);
  m.load_state_dict(c.params());
  AttentionOptions opts;
  opts.key_padding_mask = c.at("in.key_padding_mask");
  opts.need_weights = true;
  MultiheadAttention::Cache cache;
  Tensor weights;
  const ConstTensorView x = c.at("in.x");
  const Tensor y = m.forward(x, x, x, opts, &cache, ctx(), &weights);
  EXPECT_TRUE(cache.self);
  EXPECT_EQ(cache.mask.key_lengths,
            (std::vector<int64_t>{5, 3}));  // suffix padding became key lengths
  EXPECT_TRUE(close_to(y.view(), c.at("out.y")));
  EXPECT_TRUE(close_to(weights.view(), c.at("out.weights")));
  const auto g = m.backward(c.at("in.dout"), cache, ctx());
  EXPECT_TRUE(close_to(g.dquery.view(), c.at("grad.in.x")));
  expect_param_grads(m, c);
}

TEST(ModulesGolden, MultiheadCrossAttentionWithDenseMasksAndPerHeadWeights) {
  const Case c("mha_cross");
  Rng rng(0);
  MultiheadAttention m(c.config["C"], c.config["NH"], true, rng);
  m.load_state_dict(c.params());
  AttentionOptions opts;
  opts.key_padding_mask = c.at("in.key_padding_mask");
  opts.attn_mask = c.at("in.attn_mask");
  opts.need_weights = true;
  opts.average_attn_weights = false;
  MultiheadAttention::Cache cache;
  Tensor weights;
  const Tensor y =
      m.forward(c.at("in.query"), c.at("in.key"), c.at("in.value"), opts, &cache, ctx(), &weights);
  EXPECT_FALSE(cache.self);
  EXPECT_TRUE(cache.dense_bias.defined());  // the padding pattern is not a suffix
  EXPECT_TRUE(close_to(y.view(), c.at("out.y")));
  EXPECT_TRUE(close_to(weights.view(), c.at("out.weights")));
  const auto g = m.backward(c.at("in.dout"), cache, ctx());
  EXPECT_TRUE(close_to(g.dquery.view(), c.at("grad.in.query")));
  EXPECT_TRUE(close_to(g.dkey.view(), c.at("grad.in.key")));
  EXPECT_TRUE(close_to(g.dvalue.view(), c.at("grad.in.value")));
  expect_param_grads(m, c);
}

EncoderLayerConfig layer_config(const nlohmann::json& j) {
  EncoderLayerConfig cfg;
  cfg.d_model = j["d_model"];
  cfg.nhead = j["nhead"];
  cfg.dim_feedforward = j["dim_feedforward"];
  cfg.activation = parse_activation(j["activation"]);
  cfg.norm_first = j["norm_first"];
  cfg.layer_norm_eps = j["layer_norm_eps"];
  cfg.dropout = 0.0;
  return cfg;
}

// Forward, input gradient and parameter gradients of an encoder layer or stack on a padded fixture.
template <typename Encoder>
void expect_encoder_matches(Encoder& m, const Case& c) {
  AttentionOptions opts;
  opts.key_padding_mask = c.at("in.key_padding_mask");
  typename Encoder::Cache cache;
  EXPECT_TRUE(close_to(m.forward(c.at("in.x"), opts, &cache, ctx()).view(), c.at("out.y")));
  EXPECT_TRUE(close_to(m.backward(c.at("in.dout"), cache, ctx()).view(), c.at("grad.in.x")));
  expect_param_grads(m, c);
}

TEST(ModulesGolden, TransformerEncoderLayerBothNormPlacements) {
  for (const char* name : {"encoder_layer_post_relu", "encoder_layer_pre_gelu"}) {
    SCOPED_TRACE(name);
    const Case c(name);
    Rng rng(0);
    TransformerEncoderLayer m(layer_config(c.config), rng);
    m.load_state_dict(c.params());
    expect_encoder_matches(m, c);
  }
}

TEST(ModulesGolden, TransformerEncoderStackWithFinalNorm) {
  const Case c("encoder");
  Rng rng(0);
  TransformerEncoder m(layer_config(c.config), c.config["num_layers"], c.config["final_norm"], rng);
  const auto report = m.load_state_dict(c.params());
  EXPECT_TRUE(report.missing_keys.empty());
  EXPECT_TRUE(report.unexpected_keys.empty());
  expect_encoder_matches(m, c);
}

TEST(ModulesGolden, StateDictNamesMatchPyTorch) {
  const Case c("encoder");
  Rng rng(0);
  TransformerEncoder m(layer_config(c.config), 2, true, rng);
  std::vector<std::string> ours, theirs;
  for (const auto& [name, view] : m.state_dict()) ours.push_back(name);
  for (const auto& [name, t] : c.params()) theirs.push_back(name);
  std::sort(ours.begin(), ours.end());
  EXPECT_EQ(ours, theirs);
}

// Stacks of layers check their parameters and gradients against the memory budget before they
// allocate (each tensor alone passed, so 10^5 layers allocated until the machine ran out): a budget
// of exactly 8 bytes a parameter fits, one byte less does not, so the count is exact.
TEST(ModuleStacks, RefuseParametersAboveTheMemoryBudget) {
  const int64_t saved = memory_budget_bytes();
  Rng rng(0);
  EncoderLayerConfig layer;
  layer.d_model = 16, layer.nhead = 2, layer.dim_feedforward = 32;
  RnnOptions lstm;
  lstm.input_size = 5, lstm.hidden_size = 4, lstm.num_layers = 2, lstm.bidirectional = true;
  try {
    set_memory_budget_bytes(8 * 3 * 2224);  // 3 layers of 4·16² + 2·16·32 + 9·16 + 32
    EXPECT_EQ(TransformerEncoder(layer, 3, false, rng).num_parameters(), 3 * 2224);
    set_memory_budget_bytes(8 * 3 * 2224 - 1);
    ATTN_EXPECT_THROW_MSG(TransformerEncoder(layer, 3, false, rng), ValueError,
                          "TransformerEncoder", "6.67e+03 parameters with their gradients",
                          "memory budget");
    set_memory_budget_bytes(8 * 800);  // 2 directions · (4·4·(5 + 4 + 2) + 4·4·(8 + 4 + 2))
    EXPECT_EQ(LSTM(lstm, rng).num_parameters(), 800);
    set_memory_budget_bytes(8 * 800 - 1);
    ATTN_EXPECT_THROW_MSG(LSTM(lstm, rng), ValueError, "LSTM", "800 parameters");
  } catch (...) {
    set_memory_budget_bytes(saved);
    throw;
  }
  set_memory_budget_bytes(saved);
}

TEST(ModulesGolden, T5BucketsMatchHuggingFace) {
  const auto f = io::read_safetensors(golden_path("nn/t5_buckets.safetensors"));
  const Tensor& rel = f.tensors.at("relative_position");
  struct Variant {
    const char* name;
    bool bidirectional;
    int64_t buckets, max_distance;
  };
  for (const auto& v :
       {Variant{"bidirectional_32_128", true, 32, 128}, Variant{"causal_32_128", false, 32, 128},
        Variant{"bidirectional_16_64", true, 16, 64}}) {
    const Tensor& expected = f.tensors.at(v.name);
    int mismatches = 0;
    for (int64_t i = 0; i < rel.numel(); ++i) {
      const auto r = static_cast<int64_t>(rel.data()[i]);
      mismatches +=
          ops::t5_relative_position_bucket(r, v.bidirectional, v.buckets, v.max_distance) !=
          static_cast<int64_t>(expected.data()[i]);
    }
    EXPECT_EQ(mismatches, 0) << v.name;
  }
}

}  // namespace
}  // namespace attn::nn
