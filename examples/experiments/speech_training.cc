// SPDX-License-Identifier: MIT
// train_speech_model and friends (speech_training.h).
#include "speech_training.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

namespace attn::examples {

namespace {

uint64_t mix(uint64_t seed, int64_t a, uint64_t b) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(a) * 0xBF58476D1CE4E5B9ULL + b;
  z ^= z >> 31;
  return z * 0x94D049BB133111EBULL;
}

Tensor raw_fbank(ConstTensorView samples, int64_t mel_bins, const Context& ctx) {
  Tensor scaled(Shape{samples.dim(0)});
  for (int64_t i = 0; i < samples.dim(0); ++i) scaled.data()[i] = samples(i) * 32768.0f;
  audio::FbankOptions o;
  o.num_mel_bins = static_cast<int>(mel_bins);
  return audio::fbank(scaled.view(), o, ctx);
}

void normalise(Tensor& feats, const SpeechExperimentData& d) {
  const int64_t F = feats.dim(1);
  float* p = feats.data();
  for (int64_t t = 0; t < feats.dim(0); ++t)
    for (int64_t f = 0; f < F; ++f) {
      const auto i = static_cast<size_t>(f);
      p[t * F + f] = (p[t * F + f] - d.mean[i]) * d.inv_std[i];
    }
}

std::vector<int64_t> frame_ids(const train::SynthesizedSpeech& s, int64_t frames,
                               const std::map<std::string, int64_t>& ids) {
  std::vector<int64_t> out;
  for (const std::string& name : train::frame_phonemes(s, frames)) {
    const auto it = ids.find(name);
    out.push_back(it == ids.end() ? 0 : it->second);
  }
  return out;
}

// Utterances padded to the longest: feats (B, T, F), lengths, targets (B·T') with -100 past each
// entry's encoder frames.
struct SpeechBatch {
  Tensor feats;
  std::vector<int64_t> lengths, targets;
};

SpeechBatch make_batch(const std::vector<const Tensor*>& feats,
                       const std::vector<const std::vector<int64_t>*>& labels) {
  int64_t T = 7;
  for (const Tensor* f : feats) T = std::max(T, f->dim(0));
  const int64_t B = static_cast<int64_t>(feats.size()), F = feats[0]->dim(1);
  const int64_t T_out = nn::Conv2dSubsampling4::output_length(T);
  SpeechBatch b;
  b.feats = Tensor::zeros(Shape{B, T, F});
  b.targets.assign(static_cast<size_t>(B * T_out), -100);
  for (int64_t i = 0; i < B; ++i) {
    const Tensor& f = *feats[static_cast<size_t>(i)];
    if (f.numel() > 0)
      std::memcpy(b.feats.data() + i * T * F, f.data(),
                  sizeof(float) * static_cast<size_t>(f.numel()));
    b.lengths.push_back(f.dim(0));
    const auto& l = *labels[static_cast<size_t>(i)];
    for (size_t j = 0; j < l.size() && static_cast<int64_t>(j) < T_out; ++j)
      b.targets[static_cast<size_t>(i * T_out) + j] = l[j];
  }
  return b;
}

// One augmented training example: speed perturbation and noise on the waveform, then SpecAugment.
void augmented_example(const SpeechExperimentData& d, size_t i,
                       const train::SpeechAugmentOptions& a, Rng& rng, const Context& ctx,
                       Tensor& feats, std::vector<int64_t>& labels) {
  const train::SynthesizedSpeech* s = &d.train_speech[i];
  train::SynthesizedSpeech faster;
  if (rng.uniform() < a.speed_probability) {
    faster = train::speed_perturb(*s, rng.uniform(a.min_speed, a.max_speed));
    s = &faster;
  }
  Tensor noisy;
  ConstTensorView samples = s->samples.view();
  if (rng.uniform() < a.noise_probability) {
    noisy = train::add_noise(samples, rng.uniform(a.min_snr_db, a.max_snr_db), rng);
    samples = noisy.view();
  }
  feats = speech_features(samples, d, ctx);
  labels = encoder_frame_labels(frame_ids(*s, feats.dim(0), d.ids));
  if (a.spec_augment) train::spec_augment(feats.view(), a.spec, rng);
}

}  // namespace

std::vector<int64_t> encoder_frame_labels(const std::vector<int64_t>& frame_labels) {
  const auto T = static_cast<int64_t>(frame_labels.size());
  std::vector<int64_t> out;
  for (int64_t j = 0; j < nn::Conv2dSubsampling4::output_length(T); ++j)
    out.push_back(frame_labels[static_cast<size_t>(4 * j + 3)]);
  return out;
}

Tensor speech_features(ConstTensorView samples, const SpeechExperimentData& d, const Context& ctx) {
  Tensor f = raw_fbank(samples, d.mel_bins, ctx);
  normalise(f, d);
  return f;
}

SpeechExperimentData prepare_speech_data(train::SpeechCorpus corpus, int64_t mel_bins,
                                         const Context& ctx) {
  SpeechExperimentData d;
  d.phonemes = corpus.phonemes;
  for (size_t i = 0; i < d.phonemes.size(); ++i) d.ids[d.phonemes[i]] = static_cast<int64_t>(i);
  d.mel_bins = mel_bins;
  std::vector<Tensor> raw_train, raw_test;
  for (auto& u : corpus.utterances) {
    (u.split == "train" ? raw_train : raw_test)
        .push_back(raw_fbank(u.speech.samples.view(), mel_bins, ctx));
    (u.split == "train" ? d.train_labels : d.test_labels)
        .push_back(encoder_frame_labels(u.frame_labels));
    if (u.split == "train") d.train_speech.push_back(std::move(u.speech));
  }
  if (raw_train.empty() || raw_test.empty())
    fail<ValueError>("prepare_speech_data", "need training and test utterances, got ",
                     raw_train.size(), " and ", raw_test.size());
  std::vector<double> sum(static_cast<size_t>(mel_bins)), sq(static_cast<size_t>(mel_bins));
  double n = 0;
  for (const Tensor& f : raw_train)
    for (int64_t t = 0; t < f.dim(0); ++t, ++n)
      for (int64_t b = 0; b < mel_bins; ++b) {
        const auto v = static_cast<double>(f.data()[t * mel_bins + b]);
        sum[static_cast<size_t>(b)] += v;
        sq[static_cast<size_t>(b)] += v * v;
      }
  for (size_t b = 0; b < sum.size(); ++b) {
    const double mean = sum[b] / std::max(1.0, n);
    const double var = std::max(1e-8, sq[b] / std::max(1.0, n) - mean * mean);
    d.mean.push_back(static_cast<float>(mean));
    d.inv_std.push_back(static_cast<float>(1.0 / std::sqrt(var)));
  }
  for (Tensor& f : raw_train) normalise(f, d);
  for (Tensor& f : raw_test) normalise(f, d);
  d.train_feats = std::move(raw_train);
  d.test_feats = std::move(raw_test);
  std::vector<int64_t> counts(d.phonemes.size());
  for (const auto& l : d.train_labels)
    for (int64_t y : l) ++counts[static_cast<size_t>(y)];
  d.majority_class = std::max_element(counts.begin(), counts.end()) - counts.begin();
  int64_t hit = 0, total = 0;
  for (const auto& l : d.test_labels)
    for (int64_t y : l) hit += y == d.majority_class, ++total;
  d.majority_accuracy = total ? static_cast<double>(hit) / static_cast<double>(total) : 0.0;
  return d;
}

std::vector<int64_t> speech_predict(SpeechFrameModel& model, ConstTensorView feats,
                                    const Context& ctx) {
  const std::vector<int64_t> len = {feats.dim(0)};
  const Tensor logits = model.forward(feats.unsqueeze(0), len, false, ctx);
  std::vector<int64_t> out;
  for (int64_t j = 0; j < logits.dim(1); ++j) {
    int64_t best = 0;
    for (int64_t k = 1; k < logits.dim(2); ++k)
      if (logits(0, j, k) > logits(0, j, best)) best = k;
    out.push_back(best);
  }
  return out;
}

double speech_accuracy(SpeechFrameModel& model, const std::vector<Tensor>& feats,
                       const std::vector<std::vector<int64_t>>& labels, const Context& ctx) {
  constexpr size_t kBatch = 16;
  int64_t correct = 0, count = 0;
  for (size_t lo = 0; lo < feats.size(); lo += kBatch) {
    std::vector<const Tensor*> f;
    std::vector<const std::vector<int64_t>*> l;
    for (size_t i = lo; i < std::min(feats.size(), lo + kBatch); ++i) {
      f.push_back(&feats[i]);
      l.push_back(&labels[i]);
    }
    const SpeechBatch b = make_batch(f, l);
    const Tensor logits = model.forward(b.feats.view(), b.lengths, false, ctx);
    const int64_t K = logits.dim(2);
    for (size_t r = 0; r < b.targets.size(); ++r) {
      if (b.targets[r] < 0) continue;
      const float* row = logits.data() + static_cast<int64_t>(r) * K;
      correct += std::max_element(row, row + K) - row == b.targets[r];
      ++count;
    }
  }
  return count ? static_cast<double>(correct) / static_cast<double>(count) : 0.0;
}

SpeechTrainResult train_speech_model(SpeechFrameModel& model, const SpeechExperimentData& d,
                                     const SpeechTrainOptions& o, const Context& ctx) {
  train::AdamW optimizer(model, 0.9, 0.98, 1e-8, o.weight_decay);
  train::FitOptions f;
  f.steps = o.steps;
  f.lr = o.lr, f.min_lr = o.min_lr, f.clip = o.clip, f.context = &ctx, f.progress = o.progress;
  f.warmup = std::min<int64_t>(
      f.steps, static_cast<int64_t>(o.warmup_fraction * static_cast<double>(f.steps)));
  f.eval_every = o.evaluations > 0 ? std::max<int64_t>(1, f.steps / o.evaluations) : 0;
  f.csv_path = o.csv_path;
  const auto n = static_cast<int64_t>(d.train_feats.size());
  Tensor dlogits;
  auto step = [&](int64_t s) {
    Rng rng(mix(o.seed, s, 1));
    std::vector<Tensor> aug_feats(static_cast<size_t>(o.batch));
    std::vector<std::vector<int64_t>> aug_labels(static_cast<size_t>(o.batch));
    std::vector<const Tensor*> feats;
    std::vector<const std::vector<int64_t>*> labels;
    for (int64_t b = 0; b < o.batch; ++b) {
      const auto i = static_cast<size_t>(rng.uniform_int(0, n - 1));
      const auto k = static_cast<size_t>(b);
      if (o.augment.enabled) {
        augmented_example(d, i, o.augment, rng, ctx, aug_feats[k], aug_labels[k]);
        feats.push_back(&aug_feats[k]);
        labels.push_back(&aug_labels[k]);
      } else {
        feats.push_back(&d.train_feats[i]);
        labels.push_back(&d.train_labels[i]);
      }
    }
    const SpeechBatch batch = make_batch(feats, labels);
    const Tensor logits = model.forward(batch.feats.view(), batch.lengths, true, ctx);
    if (!(dlogits.defined() && dlogits.shape() == logits.shape())) dlogits = Tensor(logits.shape());
    const int64_t K = logits.dim(2);
    const auto ce =
        train::cross_entropy(logits.view().reshape(Shape{logits.numel() / K, K}), batch.targets,
                             dlogits.view().reshape(Shape{logits.numel() / K, K}));
    model.backward(dlogits.view(), ctx);
    return train::StepResult{ce.loss, ce.correct, ce.count};
  };
  auto evaluate = [&](int64_t) { return speech_accuracy(model, d.test_feats, d.test_labels, ctx); };
  const train::FitResult fit = train::fit(model, optimizer, f, step, evaluate);
  SpeechTrainResult r;
  r.parameters = model.num_parameters();
  r.steps = fit.steps;
  r.train_seconds = fit.step_seconds;
  r.losses = fit.losses;
  r.eval_steps = fit.eval_steps;
  r.eval_accuracy = fit.eval_metrics;
  r.test_accuracy = fit.eval_metrics.empty() || fit.eval_steps.back() != fit.steps
                        ? speech_accuracy(model, d.test_feats, d.test_labels, ctx)
                        : fit.eval_metrics.back();
  return r;
}

std::vector<double> speech_inference_ms(const std::vector<SpeechFrameModel*>& models,
                                        int64_t frames, int rounds, const Context& ctx) {
  Rng rng(7);
  const std::vector<int64_t> len = {frames};
  std::vector<Tensor> feats;
  for (SpeechFrameModel* model : models) {
    feats.emplace_back(Shape{1, frames, model->config().input_dim});
    for (float& v : feats.back().values()) v = static_cast<float>(rng.normal());
    model->forward(feats.back().view(), len, false, ctx);  // warm-up: scratch, caches, page faults
  }
  std::vector<std::vector<double>> ms(models.size());
  for (int r = 0; r < std::max(1, rounds); ++r)
    for (size_t m = 0; m < models.size(); ++m) {
      const auto t0 = std::chrono::steady_clock::now();
      models[m]->forward(feats[m].view(), len, false, ctx);
      ms[m].push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  std::vector<double> medians;
  for (auto& times : ms) {
    std::sort(times.begin(), times.end());
    medians.push_back(times[times.size() / 2]);
  }
  return medians;
}

std::vector<int64_t> collapse_frames(const std::vector<int64_t>& frame_labels) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < frame_labels.size(); ++i)
    if (frame_labels[i] != 0 && (i == 0 || frame_labels[i] != frame_labels[i - 1]))
      out.push_back(frame_labels[i]);
  return out;
}

int64_t edit_distance(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<int64_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diag = row[0];
    row[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace attn::examples
