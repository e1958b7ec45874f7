// SPDX-License-Identifier: MIT
// attn experiment speech: the lecture's speech claim on labelled speech. A synthetic espeak-ng
// corpus (held-out voices for testing) trains frame-level phoneme classifiers that differ only in
// their sequence model: full self-attention, truncated windows, streaming chunks, interval sampling
// and LSTMs (examples/experiments/speech_models.h). Per model: frame accuracy on the held-out
// voices, parameters, training time, inference ms and attention FLOPs on 10 s of audio, and the
// phone error rate on the LibriVox clips of pocketsphinx-testdata. Writes results.csv,
// accuracy.png, cost.png and, for one model, the attention map and predictions on a real clip.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>

#include "attn/attn.h"
#include "commands.h"
#include "images_cli.h"
#include "speech_common.h"
#include "speech_training.h"

namespace attn::cli {

namespace {

struct SpeechExperimentOptions {
  train::SpeechDatasetOptions corpus{.utterances = 800};
  examples::SpeechModelConfig model;
  examples::SpeechTrainOptions train;
  std::string models, plot_model = "window16", out_dir = "build/experiments/speech";
  int threads = 0, repeats = 1;
  bool quick = false, no_augment = false, replot = false;
  GivenOptions given;
};

// One training run of a model (model seed = --seed + run; the corpus is the same for all).
struct Run {
  examples::SpeechTrainResult r;
  double inference_ms = 0.0, real_per = -1.0;
};

struct Row {
  examples::SpeechModelSpec spec;
  std::vector<Run> runs;
  double attention_gflops = 0.0;
  double mean(double Run::*field) const {
    double sum = 0.0;
    for (const Run& r : runs) sum += r.*field;
    return sum / static_cast<double>(runs.size());
  }
  double accuracy() const {
    double sum = 0.0;
    for (const Run& r : runs) sum += r.r.test_accuracy;
    return sum / static_cast<double>(runs.size());
  }
  double train_seconds() const {
    double sum = 0.0;
    for (const Run& r : runs) sum += r.r.train_seconds;
    return sum / static_cast<double>(runs.size());
  }
  std::pair<double, double> accuracy_range() const {
    double lo = 1.0, hi = 0.0;
    for (const Run& r : runs)
      lo = std::min(lo, r.r.test_accuracy), hi = std::max(hi, r.r.test_accuracy);
    return {lo, hi};
  }
};

constexpr int64_t kTenSeconds = 1000;  // feature frames

struct RealClip {
  std::string name;
  Tensor feats;                    // (T, F), normalised
  std::vector<int64_t> reference;  // espeak-ng's phonemes of the transcript, no silence
};

// The LibriVox clips with espeak-ng's phonemisation of their transcripts (empty if not installed).
std::vector<RealClip> load_real_clips(const examples::SpeechExperimentData& d, const Context& ctx) {
  std::vector<RealClip> clips;
  const std::vector<std::string> paths = librivox_clips();
  if (paths.empty()) return clips;
  const std::string dir = std::filesystem::path(paths[0]).parent_path().string();
  std::ifstream f(dir + "/transcription");
  std::map<std::string, std::string> text;
  // Lines "<s> words </s> (clip name)".
  for (std::string l; std::getline(f, l);) {
    const auto open = l.find("<s> "), close = l.find(" </s> ("), end = l.rfind(')');
    if (open == std::string::npos || close == std::string::npos || end == std::string::npos ||
        end < close + 7)
      continue;
    text[l.substr(close + 7, end - close - 7)] = l.substr(open + 4, close - open - 4);
  }
  for (const std::string& p : paths) {
    RealClip c;
    c.name = std::filesystem::path(p).stem().string();
    if (!text.count(c.name)) continue;
    const audio::Audio a = audio::load(p);
    c.feats = examples::speech_features(a.samples.view().select(0, 0), d, ctx);
    for (const std::string& ph : train::synthesize(text[c.name]).phonemes) {
      if (ph == train::kSilencePhoneme) continue;
      const auto it = d.ids.find(ph);
      c.reference.push_back(it == d.ids.end() ? -1 : it->second);
    }
    clips.push_back(std::move(c));
  }
  return clips;
}

// Phone errors over all clips / reference phonemes.
double phone_error_rate(examples::SpeechFrameModel& model, const std::vector<RealClip>& clips,
                        const Context& ctx) {
  int64_t errors = 0, total = 0;
  for (const RealClip& c : clips) {
    const auto hyp =
        examples::collapse_frames(examples::speech_predict(model, c.feats.view(), ctx));
    errors += examples::edit_distance(hyp, c.reference);
    total += static_cast<int64_t>(c.reference.size());
  }
  return total ? static_cast<double>(errors) / static_cast<double>(total) : -1.0;
}

// The attention map of the last layer over the first clip, its spectrogram and the model's
// per-frame posteriors, as PNGs, and the predicted and reference phonemes as text.
void write_real_clip_plots(const SpeechExperimentOptions& o, examples::SpeechFrameModel& model,
                           const examples::SpeechExperimentData& d, const RealClip& c,
                           const Context& ctx) {
  const std::string base = o.out_dir + "/real_" + model.spec().name;
  constexpr double kEnc = 0.04, kFeat = 0.01;  // seconds per encoder / feature frame
  const Tensor map =
      model.attention_map(c.feats.view().unsqueeze(0), model.config().layers - 1, ctx);
  float vmax = 0.0f;
  for (float v : map.values()) vmax = std::max(vmax, v);
  io::Heatmap h;
  const std::string clip = "LibriVox clip " + c.name.substr(c.name.rfind('-') + 1);
  h.title = "Layer " + std::to_string(model.config().layers) + " attention (" + model.spec().name +
            ", mean of heads), " + clip;
  h.x_label = "key time (s)";
  h.y_label = "query time (s)";
  h.value_label = "probability";
  h.values = map.view();
  h.vmax = std::max(1e-6f, vmax);
  h.dx = h.dy = kEnc;
  io::write_heatmap(base + "_attention.png", h);
  const Tensor spec_t = Tensor::copy_of(c.feats.view().transpose(0, 1));
  io::Heatmap s;
  s.title = "Normalised log-mel fbank, " + clip;
  s.x_label = "time (s)";
  s.y_label = "mel bin";
  s.value_label = "standardised log energy";
  s.values = spec_t.view();
  s.vmin = -3.0, s.vmax = 3.0;
  s.dx = kFeat;
  s.y_up = true;
  s.height = 420;
  io::write_heatmap(base + "_spectrogram.png", s);
  const std::vector<int64_t> len = {c.feats.dim(0)};
  const Tensor logits = model.forward(c.feats.view().unsqueeze(0), len, false, ctx);
  const int64_t T = logits.dim(1), K = logits.dim(2);
  Tensor post(Shape{K, T});
  for (int64_t t = 0; t < T; ++t) {
    float mx = logits(0, t, 0), sum = 0.0f;
    for (int64_t k = 1; k < K; ++k) mx = std::max(mx, logits(0, t, k));
    for (int64_t k = 0; k < K; ++k) sum += std::exp(logits(0, t, k) - mx);
    for (int64_t k = 0; k < K; ++k) post(k, t) = std::exp(logits(0, t, k) - mx) / sum;
  }
  io::Heatmap p;
  p.title = "Per-frame phoneme posteriors (" + model.spec().name + "), " + clip;
  p.x_label = "time (s)";
  p.y_label = "phoneme id";
  p.value_label = "probability";
  p.values = post.view();
  p.dx = kEnc;
  p.y_up = true;
  p.height = 420;
  io::write_heatmap(base + "_posteriors.png", p);
  std::ofstream txt(base + "_phonemes.txt");
  txt << "# " << c.name << ", model " << model.spec().name << "\n# id phoneme\n";
  for (size_t i = 0; i < d.phonemes.size(); ++i) txt << i << " " << d.phonemes[i] << "\n";
  const auto name = [&](int64_t id) { return id < 0 ? std::string("?") : d.phonemes[size_t(id)]; };
  const auto hyp = examples::collapse_frames(examples::speech_predict(model, c.feats.view(), ctx));
  txt << "# predicted " << hyp.size() << " phonemes, reference " << c.reference.size()
      << ", edit distance " << examples::edit_distance(hyp, c.reference) << "\n";
  txt << "# predicted (collapsed, no silence):\n";
  for (int64_t id : hyp) txt << name(id) << " ";
  txt << "\n# reference (espeak-ng's phonemes of the transcript):\n";
  for (int64_t id : c.reference) txt << name(id) << " ";
  txt << "\n";
}

void write_csv(const SpeechExperimentOptions& o, const std::vector<Row>& rows,
               const examples::SpeechExperimentData& d) {
  const std::string csv = o.out_dir + "/results.csv";
  std::ofstream f(csv);
  if (!f) fail<IoError>("--out-dir", "cannot write '", csv, "'");
  f << "model,run,window,parameters,steps,train_seconds,test_frame_accuracy,inference_ms_10s,"
       "attention_gflops_10s,attention_cost_vs_full,real_speech_per\n";
  double full = 0.0;
  for (const Row& r : rows)
    if (r.spec.name == "full") full = r.attention_gflops;
  for (const Row& row : rows)
    for (size_t i = 0; i < row.runs.size(); ++i) {
      const Run& r = row.runs[i];
      f << row.spec.name << "," << i << "," << row.spec.window << "," << r.r.parameters << ","
        << r.r.steps << "," << r.r.train_seconds << "," << r.r.test_accuracy << ","
        << r.inference_ms << "," << row.attention_gflops << ","
        << (full > 0 ? row.attention_gflops / full : std::nan("")) << "," << r.real_per << "\n";
    }
  f << "majority-class,0,-1,0,0,0," << d.majority_accuracy << ",0,0,0,-1\n";
  if (!f) fail<IoError>("--out-dir", "cannot write '", csv, "'");
}

// The rows `keep` selects as one curve of accuracy against attention GFLOPs, in cost order. A
// single point becomes a short dash (a line needs two points).
io::PlotSeries cost_curve(const std::string& label, const std::vector<Row>& rows,
                          const std::function<bool(const examples::SpeechModelSpec&)>& keep) {
  std::vector<std::pair<double, double>> points;
  for (const Row& r : rows)
    if (r.spec.kind == examples::SpeechModelKind::kAttention && keep(r.spec))
      points.emplace_back(r.attention_gflops, r.accuracy());
  std::sort(points.begin(), points.end());
  if (points.size() == 1)
    points = {{points[0].first * 0.93, points[0].second},
              {points[0].first * 1.07, points[0].second}};
  io::PlotSeries s{label, {}, {}};
  for (const auto& [x, y] : points) s.x.push_back(x), s.y.push_back(y);
  return s;
}

void write_accuracy_plot(const SpeechExperimentOptions& o, const std::vector<Row>& rows,
                         const examples::SpeechExperimentData& d) {
  const auto window_only = [](const examples::SpeechModelSpec& s) {
    return s.mask.dilation == 1 && s.mask.chunk_size == 0;
  };
  io::LinePlot acc;
  acc.title = "Held-out frame accuracy against attention cost, " + std::to_string(o.train.steps) +
              " steps" + (o.repeats > 1 ? ", mean of " + std::to_string(o.repeats) + " runs" : "");
  acc.x_label = "attention GFLOP on 10 s of audio (log scale; full attention is the right end)";
  acc.y_label =
      "frame accuracy (majority class " + std::to_string(d.majority_accuracy).substr(0, 5) + ")";
  acc.log_x = true;
  acc.series.push_back(cost_curve("window ±2 ... ±32, full", rows, window_only));
  acc.series.push_back(cost_curve("dilation 4, 2, full", rows, [](const auto& s) {
    return s.mask.chunk_size == 0 && s.window < 0;
  }));
  acc.series.push_back(cost_curve("dilation 4, 2, 1 within ±16", rows, [](const auto& s) {
    return s.mask.chunk_size == 0 && s.window == 16;
  }));
  for (const Row& r : rows)
    if (r.spec.mask.chunk_size > 0)
      acc.series.push_back(
          cost_curve(r.spec.name, rows, [&](const auto& s) { return s.name == r.spec.name; }));
  double lo = 1e30, hi = 0.0;
  for (const Row& r : rows)
    if (r.attention_gflops > 0)
      lo = std::min(lo, r.attention_gflops), hi = std::max(hi, r.attention_gflops);
  for (const Row& r : rows)
    if (r.spec.kind == examples::SpeechModelKind::kLSTM && hi > 0)
      acc.series.push_back(
          {r.spec.name + " (no attention)", {r.accuracy(), r.accuracy()}, {lo, hi}});
  std::erase_if(acc.series, [](const io::PlotSeries& s) { return s.x.empty(); });
  if (acc.series.empty()) return;
  double y_lo = 1.0, y_hi = 0.0;  // the axis spans the results (to 0.05), so a point shows
  for (const auto& series : acc.series)
    for (double y : series.y) y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
  acc.y_min = std::max(0.0, std::floor(y_lo * 20.0 - 1.0) / 20.0);
  acc.y_max = std::min(1.0, std::ceil(y_hi * 20.0 + 0.5) / 20.0);
  io::write_line_plot(o.out_dir + "/accuracy.png", acc);
}

// Needs full attention and at least two windows; returns whether it wrote the plot.
bool write_cost_plot(const SpeechExperimentOptions& o, const std::vector<Row>& rows) {
  io::PlotSeries cost{"attention FLOPs / full", {}, {}}, ms{"inference ms / full", {}, {}};
  double full_flops = 0.0, full_ms = 0.0, top = 1.05;
  for (const Row& r : rows)
    if (r.spec.name == "full")
      full_flops = r.attention_gflops, full_ms = r.mean(&Run::inference_ms);
  if (full_flops <= 0) return false;
  for (const Row& r : rows)
    if (r.spec.window >= 0 && r.spec.mask.dilation == 1) {
      const auto w = static_cast<double>(r.spec.window);
      cost.x.push_back(w), cost.y.push_back(r.attention_gflops / full_flops);
      ms.x.push_back(w), ms.y.push_back(r.mean(&Run::inference_ms) / full_ms);
      top = std::max(top, 1.5 * ms.y.back());  // room for the legend above the curves
    }
  if (cost.x.size() < 2) return false;
  io::LinePlot c;
  c.title = "A window's cost relative to full attention, 10 s of audio (249 encoder frames)";
  c.x_label = "attention window ±w (encoder frames of 40 ms, log scale)";
  c.y_label = "fraction of full attention";
  c.log_x = true;
  c.y_min = 0.0, c.y_max = top;
  c.series = {cost, ms, {"1/5", {0.2, 0.2}, {cost.x.front(), cost.x.back()}}};
  io::write_line_plot(o.out_dir + "/cost.png", c);
  return true;
}

void print_header(const SpeechExperimentOptions& o, const examples::SpeechExperimentData& d,
                  const Context& ctx) {
  const auto& m = o.model;
  std::cout << "Frame phoneme classification on espeak-ng speech: " << d.train_feats.size()
            << " training utterances, " << d.test_feats.size() << " test utterances by voices "
            << "never heard in training, " << d.phonemes.size() << " phonemes; " << m.input_dim
            << " fbank bins -> Conv2dSubsampling4 (40 ms frames) -> model -> Linear. Attention: "
            << m.layers << " pre-norm layers, d_model " << m.d_model << ", " << m.nhead
            << " heads; " << o.train.steps << " steps of " << o.train.batch << " utterances, "
            << (o.train.augment.enabled ? "noise + speed + SpecAugment" : "no augmentation") << "; "
            << ctx.num_threads() << " threads, SIMD " << ops::simd_target()
            << "\nClaim (the lecture): a frame needs only its neighbourhood, so truncated "
               "attention does about as well as full attention at a fraction of its cost.\n"
            << "majority class ('" << d.phonemes[static_cast<size_t>(d.majority_class)]
            << "'): frame accuracy " << std::fixed << std::setprecision(3) << d.majority_accuracy
            << "\n"
            << std::left << std::setw(20) << "model" << std::right << std::setw(9) << "params"
            << std::setw(10) << "accuracy" << std::setw(16) << (o.repeats > 1 ? "(min-max)" : "")
            << std::setw(9) << "train s" << std::setw(11) << "10 s: ms" << std::setw(12)
            << "attn GFLOP" << std::setw(9) << "real PER"
            << "\n";
}

// --replot: the rows of a finished run, read back from its results.csv (as write_csv wrote it).
std::vector<Row> read_csv(const SpeechExperimentOptions& o, double* majority) {
  const std::string path = o.out_dir + "/results.csv";
  std::ifstream f(path);
  std::string line;
  if (!f || !std::getline(f, line) || line.rfind("model,run,window,parameters,steps,", 0) != 0)
    usage_fail("--replot", "'", path, "' is not the results.csv of `attn experiment speech`");
  std::vector<Row> rows;
  while (std::getline(f, line)) {
    std::vector<std::string> c;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) c.push_back(cell);
    if (c.size() != 11) usage_fail("--replot", "'", path, "': bad row '", line, "'");
    if (c[0] == "majority-class") {
      *majority = std::stod(c[6]);
      continue;
    }
    try {
      if (rows.empty() || rows.back().spec.name != c[0])
        rows.push_back({examples::parse_speech_model(c[0]), {}, std::stod(c[8])});
      Run run;
      run.r.parameters = std::stoll(c[3]), run.r.steps = std::stoll(c[4]);
      run.r.train_seconds = std::stod(c[5]), run.r.test_accuracy = std::stod(c[6]);
      run.inference_ms = std::stod(c[7]), run.real_per = std::stod(c[10]);
      rows.back().runs.push_back(run);
    } catch (const std::exception&) {  // a model name or number that does not parse
      usage_fail("--replot", "'", path, "': bad row '", line, "'");
    }
  }
  return rows;
}

std::vector<examples::SpeechModelSpec> parse_models(const std::string& list) {
  std::vector<std::string> names = examples::default_speech_models();
  if (!list.empty()) {
    names.clear();
    std::stringstream ss(list);
    for (std::string n; std::getline(ss, n, ',');) names.push_back(n);
  }
  std::vector<examples::SpeechModelSpec> specs;
  for (const std::string& n : names) {
    try {
      specs.push_back(examples::parse_speech_model(n));
    } catch (const ValueError& e) {
      usage_fail("--models", e.what());
    }
  }
  return specs;
}

// Each model's inference ms on 10 s of audio, timed in alternation before any training (the time
// does not depend on the weights).
std::vector<double> time_models(const SpeechExperimentOptions& o,
                                const std::vector<examples::SpeechModelSpec>& specs,
                                const Context& ctx) {
  std::vector<std::unique_ptr<examples::SpeechFrameModel>> models;
  std::vector<examples::SpeechFrameModel*> pointers;
  Rng rng(o.train.seed);
  for (const auto& spec : specs) {
    models.push_back(std::make_unique<examples::SpeechFrameModel>(spec, o.model, rng));
    pointers.push_back(models.back().get());
  }
  return examples::speech_inference_ms(pointers, kTenSeconds, 21, ctx);
}

// Trains and tests one model --repeats times; draws the real-clip plots of the first run of
// --plot-model.
Row train_row(const SpeechExperimentOptions& o, const examples::SpeechModelSpec& spec,
              double inference_ms, const examples::SpeechExperimentData& d,
              const std::vector<RealClip>& clips, const Context& ctx) {
  Row row{spec, {}, 0.0};
  for (int i = 0; i < o.repeats; ++i) {
    examples::SpeechTrainOptions t = o.train;
    t.seed = o.train.seed + static_cast<uint64_t>(i);
    Rng rng(t.seed);
    examples::SpeechFrameModel model(spec, o.model, rng);
    Run run{examples::train_speech_model(model, d, t, ctx)};
    run.inference_ms = inference_ms;
    row.attention_gflops =
        model.attention_flops(nn::Conv2dSubsampling4::output_length(kTenSeconds)) * 1e-9;
    if (!clips.empty()) run.real_per = phone_error_rate(model, clips, ctx);
    if (i == 0 && spec.name == o.plot_model && !clips.empty() &&
        spec.kind == examples::SpeechModelKind::kAttention)
      write_real_clip_plots(o, model, d, clips[0], ctx);
    row.runs.push_back(std::move(run));
  }
  return row;
}

void print_row(const SpeechExperimentOptions& o, const Row& row) {
  const auto [lo, hi] = row.accuracy_range();
  std::ostringstream range;
  if (o.repeats > 1) range << std::fixed << std::setprecision(3) << " (" << lo << "-" << hi << ")";
  std::cout << std::left << std::setw(20) << row.spec.name << std::right << std::setw(9)
            << row.runs[0].r.parameters << std::fixed << std::setprecision(3) << std::setw(10)
            << row.accuracy() << std::setw(16) << range.str() << std::setprecision(1)
            << std::setw(9) << row.train_seconds() << std::setw(11) << row.mean(&Run::inference_ms)
            << std::setprecision(3) << std::setw(12) << row.attention_gflops << std::setw(9)
            << row.mean(&Run::real_per) << "\n"
            << std::flush;
}

void run(SpeechExperimentOptions o) {
  if (o.replot) {
    double majority = 0.0;
    const std::vector<Row> rows = read_csv(o, &majority);
    if (rows.empty()) usage_fail("--replot", "'", o.out_dir, "/results.csv' has no models");
    o.train.steps = rows[0].runs[0].r.steps;
    o.repeats = static_cast<int>(rows[0].runs.size());
    examples::SpeechExperimentData d;
    d.majority_accuracy = majority;
    write_accuracy_plot(o, rows, d);
    const bool cost = write_cost_plot(o, rows);
    std::cout << "wrote " << o.out_dir << "/accuracy.png" << (cost ? " and cost.png" : "")
              << " from its results.csv\n";
    return;
  }
  if (o.quick) {
    preset(o.given, "--utterances", o.corpus.utterances, 240);
    preset(o.given, "--steps", o.train.steps, 100);
    o.train.evaluations = 1;
    preset(o.given, "--d-model", o.model.d_model, 64);
    preset(o.given, "--layers", o.model.layers, 2);
    preset(o.given, "--ff", o.model.dim_feedforward, 256);
    preset(o.given, "--models", o.models, "full,window2,window8");
    preset(o.given, "--plot-model", o.plot_model, "window8");
  }
  const std::vector<examples::SpeechModelSpec> specs = parse_models(o.models);
  if (o.corpus.utterances < 10)
    usage_fail("--utterances", "must be >= 10, got ", o.corpus.utterances);
  if (o.train.steps < 1) usage_fail("--steps", "must be >= 1, got ", o.train.steps);
  if (o.repeats < 1) usage_fail("--repeats", "must be >= 1, got ", o.repeats);
  if (o.train.batch < 1) usage_fail("--batch", "must be >= 1, got ", o.train.batch);
  if (o.model.input_dim < 4) usage_fail("--mel-bins", "must be >= 4, got ", o.model.input_dim);
  if (o.model.layers < 1) usage_fail("--layers", "must be >= 1, got ", o.model.layers);
  if (o.model.d_model < 1 || o.model.d_model % o.model.nhead != 0)
    usage_fail("--d-model", "must be a positive multiple of the ", o.model.nhead, " heads, got ",
               o.model.d_model);
  o.train.augment.enabled = !o.no_augment;
  make_out_dir(o.out_dir);
  Context ctx(ContextOptions{.num_threads = checked_threads("experiment", o.threads),
                             .seed = o.train.seed});
  o.corpus.seed = o.train.seed;
  std::cerr << "synthesising " << o.corpus.utterances << " utterances with espeak-ng\n";
  train::ProgressBar bar(std::cerr, o.corpus.utterances, o.train.progress);
  train::SpeechCorpus corpus = train::make_speech_corpus(
      o.corpus, [&](int64_t done, int64_t) { bar.update(done, std::nan("")); });
  bar.finish();
  const examples::SpeechExperimentData d =
      examples::prepare_speech_data(std::move(corpus), o.model.input_dim, ctx);
  o.model.classes = static_cast<int64_t>(d.phonemes.size());
  const std::vector<RealClip> clips = load_real_clips(d, ctx);
  print_header(o, d, ctx);
  const std::vector<double> inference_ms = time_models(o, specs, ctx);
  std::vector<Row> rows;
  for (size_t i = 0; i < specs.size(); ++i) {
    rows.push_back(train_row(o, specs[i], inference_ms[i], d, clips, ctx));
    print_row(o, rows.back());
  }
  write_csv(o, rows, d);
  write_accuracy_plot(o, rows, d);
  const bool cost = write_cost_plot(o, rows);
  bool plotted = false;
  for (const auto& spec : specs)
    plotted |= spec.name == o.plot_model && spec.kind == examples::SpeechModelKind::kAttention;
  std::cout << "wrote " << o.out_dir << "/results.csv, accuracy.png" << (cost ? ", cost.png" : "");
  if (clips.empty())
    std::cout << " (pocketsphinx-testdata is not installed: no real-speech PER)";
  else if (plotted)
    std::cout << ", real_" << o.plot_model << "_{attention,spectrogram,posteriors}.png";
  std::cout << "\n";
}

}  // namespace

void add_experiment_speech_command(CLI::App* exp) {
  auto o = std::make_shared<SpeechExperimentOptions>();
  // The size docs/speech.md ran: about 35 minutes for the 13 models on 2 cores.
  o->model.d_model = 96, o->model.layers = 3, o->model.dim_feedforward = 384;
  o->train.steps = 400;
  CLI::App* sub = exp->add_subcommand(
      "speech", "Truncated vs full self-attention vs LSTM on frame-level phoneme labelling");
  sub->add_option("--models", o->models,
                  "Comma-separated models: full, window<W>, chunk<C>x<L>, dilation<D>[-window<W>], "
                  "lstm-uni, lstm-bi (default: full, window2..32, chunk16x4, dilation2/4 with and "
                  "without window16, both LSTMs)");
  sub->add_option("--utterances", o->corpus.utterances, "Utterances to synthesise (20% test)")
      ->capture_default_str();
  sub->add_option("--steps", o->train.steps, "Training steps per model")->capture_default_str();
  sub->add_option("--batch", o->train.batch, "Utterances per step")->capture_default_str();
  sub->add_option("--lr", o->train.lr, "Peak learning rate")->capture_default_str();
  sub->add_option("--d-model", o->model.d_model, "Attention width")->capture_default_str();
  sub->add_option("--layers", o->model.layers, "Attention layers")->capture_default_str();
  sub->add_option("--ff", o->model.dim_feedforward, "Attention feed-forward width")
      ->capture_default_str();
  sub->add_option("--mel-bins", o->model.input_dim, "fbank bins")->capture_default_str();
  sub->add_option("--seed", o->train.seed, "Seed of the corpus, models and batches")
      ->capture_default_str();
  sub->add_option("--threads", o->threads, "Threads (0 = all)")->capture_default_str();
  sub->add_option("--repeats", o->repeats,
                  "Training runs per model (model seeds --seed, --seed + 1, ...; one corpus)")
      ->capture_default_str();
  sub->add_option("--plot-model", o->plot_model,
                  "The model whose attention map and predictions on a real clip are drawn")
      ->capture_default_str();
  sub->add_option("--out-dir", o->out_dir, "Where results.csv and the plots go")
      ->capture_default_str();
  sub->add_flag("--replot", o->replot,
                "Only redraw accuracy.png and cost.png from the results.csv in --out-dir");
  sub->add_flag("--no-augment", o->no_augment, "No noise, speed perturbation or SpecAugment");
  sub->add_flag("--quick", o->quick,
                "240 utterances, 100 steps, width 64, 2 layers, full/window2/window8 (make demo); "
                "options given as well keep their values");
  sub->add_flag(
      "--quiet", [o](int64_t) { o->train.progress = false; }, "No progress bars");
  o->given = given_options(sub);
  sub->callback([o] { run(*o); });
}

}  // namespace attn::cli
