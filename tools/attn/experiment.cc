// SPDX-License-Identifier: MIT
// attn experiment rnn-vs-attention: delayed recall at distances D (examples/experiments/recall.h),
// an LSTM and a transformer of about the same size trained for the same steps at each D; held-out
// accuracy and training time per model, as a table, results.csv and accuracy.png in --out-dir.
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>

#include "attn/attn.h"
#include "commands.h"
#include "recall.h"

namespace attn::cli {

namespace {

struct RecallOptions {
  examples::RecallConfig config;
  std::string distances = "10,30,100,300,1000";
  std::string out_dir = "build/experiments/rnn-vs-attention";
  int threads = 0;
  bool quick = false, quiet = false;
  GivenOptions given;
};

void write_outputs(const RecallOptions& o, const std::vector<examples::RecallResult>& results) {
  const std::string csv = o.out_dir + "/results.csv";
  std::ofstream f(csv);
  if (!f) fail<IoError>("--out-dir", "cannot write '", csv, "'");
  f << "model,distance,parameters,steps,test_accuracy,train_seconds,final_loss\n";
  for (const auto& r : results)
    f << examples::recall_model_name(r.model) << "," << r.distance << "," << r.parameters << ","
      << r.steps << "," << r.test_accuracy << "," << r.train_seconds << "," << r.final_loss << "\n";
  if (!f) fail<IoError>("--out-dir", "cannot write '", csv, "'");
  io::LinePlot plot;
  plot.title = "Delayed recall of the key D steps back, " + std::to_string(o.config.steps) +
               " training steps each";
  plot.y_min = 0.0, plot.y_max = 1.0;
  plot.x_label = "distance D (log scale)";
  plot.y_label = "held-out accuracy";
  plot.log_x = true;
  plot.markers = true;  // curves that coincide (the same accuracy) stay apart
  std::vector<double> xs;
  for (auto kind : {examples::RecallModelKind::kLSTM, examples::RecallModelKind::kTransformer}) {
    io::PlotSeries s{examples::recall_model_name(kind), {}, {}};
    for (const auto& r : results)
      if (r.model == kind) {
        s.x.push_back(static_cast<double>(r.distance));
        s.y.push_back(r.test_accuracy);
      }
    xs = s.x;
    plot.series.push_back(std::move(s));
  }
  plot.series.push_back({"chance (1/K)",
                         std::vector<double>(xs.size(), 1.0 / static_cast<double>(o.config.keys)),
                         xs});
  io::write_line_plot(o.out_dir + "/accuracy.png", plot);
}

void run(RecallOptions o) {
  auto& c = o.config;
  if (o.quick) {
    preset(o.given, "--distances", o.distances, "10,30,100");
    preset(o.given, "--steps", c.steps, 500);
  }
  const std::vector<int64_t> distances = parse_int_list("--distances", o.distances);
  for (int64_t d : distances)
    if (d < 1) usage_fail("--distances", "distances must be >= 1, got ", d);
  if (c.steps < 1) usage_fail("--steps", "must be >= 1, got ", c.steps);
  if (c.batch < 1) usage_fail("--batch", "must be >= 1, got ", c.batch);
  if (c.d_model < 1 || c.d_model % c.nhead != 0)
    usage_fail("--d-model", "must be a positive multiple of the ", c.nhead, " heads, got ",
               c.d_model);
  if (std::filesystem::exists(o.out_dir) && !std::filesystem::is_directory(o.out_dir))
    usage_fail("--out-dir", "'", o.out_dir, "' exists and is not a directory");
  std::filesystem::create_directories(o.out_dir);
  Context ctx(
      ContextOptions{.num_threads = checked_threads("experiment", o.threads), .seed = c.seed});
  std::cout << "Delayed recall: a key (1 of " << c.keys << ") then D - 1 distractors then a query; "
            << "answer the key. " << c.steps << " steps of batch " << c.batch << ", width "
            << c.d_model << ", " << ctx.num_threads() << " threads, SIMD " << ops::simd_target()
            << "\nClaim: an RNN struggles to carry information far; self-attention reaches any "
               "distance in one step.\n"
            << std::left << std::setw(13) << "model" << std::right << std::setw(6) << "D"
            << std::setw(8) << "params" << std::setw(10) << "accuracy" << std::setw(10) << "train s"
            << std::setw(11) << "final loss"
            << "\n";
  std::vector<examples::RecallResult> results;
  for (int64_t d : distances)
    for (auto kind : {examples::RecallModelKind::kLSTM, examples::RecallModelKind::kTransformer}) {
      c.distance = d;
      const auto r = examples::run_recall(kind, c, ctx, !o.quiet);
      std::cout << std::left << std::setw(13) << examples::recall_model_name(kind) << std::right
                << std::setw(6) << d << std::setw(8) << r.parameters << std::fixed
                << std::setprecision(3) << std::setw(10) << r.test_accuracy << std::setprecision(1)
                << std::setw(10) << r.train_seconds << std::setprecision(3) << std::setw(11)
                << r.final_loss << "\n"
                << std::flush;
      results.push_back(r);
    }
  write_outputs(o, results);
  std::cout << "wrote " << o.out_dir << "/results.csv and " << o.out_dir << "/accuracy.png\n";
}

}  // namespace

void add_experiment_command(CLI::App& app) {
  CLI::App* exp = app.add_subcommand("experiment", "The lecture's experiments on real training");
  exp->require_subcommand(1);
  add_experiment_images_command(exp);
  add_experiment_speech_command(exp);
  auto o = std::make_shared<RecallOptions>();
  CLI::App* sub = exp->add_subcommand(
      "rnn-vs-attention",
      "Delayed recall at distances D: an LSTM against a transformer of the same size");
  sub->add_option("--distances", o->distances, "Distances D")->capture_default_str();
  sub->add_option("--steps", o->config.steps, "Training steps per model and D")
      ->capture_default_str();
  sub->add_option("--batch", o->config.batch, "Batch")->capture_default_str();
  sub->add_option("--d-model", o->config.d_model, "Width of both models")->capture_default_str();
  sub->add_option("--lr", o->config.lr, "Peak learning rate")->capture_default_str();
  sub->add_option("--seed", o->config.seed, "Seed")->capture_default_str();
  sub->add_option("--threads", o->threads, "Threads (0 = all)")->capture_default_str();
  sub->add_option("--out-dir", o->out_dir, "Where results.csv and accuracy.png go")
      ->capture_default_str();
  sub->add_flag("--quick", o->quick,
                "D in 10,30,100 and 500 steps (make demo, about 30 s); options given as well keep "
                "their values");
  sub->add_flag("--quiet", o->quiet, "No progress bars");
  o->given = given_options(sub);
  sub->callback([o] { run(*o); });
}

}  // namespace attn::cli
