// SPDX-License-Identifier: MIT
// The image models and their training loop on a small synthetic image set (a bright left or right
// half, with noise): every model learns it, runs are the same bit for bit for the same seed and
// thread count, a saved model loads back to the same logits, and bad configurations are refused.
#include <gtest/gtest.h>

#include <filesystem>

#include "image_training.h"
#include "testing/testing.h"

namespace attn::examples {
namespace {

train::ImageDataset halves(int64_t n, uint64_t seed) {
  train::ImageDataset d;
  d.N = n;
  d.H = d.W = 28;
  d.num_classes = 10;  // the models' heads; only classes 0 and 1 occur
  d.class_names = std::vector<std::string>(10, "c");
  d.mean = {0.3};
  d.stddev = {0.3};
  Rng rng(seed);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = i % 2;
    for (int64_t y = 0; y < 28; ++y)
      for (int64_t x = 0; x < 28; ++x) {
        const bool bright = (x < 14) == (label == 0);
        d.pixels.push_back(static_cast<uint8_t>((bright ? 150 : 30) + rng.uniform_int(0, 60)));
      }
    d.labels.push_back(label);
  }
  return d;
}

ImageModelConfig small_config() {
  ImageModelConfig c;
  c.conv1 = 8, c.conv2 = 8, c.hidden = 16;
  c.d_model = 16, c.nhead = 2, c.layers = 1, c.dim_feedforward = 32;
  return c;
}

ImageTrainOptions quick_options() {
  ImageTrainOptions o;
  o.epochs = 4, o.batch = 16, o.lr = 3e-3, o.evaluations = 2, o.eval_images = 32;
  o.progress = false;
  o.augmentation = {.crop_padding = 1, .horizontal_flip = false};  // a flip would swap the label
  return o;
}

std::vector<int64_t> all_of(const train::ImageDataset& d) {
  std::vector<int64_t> v(static_cast<size_t>(d.N));
  for (int64_t i = 0; i < d.N; ++i) v[static_cast<size_t>(i)] = i;
  return v;
}

TEST(ImageModels, EveryModelLearnsTheHalvesTask) {
  const auto train_set = halves(96, 1), test = halves(64, 2);
  Context ctx(ContextOptions{.num_threads = 2});
  for (auto kind : {ImageModelKind::kCNN, ImageModelKind::kViT, ImageModelKind::kCNNSagan}) {
    SCOPED_TRACE(image_model_name(kind));
    Rng rng(3);
    ImageModelConfig c = small_config();
    auto model = make_image_model(kind, c, rng);
    const auto r =
        train_image_model(*model, train_set, all_of(train_set), test, quick_options(), ctx);
    EXPECT_GE(r.test_accuracy, 0.9);
    EXPECT_EQ(r.steps, 4 * 96 / 16);
    EXPECT_LT(r.losses.back(), r.losses.front());
  }
}

TEST(ImageModels, ViTVariantsAndBothSaganFormsRun) {
  Context ctx(ContextOptions{.num_threads = 1});
  const auto data = halves(8, 4);
  const std::vector<int64_t> idx{0, 1, 2, 3};
  const Tensor x = train::image_batch(data, idx);
  for (auto [positional, cls] : std::vector<std::pair<std::string, bool>>{
           {"sinusoidal", false}, {"learned", true}, {"sinusoidal", true}}) {
    ImageModelConfig c = small_config();
    c.positional = positional, c.class_token = cls;
    Rng rng(5);
    auto m = make_image_model(ImageModelKind::kViT, c, rng);
    const Tensor logits = m->forward(x, true, ctx);
    EXPECT_EQ(logits.shape(), (Shape{4, 10}));
    m->backward(Tensor::full(logits.shape(), 0.1f), ctx);
    EXPECT_EQ(m->attention_map(x, ctx).defined(), false);
  }
  for (auto form : {nn::SaganForm::kPaper, nn::SaganForm::kReleased}) {
    ImageModelConfig c = small_config();
    c.sagan_form = form;
    Rng rng(6);
    auto m = make_image_model(ImageModelKind::kCNNSagan, c, rng);
    const Tensor map = m->attention_map(x, ctx);
    const int64_t keys = form == nn::SaganForm::kPaper ? 196 : 49;
    EXPECT_EQ(map.shape(), (Shape{4, 196, keys}));
    EXPECT_EQ(m->attention_grid(), 14);
    double row = 0.0;
    for (int64_t s = 0; s < keys; ++s) row += static_cast<double>(map(2, 100, s));
    EXPECT_NEAR(row, 1.0, 1e-5);  // a softmax row
  }
}

TEST(ImageModels, SameSeedAndThreadsGiveTheSameCurveBitForBit) {
  const auto train_set = halves(64, 7), test = halves(16, 8);
  for (auto kind : {ImageModelKind::kCNNSagan, ImageModelKind::kViT}) {
    std::vector<std::vector<double>> runs;
    for (int run = 0; run < 2; ++run) {
      Context ctx(ContextOptions{.num_threads = 2});
      Rng rng(9);
      auto model = make_image_model(kind, small_config(), rng);
      ImageTrainOptions o = quick_options();
      o.epochs = 1;
      runs.push_back(train_image_model(*model, train_set, all_of(train_set), test, o, ctx).losses);
    }
    EXPECT_EQ(runs[0], runs[1]) << image_model_name(kind);
  }
}

TEST(ImageModels, SavedModelLoadsBackToTheSameLogits) {
  const std::string dir = ::testing::TempDir() + "attn-image-model";
  std::filesystem::create_directories(dir);
  Context ctx;
  ImageModelConfig c = small_config();
  c.sagan_form = nn::SaganForm::kReleased;
  Rng rng(10);
  auto m = make_image_model(ImageModelKind::kCNNSagan, c, rng);
  const auto data = halves(4, 11);
  const std::vector<int64_t> idx{0, 1};
  const Tensor x = train::image_batch(data, idx);
  m->forward(x, true, ctx);  // moves the running statistics off their initial values
  save_image_model(dir, ImageModelKind::kCNNSagan, c, *m);
  const LoadedImageModel back = load_image_model(dir);
  EXPECT_EQ(back.kind, ImageModelKind::kCNNSagan);
  EXPECT_EQ(back.config.sagan_form, nn::SaganForm::kReleased);
  EXPECT_TRUE(
      attn::testing::all_close(back.model->forward(x, false, ctx), m->forward(x, false, ctx), 0.0));
  ATTN_EXPECT_THROW_MSG(load_image_model(dir + "/nowhere"), IoError, "config.json",
                        "attn train fashion-mnist");
}

TEST(ImageModels, RejectBadConfigurations) {
  Rng rng(0);
  ImageModelConfig c = small_config();
  c.positional = "rotary";
  ATTN_EXPECT_THROW_MSG(make_image_model(ImageModelKind::kViT, c, rng), ValueError,
                        "'learned' or 'sinusoidal'");
  c = small_config();
  c.height = 30;
  ATTN_EXPECT_THROW_MSG(make_image_model(ImageModelKind::kCNN, c, rng), ValueError,
                        "multiples of 4");
  ATTN_EXPECT_THROW_MSG(parse_image_model("resnet"), ValueError, "cnn, vit, cnn-sagan");
  ATTN_EXPECT_THROW_MSG(parse_image_config_json("{\"model\": \"cnn\"}"), ValueError,
                        "missing or has the wrong type");
  const auto [kind, back] = parse_image_config_json(image_config_json(ImageModelKind::kViT, c));
  EXPECT_EQ(kind, ImageModelKind::kViT);
  EXPECT_EQ(back.height, 30);
}

}  // namespace
}  // namespace attn::examples
