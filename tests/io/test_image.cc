// SPDX-License-Identifier: MIT
#include <fstream>

#include "testing/testing.h"

namespace attn::testing {
namespace {

TEST(Heatmap, MapsValuesToColoursAndWritesAPng) {
  const float values[] = {-1.0f, 0.0f, 1.0f, 5.0f};
  const Tensor t = Tensor::from_values(Shape{2, 2}, values);
  const auto img = io::heatmap(t, -1.0, 1.0, io::Colormap::kDiverging, 3);
  EXPECT_EQ(img.width, 6);
  EXPECT_EQ(img.height, 6);
  auto pixel = [&](int64_t x, int64_t y, int ch) {
    return img.pixels[static_cast<size_t>((y * 6 + x) * 3 + ch)];
  };
  EXPECT_GT(pixel(0, 0, 2), pixel(0, 0, 0));  // -1 is blue
  EXPECT_GT(pixel(3, 0, 1), 240);             // 0 is white-ish
  EXPECT_GT(pixel(0, 3, 0), pixel(0, 3, 2));  // +1 is red
  EXPECT_EQ(pixel(3, 3, 0), pixel(0, 3, 0));  // clamped
  const std::string path = ::testing::TempDir() + "/heat.png";
  io::write_png(path, img);
  std::ifstream f(path, std::ios::binary);
  char sig[8];
  f.read(sig, 8);
  EXPECT_EQ(std::string(sig + 1, 3), "PNG");
  ATTN_EXPECT_THROW_MSG(io::heatmap(t, 1.0, 1.0, io::Colormap::kSequential), ValueError,
                        "vmin < vmax");
  ATTN_EXPECT_THROW_MSG(
      io::write_png("/nonexistent/dir/x.png", img), IoError, "write_png",
      "cannot open '/nonexistent/dir/x.png' for writing: No such file or directory");
}

}  // namespace
}  // namespace attn::testing
