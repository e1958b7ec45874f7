// SPDX-License-Identifier: MIT
// The speech encoder: the subsampling's receptive field, streaming == offline over chunk sizes,
// left chunks, piece sizes and stream lengths that stop mid-chunk, bounded caches, gradients
// against central differences, and the errors. Streaming and offline differ only in the order the
// kernel visits keys (a ring vs positions), so they agree to float rounding: 1e-5 on outputs of
// O(1) (the final LayerNorm), while a wrong cache (a missing or extra chunk) moves them by O(0.1).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "attn/attn.h"
#include "testing/testing.h"

namespace attn::nn {
namespace {

using attn::testing::random_tensor;

Context& ctx() {
  static Context c(ContextOptions{.num_threads = 2});
  return c;
}

SpeechEncoderConfig small_config(bool norm_first) {
  SpeechEncoderConfig c;
  c.input_dim = 13;
  c.num_layers = 2;
  c.layer.d_model = 16;
  c.layer.nhead = 4;
  c.layer.dim_feedforward = 24;
  c.layer.norm_first = norm_first;
  c.layer.dropout = 0.0;
  return c;
}

double max_abs_diff(ConstTensorView a, ConstTensorView b) {
  EXPECT_EQ(a.shape(), b.shape());
  double worst = 0.0;
  for (int64_t i = 0; i < a.dim(0); ++i)
    for (int64_t j = 0; j < a.dim(1); ++j)
      worst =
          std::max(worst, std::abs(static_cast<double>(a(i, j)) - static_cast<double>(b(i, j))));
  return worst;
}

// Streams `feats` (T, F) in pieces of `piece` frames and returns every emitted frame (T', C).
Tensor stream(SpeechEncoder& model, const Tensor& feats, int64_t chunk, int64_t left, int64_t piece,
              StreamingEncoder* reuse = nullptr) {
  StreamingEncoder local(model, chunk, left, ctx());
  StreamingEncoder& s = reuse ? *reuse : local;
  std::vector<float> out;
  const int64_t T = feats.dim(0), F = feats.dim(1);
  for (int64_t t = 0; t < T; t += piece) {
    const int64_t n = std::min(piece, T - t);
    const Tensor y = s.push(feats.view().slice(0, t, t + n));
    EXPECT_EQ(y.dim(0) % chunk, 0);
    out.insert(out.end(), y.values().begin(), y.values().end());
  }
  const Tensor last = s.flush();
  EXPECT_LT(last.dim(0), chunk);
  out.insert(out.end(), last.values().begin(), last.values().end());
  (void)F;
  const int64_t C = model.d_model();
  return Tensor::from_values(Shape{static_cast<int64_t>(out.size()) / C, C}, out);
}

Tensor offline(SpeechEncoder& model, const Tensor& feats, const ops::AttentionMask& mask) {
  Tensor y = model.forward(feats.view().unsqueeze(0), mask, nullptr, ctx());
  return Tensor::copy_of(y.view().select(0, 0));
}

// Which pre-activations of the subsampling's two ReLUs are positive: a central difference that
// flips one of them straddles a kink and measures an average of two slopes, not the derivative.
std::vector<bool> relu_pattern(const Conv2dSubsampling4::Cache& c) {
  std::vector<bool> p;
  for (const Tensor* h : {&c.h1, &c.h2})
    for (float v : h->values()) p.push_back(v > 0.0f);
  return p;
}

// Checks analytic[i] against central differences of loss() (which also says whether the ReLU
// pattern stayed that of the unperturbed point) for about 10 indices of v; indices whose
// difference straddles a kink are skipped, but at most a third of them.
void expect_gradient(float* v, const float* analytic, int64_t n, const char* what,
                     const std::function<double(bool*)>& loss) {
  int checked = 0, skipped = 0;
  for (int64_t i = 0; i < n; i += std::max<int64_t>(1, n / 10)) {
    const float saved = v[i];
    const float h = 1e-3f;
    bool same_up = true, same_down = true;
    v[i] = saved + h;
    const double up = loss(&same_up);
    v[i] = saved - h;
    const double down = loss(&same_down);
    v[i] = saved;
    if (!same_up || !same_down) {
      ++skipped;
      continue;
    }
    ++checked;
    const double numeric = (up - down) / (2.0 * double(h));
    EXPECT_NEAR(double(analytic[i]), numeric, 3e-3 * std::max(1.0, std::abs(numeric)))
        << what << " index " << i;
  }
  EXPECT_GE(checked, 2 * skipped) << what << ": too many differences straddle a ReLU kink";
}

TEST(Conv2dSubsampling4, OutputFrameJReadsInputFrames4jTo4jPlus6) {
  EXPECT_EQ(Conv2dSubsampling4::output_length(6), 0);
  EXPECT_EQ(Conv2dSubsampling4::output_length(7), 1);
  EXPECT_EQ(Conv2dSubsampling4::output_length(10), 1);
  EXPECT_EQ(Conv2dSubsampling4::output_length(11), 2);
  EXPECT_EQ(Conv2dSubsampling4::output_length(1000), 249);  // WeNet: ((1000-1)//2-1)//2
  Rng rng(3);
  Conv2dSubsampling4 sub(13, 8, rng);
  Tensor x = random_tensor<float>(Shape{1, 31, 13}, rng);
  const Tensor y = sub.forward(x.view(), nullptr, ctx());
  ASSERT_EQ(y.shape(), (Shape{1, 7, 8}));
  for (int64_t t : {0, 9, 30}) {
    Tensor x2 = Tensor::copy_of(x.view());
    x2(0, t, 5) += 1.0f;
    const Tensor y2 = sub.forward(x2.view(), nullptr, ctx());
    for (int64_t j = 0; j < 7; ++j) {
      double d = 0.0;
      for (int64_t c = 0; c < 8; ++c) d = std::max(d, double(std::abs(y2(0, j, c) - y(0, j, c))));
      const bool reads = t >= 4 * j && t < 4 * j + 7;
      if (!reads) {
        EXPECT_EQ(d, 0.0) << "frame " << j << " changed when input " << t << " did";
      }
    }
  }
  EXPECT_EQ(sub.forward(Tensor(Shape{2, 6, 13}).view(), nullptr, ctx()).shape(), (Shape{2, 0, 8}));
  EXPECT_THROW(sub.forward(Tensor(Shape{1, 20, 12}).view(), nullptr, ctx()), ShapeError);
}

TEST(StreamingEncoder, EqualsOfflineChunkMaskForEveryPieceSize) {
  for (bool norm_first : {true, false}) {
    Rng rng(norm_first ? 11 : 12);
    SpeechEncoder model(small_config(norm_first), rng);
    model.set_training(false);
    // 203 feature frames -> 50 encoder frames: the stream stops in the middle of a chunk for
    // every chunk size below but 1.
    const Tensor feats = random_tensor<float>(Shape{203, 13}, rng);
    for (int64_t chunk : {1, 4, 7, 16}) {
      for (int64_t left : {0, 1, 3, -1}) {
        const Tensor expected = offline(model, feats, streaming_mask(chunk, left));
        ASSERT_EQ(expected.dim(0), 50);
        for (int64_t piece : {1, 5, 64, 1000}) {
          const Tensor got = stream(model, feats, chunk, left, piece);
          ASSERT_EQ(got.shape(), expected.shape());
          EXPECT_LT(max_abs_diff(got.view(), expected.view()), 1e-5)
              << "norm_first " << norm_first << " chunk " << chunk << " left " << left << " piece "
              << piece;
        }
      }
    }
  }
}

TEST(StreamingEncoder, DiffersFromOtherMasksSoTheComparisonCanFail) {
  Rng rng(5);
  SpeechEncoder model(small_config(true), rng);
  model.set_training(false);
  const Tensor feats = random_tensor<float>(Shape{203, 13}, rng);
  const Tensor got = stream(model, feats, 4, 1, 9);
  EXPECT_GT(max_abs_diff(got.view(), offline(model, feats, {}).view()), 1e-2);
  EXPECT_GT(max_abs_diff(got.view(), offline(model, feats, streaming_mask(4, 2)).view()), 1e-2);
}

TEST(StreamingEncoder, CachesStayBoundedAndTheEncoderResetsAfterFlush) {
  Rng rng(6);
  SpeechEncoder model(small_config(true), rng);
  model.set_training(false);
  StreamingEncoder s(model, 4, 2, ctx());
  const Tensor feats = random_tensor<float>(Shape{4000, 13}, rng);
  int64_t after_warmup = 0;
  for (int64_t t = 0; t < 4000; t += 50) {
    s.push(feats.view().slice(0, t, t + 50));
    if (t == 500) after_warmup = s.cache_bytes();
  }
  EXPECT_EQ(s.cache_bytes(), after_warmup);
  // rings: 2 layers × (K, V) × 3 slots × 4 rows × C; the feature buffer: < one window + a piece
  // (twice that for the vector's capacity).
  EXPECT_LE(s.cache_bytes(), (2 * 2 * 3 * 4 * 16 + 2 * (4 * 4 + 3 + 50) * 13) * 4);
  s.flush();
  EXPECT_EQ(s.frames_emitted(), 0);
  // The same encoder object serves a second stream from scratch.
  const Tensor again = stream(model, feats, 4, 2, 33, &s);
  const Tensor expected = offline(model, feats, streaming_mask(4, 2));
  EXPECT_LT(max_abs_diff(again.view(), expected.view()), 1e-5);
}

TEST(StreamingEncoder, RejectsTrainingModeBadSizesAndBadFrames) {
  Rng rng(7);
  SpeechEncoder model(small_config(true), rng);
  EXPECT_THROW(StreamingEncoder(model, 4, 1, ctx()), ValueError);  // still training
  model.set_training(false);
  EXPECT_THROW(StreamingEncoder(model, 0, 1, ctx()), ValueError);
  EXPECT_THROW(StreamingEncoder(model, 4, -2, ctx()), ValueError);
  StreamingEncoder s(model, 4, 1, ctx());
  EXPECT_THROW(s.push(Tensor(Shape{3, 12}).view()), ShapeError);
  EXPECT_THROW(s.push(Tensor(Shape{3}).view()), ShapeError);
  EXPECT_EQ(s.flush().shape(), (Shape{0, 16}));  // nothing pushed: nothing emitted
}

TEST(SpeechEncoder, GradientsMatchCentralDifferences) {
  Rng rng(8);
  SpeechEncoderConfig c = small_config(true);
  c.num_layers = 1;
  c.layer.activation = ActivationKind::kGELU;  // smooth: the only kinks left are the subsampling's
  SpeechEncoder model(c, rng);
  Tensor feats = random_tensor<float>(Shape{2, 15, 13}, rng);
  const ops::AttentionMask mask = streaming_mask(1, 1);
  SpeechEncoder::Cache cache;
  const Tensor y = model.forward(feats.view(), mask, &cache, ctx());
  ASSERT_EQ(y.shape(), (Shape{2, 3, 16}));
  const std::vector<bool> pattern = relu_pattern(cache.embed);
  const Tensor w = random_tensor<float>(y.shape(), rng);
  const Tensor dx = model.backward(w.view(), cache, ctx());
  ASSERT_EQ(dx.shape(), feats.shape());
  auto loss = [&](bool* same) {
    SpeechEncoder::Cache c2;
    const Tensor out = model.forward(feats.view(), mask, &c2, ctx());
    *same = relu_pattern(c2.embed) == pattern;
    double s = 0.0;
    for (int64_t i = 0; i < out.numel(); ++i) s += double(out.data()[i]) * double(w.data()[i]);
    return s;
  };
  expect_gradient(feats.data(), dx.data(), feats.numel(), "feats", loss);
  for (const char* name : {"embed.conv1.weight", "embed.conv2.bias", "embed.out.weight",
                           "encoder.layers.0.self_attn.in_proj_weight", "encoder.norm.weight"}) {
    Parameter& p = model.parameter(name);
    expect_gradient(p.value.data(), p.grad.data(), p.value.numel(), name, loss);
  }
}

TEST(Conv2dSubsampling4, GradientsMatchCentralDifferences) {
  Rng rng(9);
  Conv2dSubsampling4 sub(13, 6, rng);
  Tensor x = random_tensor<float>(Shape{2, 15, 13}, rng);
  Conv2dSubsampling4::Cache cache;
  const Tensor y = sub.forward(x.view(), &cache, ctx());
  const std::vector<bool> pattern = relu_pattern(cache);
  const Tensor w = random_tensor<float>(y.shape(), rng);
  const Tensor dx = sub.backward(w.view(), cache, ctx());
  auto loss = [&](bool* same) {
    Conv2dSubsampling4::Cache c;
    const Tensor out = sub.forward(x.view(), &c, ctx());
    *same = relu_pattern(c) == pattern;
    double s = 0.0;
    for (int64_t i = 0; i < out.numel(); ++i) s += double(out.data()[i]) * double(w.data()[i]);
    return s;
  };
  expect_gradient(x.data(), dx.data(), x.numel(), "x", loss);
  for (const char* name : {"conv1.weight", "conv1.bias", "conv2.weight", "out.weight"}) {
    Parameter& p = sub.parameter(name);
    expect_gradient(p.value.data(), p.grad.data(), p.value.numel(), name, loss);
  }
}

TEST(SpeechEncoderDirectory, SaveThenLoadGivesTheSameModelInEvalMode) {
  Rng rng(10);
  SpeechEncoder model(small_config(false), rng);
  const std::string dir = ::testing::TempDir() + "/speech_encoder_dir";
  save_speech_encoder(dir, model);
  const auto back = load_speech_encoder(dir);
  EXPECT_FALSE(back->training());
  model.set_training(false);
  const Tensor feats = random_tensor<float>(Shape{1, 40, 13}, rng);
  const Tensor a = model.forward(feats.view(), {}, nullptr, ctx());
  const Tensor b = back->forward(feats.view(), {}, nullptr, ctx());
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.data()[i], b.data()[i]);
  EXPECT_THROW(load_speech_encoder(dir + "/missing"), IoError);
}

TEST(SpeechEncoderConfig, RoundTripsAndRejectsBadKeys) {
  SpeechEncoderConfig c = small_config(false);
  c.layer.activation = ActivationKind::kGELU;
  const SpeechEncoderConfig back =
      parse_speech_encoder_config(speech_encoder_config_to_json(c), "test");
  EXPECT_EQ(back.input_dim, 13);
  EXPECT_EQ(back.layer.d_model, 16);
  EXPECT_EQ(back.layer.norm_first, false);
  EXPECT_EQ(back.layer.activation, ActivationKind::kGELU);
  EXPECT_EQ(parse_speech_encoder_config("{}").layer.d_model, 256);  // the defaults
  for (const char* bad :
       {"[1]", "{\"d_model\": 30, \"nhead\": 4}", "{\"colour\": 1}", "{\"input_dim\": 5}",
        "{\"num_layers\": \"12\"}", "{\"dropout\": 1.5}", "not json"})
    EXPECT_THROW(parse_speech_encoder_config(bad, "cfg.json"), ValueError) << bad;
}

}  // namespace
}  // namespace attn::nn
