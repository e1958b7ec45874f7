// SPDX-License-Identifier: MIT
// attn image attention-map: where the SAGAN block of a trained cnn-sagan model looks. For one
// Fashion-MNIST image it draws the image with the chosen query pixels ringed and numbered, then,
// per query, that query's attention over the image (the block's map upscaled from its 14×14 grid,
// or 7×7 keys for the released form, to the image's 28×28 pixels).
#include <iostream>
#include <memory>
#include <sstream>

#include "attn/attn.h"
#include "commands.h"
#include "image_training.h"

namespace attn::cli {

namespace {

struct AttentionMapOptions {
  std::string model_dir, queries = "14,7;7,14;14,14;21,14;14,21", png = "attention-map.png";
  std::string split = "test";
  int64_t index = 0;
};

// "x1,y1;x2,y2" -> pixel coordinates (column, row) inside the image.
std::vector<std::pair<int64_t, int64_t>> parse_queries(const std::string& text, int64_t H,
                                                       int64_t W) {
  std::vector<std::pair<int64_t, int64_t>> out;
  std::stringstream all(text);
  for (std::string item; std::getline(all, item, ';');) {
    const std::vector<int64_t> xy = parse_int_list("--queries", item);
    if (xy.size() != 2)
      usage_fail("--queries", "each query is x,y (a pixel column and row), got '", item, "'");
    if (xy[0] < 0 || xy[0] >= W || xy[1] < 0 || xy[1] >= H)
      usage_fail("--queries", "(", xy[0], ", ", xy[1], ") is outside the ", W, "x", H, " image");
    out.emplace_back(xy[0], xy[1]);
  }
  if (out.empty() || out.size() > 11)
    usage_fail("--queries", "give 1 to 11 queries, got ", out.size());
  return out;
}

// The attention of one query row (S keys on a g×g grid) spread over the H×W image pixels.
Tensor upscale(ConstTensorView row, int64_t H, int64_t W) {
  const int64_t S = row.dim(0);
  const auto g = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(S))));
  Tensor img(Shape{H, W});
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x) img(y, x) = row((y * g / H) * g + x * g / W);
  return img;
}

void run(const AttentionMapOptions& o) {
  examples::LoadedImageModel m = examples::load_image_model(o.model_dir);
  if (m.kind != examples::ImageModelKind::kCNNSagan)
    usage_fail("--model", "'", o.model_dir, "' holds a ", examples::image_model_name(m.kind),
               " model; attention maps come from a cnn-sagan model's SAGAN block");
  if (o.split != "test" && o.split != "train")
    usage_fail("--split", "must be test or train, got '", o.split, "'");
  const train::ImageDataset data =
      train::load_fashion_mnist(train::fashion_mnist_dir(), o.split == "train");
  if (o.index < 0 || o.index >= data.N)
    usage_fail("--index", "must be in [0, ", data.N, ") for the ", o.split, " split, got ",
               o.index);
  const auto queries = parse_queries(o.queries, data.H, data.W);
  const std::vector<int64_t> idx{o.index};
  const Tensor x = train::image_batch(data, idx);
  Context ctx;
  const Tensor map = m.model->attention_map(x, ctx);  // (1, N, S)
  const Tensor logits = m.model->forward(x, false, ctx);
  int64_t predicted = 0;
  for (int64_t k = 1; k < logits.dim(1); ++k)
    if (logits(0, k) > logits(0, predicted)) predicted = k;
  const int64_t grid = m.model->attention_grid();
  io::HeatmapGrid fig;
  const std::string label =
      data.class_names[static_cast<size_t>(data.labels[static_cast<size_t>(o.index)])];
  fig.title = "SAGAN attention (" + std::string(nn::sagan_form_name(m.config.sagan_form)) +
              " form), " + o.split + " image " + std::to_string(o.index) + ": " + label +
              ", predicted " + data.class_names[static_cast<size_t>(predicted)];
  Tensor image(Shape{data.H, data.W});
  for (int64_t y = 0; y < data.H; ++y)
    for (int64_t xx = 0; xx < data.W; ++xx)
      image(y, xx) = static_cast<float>(
          data.pixels[static_cast<size_t>((o.index * data.H + y) * data.W + xx)]);
  io::HeatmapPanel first{"the image and its queries", image.view(), 0.0, 255.0,
                         io::Colormap::kGray,         {},           1};
  for (auto [qx, qy] : queries) first.markers.emplace_back(qx, qy);
  fig.panels.push_back(std::move(first));
  std::vector<Tensor> keep;
  for (size_t q = 0; q < queries.size(); ++q) {
    const auto [qx, qy] = queries[q];
    const int64_t n = (qy * grid / data.H) * grid + qx * grid / data.W;  // the query's position
    keep.push_back(upscale(map.view().select(0, 0).select(0, n), data.H, data.W));
    // Each panel's colours span its own weights, lowest to highest (as matplotlib's imshow does),
    // with the colour bar saying what they are: one query's 196 weights sit well above 0.
    double low = 1.0, peak = 0.0;
    for (float v : keep.back().values())
      low = std::min(low, static_cast<double>(v)), peak = std::max(peak, static_cast<double>(v));
    io::HeatmapPanel p{"query " + std::to_string(q + 1) + " at (" + std::to_string(qx) + ", " +
                           std::to_string(qy) + ")",
                       keep.back().view(),
                       low,
                       std::max(peak, low + 1e-6),
                       io::Colormap::kSequential,
                       {{static_cast<double>(qx), static_cast<double>(qy)}},
                       static_cast<int>(q + 1)};
    fig.panels.push_back(std::move(p));
  }
  fig.columns = 3;
  io::write_heatmap_grid(o.png, fig);
  std::cout << "wrote " << o.png << ": " << queries.size() << " queries of " << o.split << " image "
            << o.index << " (" << label << "), the block's " << map.dim(1)
            << " positions attending over " << map.dim(2) << " keys\n";
}

}  // namespace

void add_image_command(CLI::App& app) {
  CLI::App* image = app.add_subcommand("image", "Look inside a trained image model");
  image->require_subcommand(1);
  auto o = std::make_shared<AttentionMapOptions>();
  CLI::App* sub = image->add_subcommand(
      "attention-map", "Draw where the SAGAN block of a cnn-sagan model attends, per query pixel");
  sub->add_option("--model", o->model_dir, "A cnn-sagan --out-dir of `attn train fashion-mnist`")
      ->required();
  sub->add_option("--index", o->index, "Which image")->capture_default_str();
  sub->add_option("--split", o->split, "test or train")->capture_default_str();
  sub->add_option("--queries", o->queries, "Query pixels x1,y1;x2,y2;... (column, row)")
      ->capture_default_str();
  sub->add_option("--png", o->png, "Output PNG")->capture_default_str();
  sub->callback([o] { run(*o); });
}

}  // namespace attn::cli
