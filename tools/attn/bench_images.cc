// SPDX-License-Identifier: MIT
// attn bench images: the image layers' speed as a share of the machine's measured fp32 FMA peak.
//   conv  Conv2d forward and backward (dx and dw) at the shape: B = 128, 32 -> 64 channels,
//         28×28, 3×3, padding 1; 2·B·C_out·OH·OW·C_in·9 flops per product, three products.
//   step  one full training step of the CNN of `attn train fashion-mnist` (forward, cross-entropy,
//         backward; no optimiser) at the same batch, in ms and images/s: what
//         bench/compare_torch_images.py sets beside PyTorch.
// Medians of --repeats runs after a warm-up; --json for scripts.
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "attn/attn.h"
#include "bench_util.h"
#include "commands.h"
#include "image_models.h"
#include "peak.h"

namespace attn::cli {

namespace {

struct ImagesBenchOptions {
  int threads = 0, repeats = 5;
  int64_t batch = 128, c_in = 32, c_out = 64, size = 28;
  bool json = false;
  std::string simd_target;
};

void run(const ImagesBenchOptions& o) {
  if (o.repeats < 1) usage_fail("--repeats", "must be >= 1, got ", o.repeats);
  if (o.batch < 1 || o.c_in < 1 || o.c_out < 1 || o.size < 4)
    usage_fail("--batch/--c-in/--c-out/--size", "must be >= 1 (size >= 4)");
  Context ctx(ContextOptions{.num_threads = checked_threads("bench images", o.threads)});
  apply_simd_target(o.simd_target);  // the peak below is measured on that target too
  const double peak = bench::measure_peak_gflops(ctx);
  Rng rng(1);
  const Tensor x = random_normal(Shape{o.batch, o.c_in, o.size, o.size}, rng);
  const Tensor w = random_normal(Shape{o.c_out, o.c_in, 3, 3}, rng);
  const Tensor g = random_normal(Shape{o.batch, o.c_out, o.size, o.size}, rng);
  const ops::Conv2dOptions p{.pad_h = 1, .pad_w = 1};
  Tensor y(g.shape()), dx(x.shape()), dw(w.shape());
  const double product_gflop =
      2.0 * static_cast<double>(o.batch * o.c_out * o.size * o.size * o.c_in * 9) * 1e-9;
  const double fwd = median_ms(o.repeats, [&] { ops::conv2d_forward(x, w, {}, p, y, ctx); });
  const double bwd =
      median_ms(o.repeats, [&] { ops::conv2d_backward(x, w, g, p, dx, dw, {}, ctx); });
  // The CNN's training step.
  examples::ImageModelConfig c;
  auto model = examples::make_image_model(examples::ImageModelKind::kCNN, c, rng);
  const Tensor images = random_normal(Shape{o.batch, 1, 28, 28}, rng);
  std::vector<int64_t> labels(static_cast<size_t>(o.batch));
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i % 10);
  Tensor dlogits(Shape{o.batch, 10});
  const double step = median_ms(o.repeats, [&] {
    model->zero_grad();
    const Tensor logits = model->forward(images, true, ctx);
    train::cross_entropy(logits, labels, dlogits);
    model->backward(dlogits, ctx);
  });
  auto pct = [&](double gflop, double ms) { return 100.0 * gflop / (ms * 1e-3) / peak; };
  if (o.json) {
    std::cout << nlohmann::json{{"threads", ctx.num_threads()},
                                {"simd", ops::simd_target()},
                                {"peak_gflops", peak},
                                {"conv_forward_ms", fwd},
                                {"conv_backward_ms", bwd},
                                {"conv_percent_of_peak", pct(3 * product_gflop, fwd + bwd)},
                                {"cnn_step_ms", step},
                                {"cnn_images_per_s", static_cast<double>(o.batch) / (step * 1e-3)}}
                     .dump()
              << "\n";
    return;
  }
  std::cout << "machine: " << ctx.num_threads() << " threads, SIMD " << ops::simd_target()
            << ", measured fp32 FMA peak " << std::fixed << std::setprecision(1) << peak
            << " GFLOP/s\nConv2d B=" << o.batch << " " << o.c_in << " -> " << o.c_out << ", "
            << o.size << "x" << o.size << ", 3x3, padding 1 (" << std::setprecision(2)
            << product_gflop << " GFLOP per product)\n"
            << std::setprecision(1) << "  forward            " << std::setw(8) << fwd << " ms "
            << std::setw(6) << pct(product_gflop, fwd) << "% of peak\n"
            << "  backward (dx, dw)  " << std::setw(8) << bwd << " ms " << std::setw(6)
            << pct(2 * product_gflop, bwd) << "% of peak\n"
            << "  forward+backward   " << std::setw(8) << fwd + bwd << " ms " << std::setw(6)
            << pct(3 * product_gflop, fwd + bwd) << "% of peak\n"
            << "CNN training step (attn train fashion-mnist --model cnn, batch " << o.batch
            << ", no optimiser): " << step << " ms, " << std::setprecision(0)
            << static_cast<double>(o.batch) / (step * 1e-3) << " images/s\n";
}

}  // namespace

void add_bench_images_command(CLI::App* bench) {
  auto o = std::make_shared<ImagesBenchOptions>();
  CLI::App* sub = bench->add_subcommand(
      "images", "Conv2d forward/backward as % of peak, and the CNN's training step");
  sub->add_option("--threads", o->threads, "Threads (0 = all)")->capture_default_str();
  sub->add_option("--repeats", o->repeats, "Timed runs per case (median)")->capture_default_str();
  sub->add_option("--batch", o->batch, "Images B")->capture_default_str();
  sub->add_option("--c-in", o->c_in, "Conv input channels")->capture_default_str();
  sub->add_option("--c-out", o->c_out, "Conv output channels")->capture_default_str();
  sub->add_option("--size", o->size, "Image side H = W of the conv case")->capture_default_str();
  add_simd_target_option(sub, o->simd_target);
  sub->add_flag("--json", o->json, "One JSON line");
  sub->callback([o] { run(*o); });
}

}  // namespace attn::cli
