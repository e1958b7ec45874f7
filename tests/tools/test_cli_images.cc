// SPDX-License-Identifier: MIT
// `attn image attention-map` run as a user runs it, on model directories the test writes the way
// `attn train fashion-mnist` does (save_image_model, random weights: training one takes seconds):
// the PNG for a cnn-sagan model, and usage errors for an image index, a query pixel or a model kind
// it cannot draw. The images come from Debian's dataset-fashion-mnist (skipped without it).
#include <filesystem>

#include "attn/attn.h"
#include "cli_runner.h"
#include "image_training.h"

namespace attn::testing {
namespace {

std::string saved_model(examples::ImageModelKind kind, const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/cli_images_" + name;
  std::filesystem::create_directories(dir);
  const examples::ImageModelConfig config;
  Rng rng(3);
  const auto model = examples::make_image_model(kind, config, rng);
  examples::save_image_model(dir, kind, config, *model);
  return dir;
}

TEST(CliImage, AttentionMapDrawsACnnSaganModelAndRefusesWhatItCannotDraw) {
  if (!std::filesystem::exists(train::fashion_mnist_dir() + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const std::string sagan = saved_model(examples::ImageModelKind::kCNNSagan, "sagan");
  const std::string png = sagan + "/map.png";
  auto r = run_cli("image attention-map --model " + sagan + " --index 3 --png " + png);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("5 queries of test image 3 (Trouser)"), std::string::npos) << r.output;
  EXPECT_GT(std::filesystem::file_size(png), 10000u);
  r = run_cli("image attention-map --model " + sagan + " --index 10000 --png " + png);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--index: must be in [0, 10000) for the test split"), std::string::npos)
      << r.output;
  r = run_cli("image attention-map --model " + sagan + " --queries '3,4;30,2' --png " + png);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("(30, 2) is outside the 28x28 image"), std::string::npos) << r.output;
  const std::string cnn = saved_model(examples::ImageModelKind::kCNN, "cnn");
  r = run_cli("image attention-map --model " + cnn + " --png " + png);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("holds a cnn model"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace attn::testing
