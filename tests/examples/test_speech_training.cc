// SPDX-License-Identifier: MIT
// The speech experiment's parts: model names and their masks, label bookkeeping, padding that does
// not change an utterance's logits, attention maps and FLOP counts, LSTMs of the attention
// model's size, and a small model that learns phonemes of voices it never heard.
#include <gtest/gtest.h>

#include <cmath>

#include "speech_models.h"
#include "speech_training.h"

namespace attn::examples {
namespace {

SpeechModelConfig tiny_config(int64_t classes) {
  SpeechModelConfig c;
  c.input_dim = 16, c.classes = classes, c.d_model = 32, c.nhead = 2, c.dim_feedforward = 64;
  c.layers = 2, c.dropout = 0.0;
  return c;
}

TEST(SpeechModels, NamesGiveTheirMasks) {
  EXPECT_FALSE(parse_speech_model("full").mask.has_structure());
  const auto w = parse_speech_model("window16");
  EXPECT_EQ(w.mask.window_left, 16);
  EXPECT_EQ(w.mask.window_right, 16);
  EXPECT_EQ(w.window, 16);
  const auto c = parse_speech_model("chunk16x4");
  EXPECT_EQ(c.mask.chunk_size, 16);
  EXPECT_EQ(c.mask.num_left_chunks, 4);
  const auto d = parse_speech_model("dilation4-window16");
  EXPECT_EQ(d.mask.dilation, 4);
  EXPECT_EQ(d.mask.window_left, 16);
  EXPECT_EQ(parse_speech_model("dilation2").mask.window_left, -1);
  EXPECT_EQ(parse_speech_model("lstm-bi").kind, SpeechModelKind::kLSTM);
  EXPECT_TRUE(parse_speech_model("lstm-bi").bidirectional);
  EXPECT_FALSE(parse_speech_model("lstm-uni").bidirectional);
  for (const char* bad : {"", "window", "window-3", "chunk0x1", "dilation1", "lstm", "gru"})
    EXPECT_THROW(parse_speech_model(bad), ValueError) << bad;
  for (const auto& name : default_speech_models()) EXPECT_NO_THROW(parse_speech_model(name));
}

TEST(SpeechModels, LabelsCollapseAndEditDistance) {
  std::vector<int64_t> frames(30);
  for (size_t i = 0; i < frames.size(); ++i) frames[i] = int64_t(i);
  EXPECT_EQ(encoder_frame_labels(frames), (std::vector<int64_t>{3, 7, 11, 15, 19, 23}));
  EXPECT_TRUE(encoder_frame_labels({1, 2, 3}).empty());
  EXPECT_EQ(collapse_frames({0, 0, 5, 5, 0, 5, 7, 7, 0}), (std::vector<int64_t>{5, 5, 7}));
  EXPECT_EQ(edit_distance({1, 2, 3}, {1, 2, 3}), 0);
  EXPECT_EQ(edit_distance({1, 2, 3}, {1, 3}), 1);
  EXPECT_EQ(edit_distance({}, {4, 4}), 2);
  EXPECT_EQ(edit_distance({1, 2}, {2, 1}), 2);
}

TEST(SpeechModels, LstmsHaveAboutTheAttentionModelsSize) {
  SpeechModelConfig c;
  c.classes = 60;
  Rng rng(0);
  const int64_t att = SpeechFrameModel(parse_speech_model("full"), c, rng).num_parameters();
  for (const char* name : {"lstm-uni", "lstm-bi"}) {
    const int64_t n = SpeechFrameModel(parse_speech_model(name), c, rng).num_parameters();
    EXPECT_NEAR(double(n), double(att), 0.1 * double(att)) << name;
  }
}

// An utterance's logits do not depend on the padding of the batch it is in.
TEST(SpeechModels, PaddingDoesNotChangeAnUtterancesLogits) {
  const Context ctx(ContextOptions{.num_threads = 1});
  for (const char* name : {"full", "window2", "chunk4x1", "lstm-uni", "lstm-bi"}) {
    Rng rng(1);
    SpeechFrameModel model(parse_speech_model(name), tiny_config(5), rng);
    Tensor x(Shape{2, 61, 16});
    for (float& v : x.values()) v = float(rng.normal());
    const std::vector<int64_t> lengths = {61, 37};
    const Tensor batch = model.forward(x.view(), lengths, false, ctx);
    const Tensor alone = model.forward(x.view().select(0, 1).unsqueeze(0).slice(1, 0, 37),
                                       std::vector<int64_t>{37}, false, ctx);
    ASSERT_EQ(alone.dim(1), nn::Conv2dSubsampling4::output_length(37));
    for (int64_t j = 0; j < alone.dim(1); ++j)
      for (int64_t k = 0; k < 5; ++k) EXPECT_NEAR(batch(1, j, k), alone(0, j, k), 1e-4) << name;
  }
}

TEST(SpeechModels, AttentionMapsFollowTheMaskAndFlopsCountVisiblePairs) {
  const Context ctx(ContextOptions{.num_threads = 1});
  Rng rng(2);
  SpeechFrameModel model(parse_speech_model("window2"), tiny_config(5), rng);
  Tensor x(Shape{1, 80, 16});
  for (float& v : x.values()) v = float(rng.normal());
  const Tensor map = model.attention_map(x.view(), 1, ctx);
  ASSERT_EQ(map.shape(), (Shape{19, 19}));
  for (int64_t t = 0; t < 19; ++t) {
    double sum = 0;
    for (int64_t s = 0; s < 19; ++s) {
      sum += double(map(t, s));
      if (std::abs(t - s) > 2) {
        EXPECT_EQ(map(t, s), 0.0f);
      }
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
  EXPECT_THROW(model.attention_map(x.view(), 2, ctx), ValueError);
  SpeechFrameModel full(parse_speech_model("full"), tiny_config(5), rng);
  // 10 frames: full sees 100 pairs, ±2 sees 10·5 - 2·(2 + 1) = 44; 4·C·layers FLOPs each.
  EXPECT_DOUBLE_EQ(full.attention_flops(10), 100.0 * 4 * 32 * 2);
  EXPECT_DOUBLE_EQ(model.attention_flops(10), 44.0 * 4 * 32 * 2);
  SpeechFrameModel lstm(parse_speech_model("lstm-bi"), tiny_config(5), rng);
  EXPECT_EQ(lstm.attention_flops(10), 0.0);
  EXPECT_THROW(lstm.attention_map(x.view(), 0, ctx), ValueError);
  EXPECT_THROW(model.forward(x.view(), std::vector<int64_t>{81}, false, ctx), ValueError);
  EXPECT_THROW(model.forward(x.view(), std::vector<int64_t>{}, false, ctx), ShapeError);
}

// Training smoke test: a small model's frame accuracy on voices it never heard rises well above the
// majority class in a few seconds.
TEST(SpeechTraining, ASmallModelLearnsPhonemesOfUnseenVoices) {
  const Context ctx(ContextOptions{.num_threads = 2});
  train::SpeechDatasetOptions o;
  o.utterances = 60;
  o.test_fraction = 0.25;
  o.seed = 5;
  const SpeechExperimentData d = prepare_speech_data(train::make_speech_corpus(o), 16, ctx);
  ASSERT_EQ(d.test_feats.size(), 15u);
  Rng rng(0);
  SpeechFrameModel model(parse_speech_model("window4"), tiny_config(int64_t(d.phonemes.size())),
                         rng);
  const double before = speech_accuracy(model, d.test_feats, d.test_labels, ctx);
  SpeechTrainOptions t;
  t.steps = 60, t.batch = 8, t.lr = 3e-3, t.evaluations = 0, t.progress = false;
  t.augment.enabled = true;
  const SpeechTrainResult r = train_speech_model(model, d, t, ctx);
  EXPECT_EQ(r.steps, 60);
  EXPECT_LT(before, d.majority_accuracy + 0.05);
  EXPECT_GT(r.test_accuracy, d.majority_accuracy + 0.1)
      << "majority " << d.majority_accuracy << " before " << before;
  EXPECT_GT(r.test_accuracy, 3.0 / double(d.phonemes.size()));
}

}  // namespace
}  // namespace attn::examples
