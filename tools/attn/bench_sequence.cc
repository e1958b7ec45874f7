// SPDX-License-Identifier: MIT
// attn bench sequence-models: the lecture's RNN-versus-self-attention comparison as numbers. One
// LSTM layer, one GRU layer, one full self-attention layer (MultiheadAttention) and one truncated
// (±W window) self-attention layer, all at width C = --d-model on (B, T, C) inputs: ms forward and
// forward+backward on each thread count, the speed-up from the first thread count to the last,
// and the peak memory each case adds. An RNN's T steps run one after another (only the work inside
// a step is parallel); attention's T positions run at once, at O(T²) cost for the full layer and
// O(T·W) for the truncated one.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "attn/attn.h"
#include "bench_util.h"
#include "commands.h"

namespace attn::cli {

namespace {

struct SequenceBenchOptions {
  std::string seq = "100,300,1000,3000", threads = "1,2";
  int64_t d_model = 256, batch = 8, heads = 4, window = 16;
  bool backward = false, json = false;
  int repeats = 3;
  std::string plot = "build/bench/sequence-models.png";
  std::string models = "lstm,gru,attention,truncated";
};

// One model ready to time: forward alone, and forward + backward (a training step without the
// optimiser).
struct Runner {
  std::function<void(const Context&)> forward, train;
};

struct Case {
  std::unique_ptr<nn::Module> module;
  Runner run;
};

Case make_case(const std::string& model, const SequenceBenchOptions& o, const Tensor& x,
               const Tensor& dout) {
  Rng rng(7);
  const int64_t C = o.d_model;
  if (model == "lstm" || model == "gru") {
    const nn::RnnOptions ro{.input_size = C, .hidden_size = C, .batch_first = true};
    std::unique_ptr<nn::RNNBase> m;
    if (model == "lstm")
      m = std::make_unique<nn::LSTM>(ro, rng);
    else
      m = std::make_unique<nn::GRU>(ro, rng);
    nn::RNNBase* r = m.get();
    Runner run{[r, &x](const Context& ctx) { r->forward(x, {}, {}, {}, nullptr, ctx); },
               [r, &x, &dout](const Context& ctx) {
                 nn::RNNBase::Cache cache;
                 r->forward(x, {}, {}, {}, &cache, ctx);
                 r->backward(dout, {}, {}, cache, ctx);
               }};
    return {std::move(m), run};
  }
  auto m = std::make_unique<nn::MultiheadAttention>(C, o.heads, true, rng);
  nn::AttentionOptions opts;
  if (model == "truncated") opts.mask.window_left = opts.mask.window_right = o.window;
  nn::MultiheadAttention* a = m.get();
  Runner run{[a, &x, opts](const Context& ctx) { a->forward(x, x, x, opts, nullptr, ctx); },
             [a, &x, &dout, opts](const Context& ctx) {
               nn::MultiheadAttention::Cache cache;
               a->forward(x, x, x, opts, &cache, ctx);
               a->backward(dout, cache, ctx);
             }};
  return {std::move(m), run};
}

std::string label(const std::string& model, const SequenceBenchOptions& o) {
  if (model == "lstm") return "LSTM";
  if (model == "gru") return "GRU";
  if (model == "attention") return "full attention";
  return "truncated attention ±" + std::to_string(o.window);
}

// s left-aligned in `width` columns, counting characters rather than UTF-8 bytes ("±").
std::string pad(const std::string& s, size_t width) {
  size_t chars = 0;
  for (unsigned char ch : s) chars += (ch & 0xC0) != 0x80;
  return s + std::string(width > chars ? width - chars : 1, ' ');
}

struct Row {
  std::string model;
  int64_t T;
  std::vector<double> fwd_ms, train_ms;  // per thread count
  double peak_mib;
};

void print_header(const SequenceBenchOptions& o, const std::vector<int64_t>& threads) {
  std::cout << "machine: SIMD " << ops::simd_target() << "; B=" << o.batch << " C=" << o.d_model
            << " heads=" << o.heads << " (attention), truncated window ±" << o.window
            << "; median of " << o.repeats
            << " runs after a warm-up; peak MiB: resident memory a "
               "case adds at its peak\n"
            << pad("model", 24) << std::right << std::setw(6) << "T";
  for (const char* pass : {"fwd", "fwd+bwd"}) {
    if (std::string(pass) == "fwd+bwd" && !o.backward) continue;
    for (int64_t t : threads)
      std::cout << std::setw(16) << (std::string(pass) + " ms " + std::to_string(t) + "T");
    std::cout << std::setw(9) << "speedup";
  }
  std::cout << std::setw(10) << "peak MiB"
            << "\n";
}

void print_row(const Row& r, const SequenceBenchOptions& o) {
  std::cout << pad(label(r.model, o), 24) << std::right << std::setw(6) << r.T << std::fixed;
  auto group = [](const std::vector<double>& ms) {
    for (double v : ms) std::cout << std::setprecision(v < 10 ? 2 : 1) << std::setw(16) << v;
    std::cout << std::setprecision(2) << std::setw(8) << ms.front() / ms.back() << "x";
  };
  group(r.fwd_ms);
  if (!r.train_ms.empty()) group(r.train_ms);
  std::cout << std::setprecision(1) << std::setw(10) << r.peak_mib << "\n" << std::flush;
}

void write_plot(const SequenceBenchOptions& o, const std::vector<Row>& rows,
                const std::vector<std::string>& models, int64_t threads) {
  io::LinePlot plot;
  plot.title = std::string("One layer, B=") + std::to_string(o.batch) +
               " C=" + std::to_string(o.d_model) + ", " + std::to_string(threads) +
               " threads: " + (o.backward ? "forward + backward" : "forward");
  plot.x_label = "sequence length T";
  plot.y_label = "ms (log scale)";
  plot.log_x = plot.log_y = true;
  for (const std::string& m : models) {
    io::PlotSeries s{label(m, o), {}, {}};
    for (const Row& r : rows)
      if (r.model == m) {
        s.x.push_back(static_cast<double>(r.T));
        s.y.push_back(o.backward ? r.train_ms.back() : r.fwd_ms.back());
      }
    plot.series.push_back(std::move(s));
  }
  io::write_line_plot(o.plot, plot);
}

void run_sequence_bench(const SequenceBenchOptions& o, const GivenOptions& given) {
  const std::vector<int64_t> seqs = parse_int_list("--seq", o.seq),
                             threads = parse_int_list("--threads", o.threads);
  for (int64_t T : seqs)
    if (T < 1) usage_fail("--seq", "lengths must be >= 1, got ", T);
  for (int64_t t : threads)
    if (t < 1) usage_fail("--threads", "thread counts must be >= 1, got ", t);
  if (o.batch < 1) usage_fail("--batch", "must be >= 1, got ", o.batch);
  if (o.window < 0) usage_fail("--window", "must be >= 0, got ", o.window);
  if (o.repeats < 1) usage_fail("--repeats", "must be >= 1, got ", o.repeats);
  std::vector<std::string> models;
  {
    std::stringstream ss(o.models);
    for (std::string m; std::getline(ss, m, ',');) {
      if (m != "lstm" && m != "gru" && m != "attention" && m != "truncated")
        usage_fail("--models", "unknown model '", m,
                   "'; choose from lstm, gru, attention, truncated");
      models.push_back(m);
    }
  }
  // Options that shape only some models: given without them, they would be ignored silently.
  auto uses = [&](const char* m) {
    return std::find(models.begin(), models.end(), m) != models.end();
  };
  if (given("--window") && !uses("truncated"))
    usage_fail("--window", "shapes only the truncated model, which --models leaves out");
  if (given("--heads") && !uses("attention") && !uses("truncated"))
    usage_fail("--heads", "shapes only the attention models, which --models leaves out");
  if (uses("attention") || uses("truncated")) check_width_and_heads(o.d_model, o.heads);
  std::vector<std::unique_ptr<Context>> contexts;
  for (int64_t t : threads)
    contexts.push_back(std::make_unique<Context>(ContextOptions{
        .num_threads = checked_threads("bench sequence-models", static_cast<int>(t))}));
  if (!o.json) print_header(o, threads);
  // One untimed pass of every model first: the first model a process ran was up to 2x slower than
  // the same case later (allocator and cache state). At twice the shortest T its buffers fall in
  // other size classes of the buffer pool than that case's, whose peak memory still counts them.
  {
    Rng rng(1);
    const int64_t T = 2 * *std::min_element(seqs.begin(), seqs.end());
    const Tensor x = random_normal(Shape{o.batch, T, o.d_model}, rng),
                 dout = random_normal(Shape{o.batch, T, o.d_model}, rng);
    for (const std::string& model : models) {
      Case c = make_case(model, o, x, dout);
      for (const auto& ctx : contexts) c.run.train(*ctx);
    }
  }
  std::vector<Row> rows;
  nlohmann::json out = nlohmann::json::array();
  for (int64_t T : seqs)
    for (const std::string& model : models) {
      Rng rng(1);
      const Tensor x = random_normal(Shape{o.batch, T, o.d_model}, rng),
                   dout = random_normal(Shape{o.batch, T, o.d_model}, rng);
      Case c = make_case(model, o, x, dout);
      Row r{model, T, {}, {}, 0.0};
      const double rss_before = status_mib("VmRSS:");
      reset_peak_rss();
      for (const auto& ctx : contexts) {
        r.fwd_ms.push_back(median_ms(o.repeats, [&] { c.run.forward(*ctx); }));
        if (o.backward) r.train_ms.push_back(median_ms(o.repeats, [&] { c.run.train(*ctx); }));
      }
      r.peak_mib = peak_rss_mib() - rss_before;
      if (!o.json) print_row(r, o);
      for (size_t i = 0; i < threads.size(); ++i)
        out.push_back(
            {{"model", model},
             {"T", T},
             {"threads", threads[i]},
             {"fwd_ms", r.fwd_ms[i]},
             {"fwd_bwd_ms", o.backward ? nlohmann::json(r.train_ms[i]) : nlohmann::json()},
             {"peak_mib", r.peak_mib},
             {"batch", o.batch},
             {"d_model", o.d_model},
             {"simd", ops::simd_target()}});
      rows.push_back(std::move(r));
    }
  if (o.json) std::cout << out.dump(1) << "\n";
  if (!o.plot.empty()) {
    const std::filesystem::path dir = std::filesystem::path(o.plot).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir);
    write_plot(o, rows, models, threads.back());
    if (!o.json) std::cout << "plot: " << o.plot << "\n";
  }
}

}  // namespace

void add_bench_sequence_models_command(CLI::App* bench) {
  auto o = std::make_shared<SequenceBenchOptions>();
  CLI::App* sub = bench->add_subcommand(
      "sequence-models",
      "LSTM, GRU, full and truncated self-attention layers at the same width: ms against T, "
      "thread speed-up, peak memory, and a log-log plot");
  sub->add_option("--seq", o->seq, "Sequence lengths T")->capture_default_str();
  sub->add_option("--d-model", o->d_model, "Model width C (LSTM/GRU hidden size, attention width)")
      ->capture_default_str();
  sub->add_option("--batch", o->batch, "Batch B")->capture_default_str();
  sub->add_option("--heads", o->heads, "Attention heads")->capture_default_str();
  sub->add_option("--window", o->window, "Truncated attention sees ±window positions")
      ->capture_default_str();
  sub->add_option("--threads", o->threads, "Thread counts to compare, e.g. 1,2")
      ->capture_default_str();
  sub->add_option("--models", o->models, "Which of lstm,gru,attention,truncated")
      ->capture_default_str();
  sub->add_flag("--backward", o->backward, "Also time forward + backward");
  sub->add_flag("--json", o->json, "Print JSON rows instead of a table");
  sub->add_option("--repeats", o->repeats, "Timed runs per case")->capture_default_str();
  sub->add_option("--plot", o->plot, "PNG of time against T (log axes); '' for none")
      ->capture_default_str();
  sub->callback([o, sub] { run_sequence_bench(*o, given_options(sub)); });
}

}  // namespace attn::cli
