// SPDX-License-Identifier: MIT
// attn fbank (features of a recording, with a spectrogram PNG), attn speech new-model / encode (a
// speech encoder, offline, under any mask) and attn stream (the same encoder on a stream, chunk by
// chunk, with bounded caches): docs/speech.md.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "attn/attn.h"
#include "bench_util.h"
#include "commands.h"
#include "mask_flags.h"
#include "speech_common.h"

namespace attn::cli {

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// ------------------------------------------------------------------------------------- fbank

struct FbankCliOptions {
  std::vector<std::string> wavs;
  std::string out, png, kind = "kaldi";
  int bins = 80, threads = 0;
  bool quiet = false;
};

void write_spectrogram(const std::string& path, const Tensor& feats, const std::string& kind,
                       const std::string& source) {
  io::Heatmap h;
  const Tensor bins_by_time = Tensor::copy_of(feats.view().transpose(0, 1));  // (bins, T)
  h.values = bins_by_time.view();
  float hi = bins_by_time.values()[0];
  for (float v : bins_by_time.values()) hi = std::max(hi, v);
  // Kaldi's log floor (log ε ≈ -15.9 in silence) would take half the colour range: start at the
  // 2nd percentile instead.
  std::vector<float> sorted(bins_by_time.values().begin(), bins_by_time.values().end());
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 50, sorted.end());
  h.vmin = sorted[sorted.size() / 50];
  h.vmax = double(hi) > h.vmin ? double(hi) : h.vmin + 1.0;
  h.dx = 0.01;    // 10 ms frames
  h.x0 = 0.0125;  // the first frame's centre (25 ms window)
  h.y_up = true;
  h.title =
      (kind == "kaldi" ? "Kaldi log-mel fbank" : "Whisper log-mel") + std::string(" of ") + source;
  h.x_label = "time (s)";
  h.y_label = "mel bin";
  h.value_label = kind == "kaldi" ? "log power" : "log10 (scaled)";
  h.width = 1200;
  h.height = 640;
  io::write_heatmap(path, h);
}

void run_fbank(const FbankCliOptions& o) {
  Context ctx(ContextOptions{.num_threads = checked_threads("fbank", o.threads)});
  if (o.kind != "kaldi" && o.kind != "whisper")
    usage_fail("--kind", "must be kaldi or whisper, got '", o.kind, "'");
  if (o.bins < 4 || o.bins > 512) usage_fail("--bins", "must be in [4, 512], got ", o.bins);
  Tensor samples = load_speech_samples(o.wavs);  // int16 scale
  const auto start = Clock::now();
  Tensor feats;
  if (o.kind == "kaldi") {
    audio::FbankOptions f;
    f.num_mel_bins = o.bins;
    feats = audio::fbank(samples.view(), f, ctx);
  } else {
    for (float& v : samples.values()) v /= 32768.0f;  // Whisper takes [-1, 1]
    audio::WhisperOptions w;
    w.n_mels = o.bins;
    feats = audio::whisper_log_mel(samples.view(), w, ctx);
  }
  const double ms = ms_since(start);
  if (!o.out.empty()) io::write_npy(o.out, feats.view());
  if (!o.png.empty() && feats.dim(0) > 0) {
    std::string source = std::filesystem::path(o.wavs[0]).filename().string();
    if (o.wavs.size() > 1) source += " + " + std::to_string(o.wavs.size() - 1) + " more";
    write_spectrogram(o.png, feats, o.kind, source);
  }
  if (!o.quiet)
    std::cout << o.kind << " features " << feats.shape().str() << " of "
              << double(samples.dim(0)) / 16000.0 << " s in " << ms << " ms"
              << (o.out.empty() ? "" : " -> " + o.out) << (o.png.empty() ? "" : ", " + o.png)
              << "\n";
}

// ---------------------------------------------------------------------------- speech new-model

struct NewModelOptions {
  std::string out;
  int64_t layers = 12, d_model = 256, heads = 4, ff = 1024, input_dim = 80;
  uint64_t seed = 0;
  bool post_norm = false;
};

void run_new_model(const NewModelOptions& o) {
  nn::SpeechEncoderConfig c;
  c.num_layers = o.layers;
  c.input_dim = o.input_dim;
  c.layer.d_model = o.d_model;
  c.layer.nhead = o.heads;
  c.layer.dim_feedforward = o.ff;
  c.layer.norm_first = !o.post_norm;
  // Validate through the parser, so the command line gets the config file's messages.
  c = nn::parse_speech_encoder_config(nn::speech_encoder_config_to_json(c), "the options");
  Rng rng(o.seed);
  nn::SpeechEncoder model(c, rng);
  nn::save_speech_encoder(o.out, model);
  std::cout << "wrote " << o.out << "/config.json and model.safetensors: " << c.num_layers
            << " layers, d_model " << c.layer.d_model << ", " << model.num_parameters()
            << " parameters (random, seed " << o.seed << ")\n";
}

// ------------------------------------------------------------------------------ speech encode

struct SpeechEncodeOptions {
  std::vector<std::string> wavs;
  std::string model, out;
  MaskFlags mask;
  int64_t left_chunks = -1;
  CLI::Option* left_chunks_opt = nullptr;  // not given: --chunk SIZE[,LEFT] decides
  int threads = 0;
  bool quiet = false;
};

// --left-chunks of attn stream and attn speech encode: the chunks of left context each chunk sees.
void check_left_chunks(int64_t left_chunks) {
  if (left_chunks < -1)
    usage_fail("--left-chunks", "must be >= 0, or -1 for all, got ", left_chunks);
}

void run_speech_encode(const SpeechEncodeOptions& o) {
  Context ctx(ContextOptions{.num_threads = checked_threads("speech encode", o.threads)});
  SpeechModel m = load_speech_model(o.model);
  ops::AttentionMask mask = o.mask.build(m.encoder->config().layer.nhead);
  const bool left_chunks_given = o.left_chunks_opt->count() > 0;
  if (left_chunks_given) {  // --chunk C --left-chunks L, as attn stream spells it
    if (mask.chunk_size == 0) usage_fail("--left-chunks", "needs --chunk");
    if (o.mask.chunk.find(',') != std::string::npos)
      usage_fail("--left-chunks", "give the left chunks once: --chunk ", o.mask.chunk,
                 " already has them");
    check_left_chunks(o.left_chunks);
    mask.num_left_chunks = o.left_chunks;
  }
  const Tensor samples = load_speech_samples(o.wavs);
  const auto start = Clock::now();
  const Tensor feats = speech_features(m, samples.view(), ctx);
  const Tensor y = m.encoder->forward(feats.view().unsqueeze(0), mask, nullptr, ctx);
  const double ms = ms_since(start);
  const Tensor frames = Tensor::copy_of(y.view().select(0, 0));
  if (!o.out.empty()) io::write_npy(o.out, frames.view());
  if (!o.quiet)
    std::cout << "encoded " << double(samples.dim(0)) / 16000.0 << " s (" << feats.dim(0)
              << " feature frames) into " << frames.dim(0) << " encoder frames, mask"
              << o.mask.describe()
              << (left_chunks_given ? " left-chunks=" + std::to_string(o.left_chunks) : "")
              << ", in " << ms << " ms" << (o.out.empty() ? "" : " -> " + o.out) << "\n";
}

// ------------------------------------------------------------------------------------- stream

struct StreamOptions {
  std::vector<std::string> wavs;
  std::string model, out;
  int64_t chunk = 16, left_chunks = 4;
  double piece_ms = 100.0, seconds = 0.0;
  int threads = 1;
  bool quiet = false;
};

struct StreamStats {
  std::vector<double> chunk_latency_ms;  // compute time of the piece that completed each chunk
  double compute_ms = 0.0, audio_s = 0.0;
  int64_t frames = 0;  // encoder frames emitted so far
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * double(v.size())))];
}

// y: the frames one push (or the flush) emitted, `ms` its compute time.
void report_chunks(const StreamOptions& o, const Tensor& y, double ms, StreamStats& st) {
  const int64_t first_frame = st.frames;
  st.frames += y.dim(0);
  const int64_t chunks = std::max<int64_t>(1, (y.dim(0) + o.chunk - 1) / o.chunk);
  for (int64_t c = 0; c < chunks; ++c) {
    st.chunk_latency_ms.push_back(ms / double(chunks));
    if (!o.quiet) {
      const int64_t a = first_frame + c * o.chunk,
                    b = std::min(first_frame + y.dim(0), a + o.chunk) - 1;
      std::printf("chunk %5zu  frames %6lld-%-6lld  at %7.2f s of audio  latency %6.2f ms\n",
                  st.chunk_latency_ms.size() - 1, static_cast<long long>(a),
                  static_cast<long long>(b), st.audio_s, ms / double(chunks));
    }
  }
}

void run_stream(const StreamOptions& o) {
  Context ctx(ContextOptions{.num_threads = checked_threads("stream", o.threads)});
  if (!(o.piece_ms >= 0.0625 && o.piece_ms <= 60000))
    usage_fail("--piece-ms", "must be in [0.0625, 60000], got ", o.piece_ms);
  if (!(o.seconds >= 0)) usage_fail("--seconds", "must be >= 0, got ", o.seconds);
  if (o.chunk < 1) usage_fail("--chunk", "must be >= 1, got ", o.chunk);
  check_left_chunks(o.left_chunks);
  SpeechModel m = load_speech_model(o.model);
  const Tensor samples = load_speech_samples(o.wavs);
  const int64_t N = samples.dim(0);
  const auto total = o.seconds > 0 ? static_cast<int64_t>(o.seconds * 16000.0) : N;
  if (total < 1) usage_fail("--seconds", "is less than one sample: ", o.seconds);
  const auto piece = std::max<int64_t>(1, static_cast<int64_t>(o.piece_ms * 16.0));
  audio::StreamingFbank fbank(m.fbank, ctx);
  nn::StreamingEncoder encoder(*m.encoder, o.chunk, o.left_chunks, ctx);
  std::vector<float> emitted;  // kept only for --out
  StreamStats st;
  std::vector<float> buf(static_cast<size_t>(piece));
  int64_t next_report_s = 60;
  auto consume = [&](const Tensor& y, double ms) {
    if (y.dim(0) > 0) report_chunks(o, y, ms, st);
    if (!o.out.empty()) emitted.insert(emitted.end(), y.values().begin(), y.values().end());
  };
  // Features through CMVN into the encoder; what it emits.
  auto encode = [&](Tensor feats) {
    if (m.cmvn && feats.dim(0) > 0) m.cmvn->apply(feats.view());
    return encoder.push(feats.view());
  };
  // One step of the stream, timed into the stats, and the frames it emitted reported.
  auto timed_step = [&](auto step) {
    const auto start = Clock::now();
    const Tensor y = step();
    const double ms = ms_since(start);
    st.compute_ms += ms;
    consume(y, ms);
  };
  for (int64_t pos = 0; pos < total; pos += piece) {
    const int64_t n = std::min(piece, total - pos);
    for (int64_t i = 0; i < n; ++i) buf[size_t(i)] = samples((pos + i) % N);  // loops the audio
    st.audio_s = double(pos + n) / 16000.0;
    timed_step([&] { return encode(fbank.push(std::span<const float>(buf.data(), size_t(n)))); });
    if (st.audio_s >= double(next_report_s)) {
      std::printf("-- %4lld s of audio: RSS %.1f MiB, caches %.1f KiB, RTF so far %.4f\n",
                  static_cast<long long>(next_report_s), status_mib("VmRSS:"),
                  double(encoder.cache_bytes()) / 1024.0, st.compute_ms / 1000.0 / st.audio_s);
      next_report_s += 60;
    }
  }
  // The end of the stream: fbank's held-back frame (frames go in pairs), then the encoder's rest.
  timed_step([&] { return encode(fbank.flush()); });
  timed_step([&] { return encoder.flush(); });
  const int64_t C = m.encoder->d_model();
  if (!o.out.empty())
    io::write_npy(o.out,
                  Tensor::from_values(Shape{int64_t(emitted.size()) / C, C}, emitted).view());
  const double rtf = st.compute_ms / 1000.0 / (double(total) / 16000.0);
  std::printf(
      "streamed %.2f s of audio in %.0f ms pieces: %lld encoder frames in %zu chunks of %lld "
      "(%lld left chunks), %d thread(s)\n"
      "real-time factor %.4f; per-chunk latency mean %.2f ms, p50 %.2f, p95 %.2f, max %.2f; "
      "peak RSS %.1f MiB%s\n",
      double(total) / 16000.0, o.piece_ms, static_cast<long long>(st.frames),
      st.chunk_latency_ms.size(), static_cast<long long>(o.chunk),
      static_cast<long long>(o.left_chunks), ctx.num_threads(), rtf,
      st.chunk_latency_ms.empty() ? 0.0 : st.compute_ms / double(st.chunk_latency_ms.size()),
      percentile(st.chunk_latency_ms, 0.5), percentile(st.chunk_latency_ms, 0.95),
      percentile(st.chunk_latency_ms, 1.0), peak_rss_mib(),
      o.out.empty() ? "" : (" -> " + o.out).c_str());
}

}  // namespace

void add_fbank_command(CLI::App& app) {
  auto o = std::make_shared<FbankCliOptions>();
  CLI::App* sub = app.add_subcommand(
      "fbank", "Log-mel features of a recording (Kaldi fbank or Whisper), as .npy and a PNG");
  sub->add_option("--wav", o->wavs, "Audio file(s) (WAV, FLAC, OGG, ...), concatenated at 16 kHz")
      ->required();
  sub->add_option("--out", o->out, "Features .npy (T, bins)");
  sub->add_option("--kind", o->kind, "kaldi or whisper")->capture_default_str();
  sub->add_option("--bins", o->bins, "Mel bins")->capture_default_str();
  sub->add_option("--png", o->png, "Spectrogram image (time in seconds × mel bins)");
  sub->add_option("--threads", o->threads, "Threads (0 = all)")->capture_default_str();
  sub->add_flag("--quiet", o->quiet, "No summary line");
  sub->callback([o] { run_fbank(*o); });
}

void add_speech_command(CLI::App& app) {
  CLI::App* speech =
      app.add_subcommand("speech", "Speech encoder models: make one, run one offline");
  speech->require_subcommand(1);
  auto n = std::make_shared<NewModelOptions>();
  CLI::App* nm = speech->add_subcommand(
      "new-model", "Write a randomly initialised speech encoder (config.json + model.safetensors)");
  nm->add_option("--out", n->out, "Model directory (created)")->required();
  nm->add_option("--layers", n->layers, "Encoder layers")->capture_default_str();
  nm->add_option("--d-model", n->d_model, "Model width C")->capture_default_str();
  nm->add_option("--heads", n->heads, "Attention heads")->capture_default_str();
  nm->add_option("--ff", n->ff, "Feed-forward width")->capture_default_str();
  nm->add_option("--input-dim", n->input_dim, "Fbank bins the model takes")->capture_default_str();
  nm->add_option("--seed", n->seed, "Initialisation seed")->capture_default_str();
  nm->add_flag("--post-norm", n->post_norm, "Post-norm layers (default: pre-norm, as WeNet)");
  nm->callback([n] { run_new_model(*n); });

  auto e = std::make_shared<SpeechEncodeOptions>();
  CLI::App* enc = speech->add_subcommand(
      "encode", "Run a speech encoder on a recording offline, under any attention mask");
  enc->add_option("--wav", e->wavs, "Audio file(s), concatenated")->required();
  enc->add_option("--model", e->model, "Model directory")->required();
  enc->add_option("--out", e->out, "Encoder frames .npy (T', C)");
  add_mask_flags(enc, e->mask, kWindowFlag | kDilationFlag | kChunkFlag | kCausalFlag);
  e->left_chunks_opt = enc->add_option(
      "--left-chunks", e->left_chunks,
      "With --chunk SIZE: left chunks each chunk sees (-1 = all), as attn stream takes");
  enc->add_option("--threads", e->threads, "Threads (0 = all)")->capture_default_str();
  enc->add_flag("--quiet", e->quiet, "No summary line");
  enc->callback([e] { run_speech_encode(*e); });
}

void add_stream_command(CLI::App& app) {
  auto o = std::make_shared<StreamOptions>();
  CLI::App* sub = app.add_subcommand(
      "stream", "Run a speech encoder on a recording as a stream, chunk by chunk, bounded caches");
  sub->add_option("--wav", o->wavs, "Audio file(s), concatenated")->required();
  sub->add_option("--model", o->model, "Model directory")->required();
  sub->add_option("--chunk", o->chunk, "Chunk size in encoder frames (40 ms each)")
      ->capture_default_str();
  sub->add_option("--left-chunks", o->left_chunks, "Chunks of left context (-1 = all)")
      ->capture_default_str();
  sub->add_option("--piece-ms", o->piece_ms, "Audio arrives in pieces of this many ms")
      ->capture_default_str();
  sub->add_option("--seconds", o->seconds,
                  "Stream this many seconds, looping the audio (0 = the audio once)")
      ->capture_default_str();
  sub->add_option("--threads", o->threads, "Threads (0 = all)")->capture_default_str();
  sub->add_option("--out", o->out, "Emitted encoder frames .npy (T', C)");
  sub->add_flag("--quiet", o->quiet, "No per-chunk lines");
  sub->callback([o] { run_stream(*o); });
}

}  // namespace attn::cli
