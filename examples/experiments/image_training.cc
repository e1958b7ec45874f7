// SPDX-License-Identifier: MIT
// train_image_model and friends (image_training.h).
#include "image_training.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace attn::examples {
namespace {

uint64_t mix(uint64_t seed, int64_t a, uint64_t b) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(a) * 0xBF58476D1CE4E5B9ULL + b;
  z ^= z >> 31;
  return z * 0x94D049BB133111EBULL;
}

// The batch of step s (0-based, as train::fit counts): epoch e = s / steps_per_epoch walks a
// permutation of the subset drawn from (seed, e), so a batch is a function of the step. The
// permutation is drawn once per epoch, not once per step.
class BatchOrder {
 public:
  BatchOrder(std::span<const int64_t> subset, int64_t batch, uint64_t seed)
      : subset_(subset), batch_(batch), seed_(seed) {}

  std::vector<int64_t> indices(int64_t step) {
    if (step < 0) fail<ValueError>("batch_indices", "step must be >= 0, got ", step);
    const auto n = static_cast<int64_t>(subset_.size());
    const int64_t per_epoch = std::max<int64_t>(1, n / batch_);  // drop the ragged last batch
    const int64_t epoch = step / per_epoch, k = step % per_epoch;
    if (epoch != epoch_) shuffle(epoch);
    const int64_t lo = k * batch_, hi = std::min(n, lo + batch_);
    return {perm_.begin() + lo, perm_.begin() + hi};
  }

 private:
  void shuffle(int64_t epoch) {
    perm_.assign(subset_.begin(), subset_.end());
    Rng rng(mix(seed_, epoch, 1));
    for (size_t i = perm_.size(); i > 1; --i)
      std::swap(perm_[i - 1],
                perm_[static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(i) - 1))]);
    epoch_ = epoch;
  }

  std::span<const int64_t> subset_;
  int64_t batch_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  std::vector<int64_t> perm_;
};

}  // namespace

int64_t image_train_steps(const ImageTrainOptions& o, int64_t n) {
  const int64_t examples = std::max(o.epochs * n, o.min_examples);
  return std::max<int64_t>(1, (examples + o.batch - 1) / o.batch);
}

double image_accuracy(ImageModel& model, const train::ImageDataset& data, int64_t limit,
                      const Context& ctx) {
  const int64_t n = limit < 0 ? data.N : std::min(limit, data.N);
  constexpr int64_t kBatch = 500;
  int64_t correct = 0;
  for (int64_t lo = 0; lo < n; lo += kBatch) {
    std::vector<int64_t> idx;
    for (int64_t i = lo; i < std::min(n, lo + kBatch); ++i) idx.push_back(i);
    const Tensor logits = model.forward(train::image_batch(data, idx), false, ctx);
    const auto labels = train::label_batch(data, idx);
    for (size_t b = 0; b < idx.size(); ++b) {
      const auto row = static_cast<int64_t>(b);
      int64_t best = 0;
      for (int64_t k = 1; k < logits.dim(1); ++k)
        if (logits(row, k) > logits(row, best)) best = k;
      correct += best == labels[b];
    }
  }
  return n == 0 ? 0.0 : static_cast<double>(correct) / static_cast<double>(n);
}

ImageTrainResult train_image_model(ImageModel& model, const train::ImageDataset& train_set,
                                   std::span<const int64_t> subset, const train::ImageDataset& test,
                                   const ImageTrainOptions& o, const Context& ctx) {
  if (subset.empty()) fail<ValueError>("train_image_model", "the training subset is empty");
  const int64_t batch = std::min<int64_t>(o.batch, static_cast<int64_t>(subset.size()));
  ImageTrainOptions opt = o;
  opt.batch = batch;
  train::AdamW optimizer(model, 0.9, 0.999, 1e-8, o.weight_decay);
  train::FitOptions f;
  f.steps = image_train_steps(opt, static_cast<int64_t>(subset.size()));
  f.lr = o.lr, f.min_lr = o.min_lr, f.clip = o.clip, f.context = &ctx, f.progress = o.progress;
  f.warmup = std::min<int64_t>(
      f.steps, static_cast<int64_t>(o.warmup_fraction * static_cast<double>(f.steps)));
  f.eval_every = o.evaluations > 0 ? std::max<int64_t>(1, f.steps / o.evaluations) : 0;
  f.csv_path = o.csv_path;
  Tensor dlogits;
  BatchOrder order(subset, batch, o.seed);
  auto step = [&](int64_t s) {
    const std::vector<int64_t> idx = order.indices(s);
    Rng aug_rng(mix(o.seed, s, 2));
    const Tensor x = train::image_batch(train_set, idx, o.augment ? &o.augmentation : nullptr,
                                        o.augment ? &aug_rng : nullptr);
    const std::vector<int64_t> y = train::label_batch(train_set, idx);
    const Tensor logits = model.forward(x, true, ctx);
    if (!(dlogits.defined() && dlogits.shape() == logits.shape())) dlogits = Tensor(logits.shape());
    const auto ce = train::cross_entropy(logits, y, dlogits, -100, o.label_smoothing);
    model.backward(dlogits, ctx);
    return train::StepResult{ce.loss, ce.correct, ce.count};
  };
  auto evaluate = [&](int64_t) { return image_accuracy(model, test, o.eval_images, ctx); };
  const train::FitResult fit = train::fit(model, optimizer, f, step, evaluate);
  ImageTrainResult r;
  r.parameters = model.num_parameters();
  r.steps = fit.steps;
  r.examples = fit.steps * batch;
  r.train_size = static_cast<int64_t>(subset.size());
  r.train_seconds = fit.step_seconds;
  r.losses = fit.losses;
  r.eval_steps = fit.eval_steps;
  r.eval_accuracy = fit.eval_metrics;
  r.test_accuracy = image_accuracy(model, test, -1, ctx);
  return r;
}

void save_image_model(const std::string& dir, ImageModelKind kind, const ImageModelConfig& c,
                      const ImageModel& model) {
  std::vector<std::pair<std::string, ConstTensorView>> tensors = model.state_dict();
  io::write_safetensors(dir + "/model.safetensors", tensors, {});
  std::ofstream out(dir + "/config.json");
  out << image_config_json(kind, c) << "\n";
  if (!out) fail<IoError>("save_image_model", "cannot write '", dir, "/config.json'");
}

LoadedImageModel load_image_model(const std::string& dir) {
  std::ifstream in(dir + "/config.json");
  if (!in)
    fail<IoError>("load_image_model", "cannot read '", dir, "/config.json': is '", dir,
                  "' the --out-dir of `attn train fashion-mnist`?");
  std::stringstream text;
  text << in.rdbuf();
  auto [kind, config] = parse_image_config_json(text.str());
  Rng rng(0);
  LoadedImageModel m{kind, config, make_image_model(kind, config, rng)};
  const io::SafetensorsFile weights = io::read_safetensors(dir + "/model.safetensors");
  m.model->load_state_dict(weights.tensors, true);
  return m;
}

}  // namespace attn::examples
