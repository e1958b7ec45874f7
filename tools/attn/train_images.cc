// SPDX-License-Identifier: MIT
// attn train fashion-mnist: train the CNN, the ViT or the CNN with a SAGAN block on Fashion-MNIST
// (examples/experiments/image_models.h) and test it on the 10 000 test images: a progress bar,
// metrics.csv, curves.png, the model (config.json + model.safetensors) in --out-dir, and the final
// line "test accuracy 0.xxxx".
#include <filesystem>
#include <iostream>
#include <memory>
#include <numeric>

#include "attn/attn.h"
#include "commands.h"
#include "image_training.h"
#include "images_cli.h"

namespace attn::cli {

void add_image_model_options(CLI::App* sub, ImageModelFlags& f) {
  sub->add_option("--sagan-form", f.sagan_form, "SAGAN block of cnn-sagan: paper or released")
      ->capture_default_str();
  sub->add_option("--positional", f.positional,
                  "ViT's 2-D positional encoding: learned or sinusoidal")
      ->capture_default_str();
  sub->add_flag("--class-token", f.class_token, "ViT reads a class token (default: mean pooling)");
  sub->add_option("--batch", f.train.batch, "Images per step")->capture_default_str();
  sub->add_option("--lr", f.train.lr, "Peak learning rate (AdamW, warm-up then cosine)")
      ->capture_default_str();
  sub->add_option("--label-smoothing", f.train.label_smoothing, "Cross-entropy label smoothing")
      ->capture_default_str();
  sub->add_flag("--no-augment", f.no_augment, "No random crop (padding 2) and horizontal flip");
  sub->add_option("--seed", f.train.seed, "Seed (same seed and threads: same run, bit for bit)")
      ->capture_default_str();
  sub->add_option("--threads", f.threads, "Threads (0 = all)")->capture_default_str();
  sub->add_flag("--quiet", f.quiet, "No progress bar");
}

examples::ImageModelConfig image_model_config(const ImageModelFlags& f) {
  examples::ImageModelConfig c;
  try {
    c.sagan_form = nn::parse_sagan_form(f.sagan_form);
  } catch (const ValueError&) {
    usage_fail("--sagan-form", "must be paper or released, got '", f.sagan_form, "'");
  }
  if (f.positional != "learned" && f.positional != "sinusoidal")
    usage_fail("--positional", "must be learned or sinusoidal, got '", f.positional, "'");
  c.positional = f.positional;
  c.class_token = f.class_token;
  return c;
}

examples::ImageTrainOptions image_train_options(const ImageModelFlags& f) {
  examples::ImageTrainOptions o = f.train;
  if (o.batch < 1) usage_fail("--batch", "must be >= 1, got ", o.batch);
  if (!(o.lr > 0)) usage_fail("--lr", "must be > 0, got ", o.lr);
  if (o.epochs < 1) usage_fail("--epochs", "must be >= 1, got ", o.epochs);
  if (!(o.label_smoothing >= 0 && o.label_smoothing < 1))
    usage_fail("--label-smoothing", "must be in [0, 1), got ", o.label_smoothing);
  o.augment = !f.no_augment;
  o.progress = !f.quiet;
  return o;
}

void make_out_dir(const std::string& dir) {
  if (std::filesystem::exists(dir) && !std::filesystem::is_directory(dir))
    usage_fail("--out-dir", "'", dir, "' exists and is not a directory");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail<IoError>("--out-dir", "cannot create '", dir, "': ", ec.message());
}

void write_curves_plot(const std::string& path, const std::string& title,
                       const examples::ImageTrainResult& r, int64_t eval_images) {
  // The loss per step averaged over 50 steps, and the held-out accuracy: one plot, one axis (both
  // live in [0, ~2.5]; accuracy is a fraction).
  std::vector<double> smooth, steps;
  double acc = 0.0;
  for (size_t i = 0; i < r.losses.size(); ++i) {
    acc += r.losses[i] - (i >= 50 ? r.losses[i - 50] : 0.0);
    smooth.push_back(acc / static_cast<double>(std::min<size_t>(i + 1, 50)));
    steps.push_back(static_cast<double>(i + 1));
  }
  io::LinePlot plot;
  plot.title = title;
  plot.x_label = "training step";
  plot.y_label = "loss / accuracy";
  std::vector<double> eval_x(r.eval_steps.begin(), r.eval_steps.end());
  plot.series = {{"training loss (50-step average)", smooth, steps},
                 {"held-out accuracy (first " + std::to_string(eval_images) + " test images)",
                  r.eval_accuracy, eval_x}};
  plot.y_min = 0.0;
  plot.y_max =
      std::max(1.0, smooth.empty() ? 1.0 : *std::max_element(smooth.begin(), smooth.end()));
  io::write_line_plot(path, plot);
}

namespace {

struct FashionOptions {
  ImageModelFlags flags;
  std::string model = "cnn", out_dir = "build/train-fashion-mnist";
  int64_t train_size = 60000;
};

void run_fashion(const FashionOptions& o) {
  const auto kind = [&] {
    try {
      return examples::parse_image_model(o.model);
    } catch (const ValueError&) {
      usage_fail("--model", "must be cnn, vit or cnn-sagan, got '", o.model, "'");
    }
  }();
  const examples::ImageModelConfig config = image_model_config(o.flags);
  const examples::ImageTrainOptions train_options = image_train_options(o.flags);
  if (o.train_size < 1 || o.train_size > 60000)
    usage_fail("--train-size", "must be in [1, 60000], got ", o.train_size);
  make_out_dir(o.out_dir);
  Context ctx(ContextOptions{.num_threads = checked_threads("train", o.flags.threads),
                             .seed = train_options.seed});
  const std::string dir = train::fashion_mnist_dir();
  const train::ImageDataset train_set = train::load_fashion_mnist(dir, true);
  const train::ImageDataset test = train::load_fashion_mnist(dir, false);
  std::vector<int64_t> subset(static_cast<size_t>(train_set.N));  // all of them, in order
  std::iota(subset.begin(), subset.end(), int64_t{0});
  if (o.train_size < train_set.N)
    subset = train::balanced_subset(train_set, o.train_size, train_options.seed);
  Rng rng(train_options.seed);
  auto model = examples::make_image_model(kind, config, rng);
  examples::ImageTrainOptions t = train_options;
  t.csv_path = o.out_dir + "/metrics.csv";
  const int64_t steps = examples::image_train_steps(t, static_cast<int64_t>(subset.size()));
  std::cout << "Fashion-MNIST (" << dir << "): model " << examples::image_model_name(kind) << " ("
            << model->num_parameters() << " parameters), " << subset.size() << " training images, "
            << t.epochs << " epochs = " << steps << " steps of batch "
            << std::min<int64_t>(t.batch, static_cast<int64_t>(subset.size())) << ", "
            << (t.augment ? "crop+flip augmentation" : "no augmentation") << ", "
            << ctx.num_threads() << " threads, SIMD " << ops::simd_target() << "\n";
  const auto r = examples::train_image_model(*model, train_set, subset, test, t, ctx);
  examples::save_image_model(o.out_dir, kind, config, *model);
  write_curves_plot(o.out_dir + "/curves.png",
                    std::string("attn train fashion-mnist --model ") +
                        examples::image_model_name(kind) + " (" + std::to_string(subset.size()) +
                        " images)",
                    r, t.eval_images);
  std::printf("%lld steps in %.1f s of training (%.0f images/s)\n", static_cast<long long>(r.steps),
              r.train_seconds,
              r.train_seconds > 0 ? static_cast<double>(r.examples) / r.train_seconds : 0.0);
  std::cout << "wrote " << o.out_dir
            << "/metrics.csv, curves.png, config.json, model.safetensors\n";
  std::printf("test accuracy %.4f\n", r.test_accuracy);
}

}  // namespace

void add_train_fashion_command(CLI::App* train_cmd) {
  auto o = std::make_shared<FashionOptions>();
  CLI::App* sub = train_cmd->add_subcommand(
      "fashion-mnist", "Train a CNN, a ViT or a CNN with a SAGAN block on Fashion-MNIST");
  sub->add_option("--model", o->model, "cnn, vit or cnn-sagan")->capture_default_str();
  sub->add_option("--train-size", o->train_size,
                  "Training images (a class-balanced random subset when < 60000)")
      ->capture_default_str();
  sub->add_option("--epochs", o->flags.train.epochs, "Passes over the training images")
      ->capture_default_str();
  sub->add_option("--out-dir", o->out_dir, "Where metrics.csv, curves.png and the model go")
      ->capture_default_str();
  add_image_model_options(sub, o->flags);
  sub->callback([o] { run_fashion(*o); });
}

}  // namespace attn::cli
