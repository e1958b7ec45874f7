// SPDX-License-Identifier: MIT
// The reference attention and layer norm against PyTorch fixtures (tests/golden, made by
// scripts/gen_golden.py with Debian's python3-torch, in float64 from float32 inputs).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "testing/testing.h"

namespace attn::testing {
namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << path;
  return nlohmann::json::parse(f);
}

std::vector<std::string> attention_cases() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(golden_path("attention")))
    names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

ops::AttentionMask mask_from_meta(const nlohmann::json& meta) {
  const auto& m = meta["mask"];
  ops::AttentionMask mask;
  mask.causal = m.value("causal", false);
  mask.query_offset = m.value("query_offset", 0);
  mask.window_left = m.value("window_left", -1);
  mask.window_right = m.value("window_right", -1);
  mask.dilation = m.value("dilation", 1);
  mask.chunk_size = m.value("chunk_size", 0);
  mask.num_left_chunks = m.value("num_left_chunks", -1);
  if (m.contains("key_lengths")) mask.key_lengths = m["key_lengths"].get<std::vector<int64_t>>();
  if (m.value("alibi", false))
    mask.alibi_slopes = ops::alibi_slopes(meta["shape"]["NH"].get<int64_t>());
  return mask;
}

TEST(AttentionGolden, ThereAreFixtures) { EXPECT_GE(attention_cases().size(), 7u); }

TEST(AttentionGolden, ReferenceMatchesPyTorchForwardAndBackward) {
  for (const auto& name : attention_cases()) {
    SCOPED_TRACE(name);
    const std::string dir = "attention/" + name + "/";
    const auto meta = read_json(golden_path(dir + "meta.json"));
    auto load = [&](const std::string& key) {
      return io::read_npy(golden_path(dir + key + ".npy"));
    };
    const Tensor q = load("q").to_float(), k = load("k").to_float(), v = load("v").to_float();
    const Tensor dout = load("dout").to_float();
    ops::AttentionMask mask = mask_from_meta(meta);
    // Our slopes must be the ones the fixture used (computed independently in Python).
    if (!meta["alibi_slopes"].is_null()) {
      const auto slopes = meta["alibi_slopes"].get<std::vector<double>>();
      for (size_t h = 0; h < slopes.size(); ++h)
        EXPECT_NEAR(mask.alibi_slopes[h], slopes[h], 1e-7 * slopes[h]);
    }
    Tensor bias;
    if (meta["has_bias"].get<bool>()) bias = load("bias").to_float();
    // The returning forms (ops::reference::attention / attention_grad) with an explicit scale.
    ops::AttentionOptions options;
    options.mask = mask, options.scale = meta["scale"].get<double>();
    Context ctx;
    const auto fwd = ops::reference::attention(q, k, v, options, bias, ctx);
    const Tensor &out = fwd.out, &lse = fwd.lse;
    EXPECT_EQ(out.shape(), load("out").shape);
    const auto grads = ops::reference::attention_grad(q, k, v, out, lse, dout, options, bias, ctx);
    const Tensor &dq = grads.dq, &dk = grads.dk, &dv = grads.dv, &dbias = grads.dbias;
    EXPECT_EQ(dbias.defined(), bias.defined());
    // The bar: 1e-6. Both sides compute in double from identical float32 inputs; ours is
    // then rounded to float32 (relative 6e-8).
    EXPECT_TRUE(all_close(out, load("out").to_double(), 1e-6, 1e-6));
    EXPECT_TRUE(all_close(lse, load("lse").to_double(), 1e-6, 1e-6));
    EXPECT_TRUE(all_close(dq, load("dq").to_double(), 1e-6, 1e-6));
    EXPECT_TRUE(all_close(dk, load("dk").to_double(), 1e-6, 1e-6));
    EXPECT_TRUE(all_close(dv, load("dv").to_double(), 1e-6, 1e-6));
    if (bias.defined()) {
      EXPECT_TRUE(all_close(dbias, load("dbias").to_double(), 1e-6, 1e-6));
    }
  }
}

TEST(LayerNormGolden, ReferenceMatchesPyTorch) {
  auto load = [](const std::string& key) {
    return io::read_npy(golden_path("layer_norm/" + key + ".npy"));
  };
  const auto meta = read_json(golden_path("layer_norm/meta.json"));
  const Tensor x = load("x").to_float(), w = load("weight").to_float(), b = load("bias").to_float();
  const Tensor dout = load("dout").to_float();
  Tensor out(x.shape()), mean(Shape{3, 5}), rstd(Shape{3, 5});
  Context ctx;
  ops::reference::layer_norm_forward(x, w, b, meta["eps"].get<double>(), out, mean, rstd, ctx);
  Tensor dx(x.shape()), dw(w.shape()), db(b.shape());
  ops::reference::layer_norm_backward(x, w, mean, rstd, dout, dx, dw, db, ctx);
  EXPECT_TRUE(all_close(out, load("out").to_double(), 1e-6, 1e-6));
  EXPECT_TRUE(
      all_close(dx, load("dx").to_double(), 1e-5, 1e-6));  // mean and rstd are stored as float32
  EXPECT_TRUE(all_close(dw, load("dweight").to_double(), 1e-6, 1e-6));
  EXPECT_TRUE(all_close(db, load("dbias").to_double(), 1e-6, 1e-6));
}

}  // namespace
}  // namespace attn::testing
