// SPDX-License-Identifier: MIT
// attn bench speech: the speech front end and encoder on 10 s of real speech (the LibriVox clips of
// pocketsphinx-testdata, concatenated and cut to --seconds), for each thread count:
//   fbank     Kaldi fbank, 80 bins (bench/compare_torchaudio.py sets torchaudio beside it)
//   encoder   a random SpeechEncoder (12 layers, d_model 256, 4 heads, FFN 1024 by default) on the
//             1000 feature frames, offline under full attention, a window of ±16 encoder frames and
//             chunks of 16 with 4 left chunks, and streamed (100 ms pieces of audio through
//             StreamingFbank and StreamingEncoder with the same chunk mask): ms, attention GFLOP
//             (4·C flops per visible query-key pair and layer: q·k and p·v) and the real-time
//             factor (compute time / audio time).
// Medians of --repeats runs after a warm-up; --json for scripts.
#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "attn/attn.h"
#include "bench_util.h"
#include "commands.h"
#include "speech_common.h"

namespace attn::cli {

namespace {

struct SpeechBenchOptions {
  std::string threads = "1,2";
  int repeats = 3;
  double seconds = 10.0;
  int64_t layers = 12, d_model = 256, heads = 4, ff = 1024, chunk = 16, left_chunks = 4,
          window = 16;
  bool json = false;
  std::string simd_target;
  std::string wide_vectors = "auto";  // fbank's 512-bit vectors: auto, allow, avoid
};

// 16 kHz samples at int16 scale: the clips, concatenated and cut to `seconds` (looped if short).
Tensor speech_audio(double seconds, std::string* source) {
  const std::vector<std::string> clips = librivox_clips();
  const auto n = static_cast<int64_t>(seconds * 16000.0);
  Tensor out(Shape{n});
  if (clips.empty()) {  // no real speech installed: noise, and say so
    *source = "noise (pocketsphinx-testdata is not installed)";
    Rng rng(1);
    for (float& v : out.values()) v = static_cast<float>(1000.0 * rng.normal());
    return out;
  }
  *source = "LibriVox clips of pocketsphinx-testdata";
  const Tensor all = load_speech_samples(clips);
  for (int64_t i = 0; i < n; ++i) out(i) = all(i % all.dim(0));
  return out;
}

double attention_gflop(const ops::AttentionMask& m, int64_t T, int64_t C, int64_t layers) {
  double pairs = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    const auto [lo, hi] = m.key_interval(0, t, T);
    pairs += static_cast<double>(std::max<int64_t>(0, hi - lo + 1));
  }
  return pairs * 4.0 * static_cast<double>(C * layers) * 1e-9;
}

struct StreamResult {
  double ms = 0.0, p50_chunk_ms = 0.0, max_chunk_ms = 0.0;
};

// The whole audio streamed in 100 ms pieces: fbank and encoder, as `attn stream` runs them.
StreamResult stream_once(nn::SpeechEncoder& model, const audio::FbankOptions& fo,
                         const Tensor& samples, int64_t chunk, int64_t left, const Context& ctx) {
  using Clock = std::chrono::steady_clock;
  audio::StreamingFbank fbank(fo, ctx);
  nn::StreamingEncoder enc(model, chunk, left, ctx);
  std::vector<double> chunk_ms;
  StreamResult r;
  const int64_t piece = 1600;
  for (int64_t pos = 0; pos < samples.dim(0); pos += piece) {
    const int64_t n = std::min(piece, samples.dim(0) - pos);
    const auto start = Clock::now();
    const Tensor f = fbank.push(std::span<const float>(samples.data() + pos, size_t(n)));
    const Tensor y = enc.push(f.view());
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    r.ms += ms;
    if (y.dim(0) > 0) chunk_ms.push_back(ms / double(y.dim(0) / chunk));
  }
  const auto start = Clock::now();
  (void)enc.push(fbank.flush().view());  // the frame fbank held back (frames go in pairs)
  enc.flush();
  r.ms += std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  std::sort(chunk_ms.begin(), chunk_ms.end());
  if (!chunk_ms.empty()) {
    r.p50_chunk_ms = chunk_ms[chunk_ms.size() / 2];
    r.max_chunk_ms = chunk_ms.back();
  }
  return r;
}

nlohmann::json bench_threads(const SpeechBenchOptions& o, int threads, nn::SpeechEncoder& model,
                             const Tensor& samples) {
  Context ctx(ContextOptions{.num_threads = checked_threads("bench speech", threads)});
  audio::FbankOptions fo;
  fo.num_mel_bins = static_cast<int>(model.config().input_dim);
  const double fbank_ms =
      median_ms(o.repeats, [&] { (void)audio::fbank(samples.view(), fo, ctx); });
  const Tensor feats = audio::fbank(samples.view(), fo, ctx);
  const int64_t T = nn::Conv2dSubsampling4::output_length(feats.dim(0));
  ops::AttentionMask window;
  window.window_left = window.window_right = o.window;
  const std::vector<std::pair<std::string, ops::AttentionMask>> masks = {
      {"full", {}},
      {"window ±" + std::to_string(o.window), window},
      {"chunk " + std::to_string(o.chunk) + ", " + std::to_string(o.left_chunks) + " left",
       nn::streaming_mask(o.chunk, o.left_chunks)}};
  nlohmann::json j = {{"threads", ctx.num_threads()},
                      {"fbank_ms", fbank_ms},
                      {"feature_frames", feats.dim(0)},
                      {"encoder_frames", T}};
  for (const auto& [name, mask] : masks) {
    const double ms = median_ms(
        o.repeats, [&] { (void)model.forward(feats.view().unsqueeze(0), mask, nullptr, ctx); });
    j["encoder"].push_back({{"mask", name},
                            {"ms", ms},
                            {"attention_gflop", attention_gflop(mask, T, model.d_model(),
                                                                model.config().num_layers)}});
  }
  std::vector<StreamResult> runs;
  for (int r = 0; r < o.repeats + 1; ++r)
    runs.push_back(stream_once(model, fo, samples, o.chunk, o.left_chunks, ctx));
  std::sort(runs.begin() + 1, runs.end(),
            [](const StreamResult& a, const StreamResult& b) { return a.ms < b.ms; });
  const StreamResult& s = runs[1 + runs.size() / 2 - 1];
  const double audio_ms = double(samples.dim(0)) / 16.0;
  j["stream"] = {{"ms", s.ms},
                 {"rtf", s.ms / audio_ms},
                 {"chunk_latency_p50_ms", s.p50_chunk_ms},
                 {"chunk_latency_max_ms", s.max_chunk_ms},
                 {"attention_gflop", attention_gflop(nn::streaming_mask(o.chunk, o.left_chunks), T,
                                                     model.d_model(), model.config().num_layers)}};
  return j;
}

void print_table(const SpeechBenchOptions& o, const nlohmann::json& all) {
  std::cout << "machine: SIMD " << all["simd"].get<std::string>() << " (fbank's kernels "
            << all["features_simd"].get<std::string>() << "), BLAS core "
            << all["blas_core"].get<std::string>() << "\naudio: " << all["seconds"].get<double>()
            << " s of " << all["source"].get<std::string>() << "\nmodel: " << o.layers
            << " layers, d_model " << o.d_model << ", " << o.heads << " heads, FFN " << o.ff << ", "
            << all["parameters"].get<int64_t>() << " parameters (random weights)\n"
            << std::fixed << std::setprecision(2);
  for (const auto& r : all["runs"]) {
    std::cout << "\n"
              << r["threads"].get<int>() << " thread(s): fbank of "
              << r["feature_frames"].get<int64_t>() << " frames " << r["fbank_ms"].get<double>()
              << " ms; encoder on " << r["encoder_frames"].get<int64_t>() << " frames:\n";
    std::cout << "  " << std::left << std::setw(24) << "mask" << std::right << std::setw(10) << "ms"
              << std::setw(14) << "attn GFLOP" << std::setw(8) << "RTF"
              << "\n";
    for (const auto& e : r["encoder"])
      std::cout << "  " << std::left << std::setw(24) << e["mask"].get<std::string>() << std::right
                << std::setw(10) << e["ms"].get<double>() << std::setw(14) << std::setprecision(3)
                << e["attention_gflop"].get<double>() << std::setw(8) << std::setprecision(4)
                << e["ms"].get<double>() / (all["seconds"].get<double>() * 1e3)
                << std::setprecision(2) << "\n";
    const auto& s = r["stream"];
    std::cout << "  " << std::left << std::setw(24) << "streaming (with fbank)" << std::right
              << std::setw(10) << s["ms"].get<double>() << std::setw(14) << std::setprecision(3)
              << s["attention_gflop"].get<double>() << std::setw(8) << std::setprecision(4)
              << s["rtf"].get<double>() << std::setprecision(2) << "   per-chunk latency p50 "
              << s["chunk_latency_p50_ms"].get<double>() << " ms, max "
              << s["chunk_latency_max_ms"].get<double>() << " ms\n";
  }
}

void run(const SpeechBenchOptions& o) {
  if (o.repeats < 1) usage_fail("--repeats", "must be >= 1, got ", o.repeats);
  if (!(o.seconds >= 1.0 && o.seconds <= 600.0))
    usage_fail("--seconds", "must be in [1, 600], got ", o.seconds);
  apply_simd_target(o.simd_target);
  audio::set_feature_wide_vectors(audio::parse_wide_vectors(o.wide_vectors));
  nn::SpeechEncoderConfig c;
  c.num_layers = o.layers;
  c.layer.d_model = o.d_model;
  c.layer.nhead = o.heads;
  c.layer.dim_feedforward = o.ff;
  c = nn::parse_speech_encoder_config(nn::speech_encoder_config_to_json(c), "the options");
  Rng rng(1);
  nn::SpeechEncoder model(c, rng);
  model.set_training(false);
  std::string source;
  const Tensor samples = speech_audio(o.seconds, &source);
  nlohmann::json all = {{"simd", ops::simd_target()},
                        {"features_simd", audio::feature_simd_target()},
                        {"blas_core", ops::blas_core()},
                        {"seconds", o.seconds},
                        {"source", source},
                        {"parameters", model.num_parameters()},
                        {"runs", nlohmann::json::array()}};
  for (int64_t t : parse_int_list("--threads", o.threads))
    all["runs"].push_back(bench_threads(o, static_cast<int>(t), model, samples));
  if (o.json) {
    std::cout << all.dump() << "\n";
    return;
  }
  print_table(o, all);
}

}  // namespace

void add_bench_speech_command(CLI::App* bench) {
  auto o = std::make_shared<SpeechBenchOptions>();
  CLI::App* sub = bench->add_subcommand(
      "speech", "fbank and the speech encoder (full, window, chunk, streaming) on 10 s of speech");
  sub->add_option("--threads", o->threads, "Thread counts to run, e.g. 1,2")->capture_default_str();
  sub->add_option("--repeats", o->repeats, "Timed runs per case (median)")->capture_default_str();
  sub->add_option("--seconds", o->seconds, "Audio length")->capture_default_str();
  sub->add_option("--layers", o->layers, "Encoder layers")->capture_default_str();
  sub->add_option("--d-model", o->d_model, "Model width")->capture_default_str();
  sub->add_option("--heads", o->heads, "Attention heads")->capture_default_str();
  sub->add_option("--ff", o->ff, "Feed-forward width")->capture_default_str();
  sub->add_option("--chunk", o->chunk, "Chunk size (encoder frames)")->capture_default_str();
  sub->add_option("--left-chunks", o->left_chunks, "Left chunks")->capture_default_str();
  sub->add_option("--window", o->window, "Window ± (encoder frames)")->capture_default_str();
  add_simd_target_option(sub, o->simd_target);
  sub->add_option("--fbank-wide-vectors", o->wide_vectors,
                  "fbank's 512-bit vectors: auto (not on Intel cores that lower their clock for "
                  "them), allow, avoid")
      ->check(CLI::IsMember({"auto", "allow", "avoid"}))
      ->capture_default_str();
  sub->add_flag("--json", o->json, "One JSON line");
  sub->callback([o] { run(*o); });
}

}  // namespace attn::cli
