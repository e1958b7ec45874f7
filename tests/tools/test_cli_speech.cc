// SPDX-License-Identifier: MIT
// The speech subcommands run as a user runs them: fbank (npy + PNG), speech new-model / encode,
// stream (equal to the offline chunk mask, bounded caches in its report), bench speech, and their
// errors. The audio is a WAV the test writes (a chirp), so nothing depends on installed clips.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <sstream>

#include "attn/attn.h"
#include "cli_runner.h"

namespace attn::testing {
namespace {

std::string temp(const std::string& name) { return ::testing::TempDir() + "/cli_speech_" + name; }

// 3 s of a chirp at 16 kHz.
std::string chirp_wav() {
  const std::string path = temp("chirp.wav");
  Tensor x(Shape{1, 48000});
  for (int64_t i = 0; i < 48000; ++i) {
    const double t = double(i) / 16000.0;
    x(0, i) = static_cast<float>(0.3 * std::sin(2 * std::numbers::pi * (200 + 300 * t) * t));
  }
  audio::write_wav(path, x.view(), 16000);
  return path;
}

TEST(CliSpeech, FbankWritesFeaturesAndASpectrogram) {
  const std::string wav = chirp_wav(), npy = temp("f.npy"), png = temp("f.png");
  auto r = run_cli("fbank --wav " + wav + " --out " + npy + " --png " + png);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("kaldi features (298, 80)"), std::string::npos) << r.output;
  EXPECT_EQ(io::read_npy(npy).shape, (Shape{298, 80}));
  EXPECT_GT(std::filesystem::file_size(png), 1000u);
  r = run_cli("fbank --wav " + wav + " --kind whisper --bins 80 --out " + npy + " --quiet");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(io::read_npy(npy).shape, (Shape{300, 80}));
  r = run_cli("fbank --wav " + wav + " --kind mfcc");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("attn: fbank: --kind"), std::string::npos) << r.output;
  r = run_cli("fbank --wav /no/such.wav");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("/no/such.wav"), std::string::npos) << r.output;
}

TEST(CliSpeech, StreamEqualsOfflineChunkMaskAndReportsItsCost) {
  const std::string wav = chirp_wav(), model = temp("model");
  std::filesystem::remove_all(model);
  auto r = run_cli("speech new-model --out " + model +
                   " --layers 2 --d-model 32 --heads 4 --ff 48 --seed 3");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string off = temp("offline.npy"), on = temp("stream.npy");
  r = run_cli("speech encode --wav " + wav + " --model " + model + " --chunk 4,2 --out " + off);
  ASSERT_EQ(r.code, 0) << r.output;
  // The spelling, as attn stream takes it, gives the same mask.
  const std::string off2 = temp("offline2.npy");
  r = run_cli("speech encode --wav " + wav + " --model " + model +
              " --chunk 4 --left-chunks 2 --out " + off2);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(io::read_npy(off2).data, io::read_npy(off).data);
  r = run_cli("speech encode --wav " + wav + " --model " + model + " --chunk 4,2 --left-chunks 1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--left-chunks"), std::string::npos) << r.output;
  r = run_cli("speech encode --wav " + wav + " --model " + model + " --chunk 4 --left-chunks -2");
  EXPECT_EQ(r.code, 2);  // -2 was the "not given" sentinel: ignored
  EXPECT_NE(r.output.find("--left-chunks: must be >= 0, or -1 for all, got -2"), std::string::npos)
      << r.output;
  for (const auto& [args, says] : std::vector<std::pair<std::string, std::string>>{
           {"--chunk 0", "--chunk: must be >= 1, got 0"},  // were the encoder's errors, exit 1
           {"--chunk 4 --left-chunks -2", "--left-chunks: must be >= 0, or -1 for all, got -2"}}) {
    r = run_cli("stream --wav " + wav + " --model " + model + " " + args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find("attn: stream: " + says), std::string::npos) << r.output;
  }
  r = run_cli("stream --wav " + wav + " --model " + model +
              " --chunk 4 --left-chunks 2 --piece-ms 30 --out " + on);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("chunk     0  frames      0-3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("real-time factor"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("73 encoder frames in 19 chunks of 4"), std::string::npos) << r.output;
  const io::NpyArray a = io::read_npy(off), b = io::read_npy(on);
  ASSERT_EQ(a.shape, (Shape{73, 32}));
  ASSERT_EQ(b.shape, a.shape);
  const TensorD x = a.to_double(), y = b.to_double();
  double worst = 0.0;
  for (int64_t i = 0; i < x.numel(); ++i)
    worst = std::max(worst, std::abs(x.data()[i] - y.data()[i]));
  EXPECT_LT(worst, 1e-5);
  // A looped 70 s stream reports its memory each minute.
  r = run_cli("stream --wav " + wav + " --model " + model +
              " --chunk 4 --left-chunks 2 --seconds 70 --quiet");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("--   60 s of audio: RSS"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("chunk     0"), std::string::npos) << r.output;  // --quiet
  r = run_cli("stream --wav " + wav + " --model " + temp("no-model"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("config.json"), std::string::npos) << r.output;
}

std::string file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(CliData, SpeechIsTheSameBytesForASeedInFreshProcesses) {
  const std::string a = temp("data_a"), b = temp("data_b"), c = temp("data_c");
  for (const auto& d : {a, b, c}) std::filesystem::remove_all(d);
  auto r = run_cli("data speech --out " + a + " --utterances 4 --seed 3 --quiet");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("wrote 3 training and 1 test utterances"), std::string::npos) << r.output;
  ASSERT_EQ(run_cli("data speech --out " + b + " --utterances 4 --seed 3 --quiet").code, 0);
  ASSERT_EQ(run_cli("data speech --out " + c + " --utterances 4 --seed 4 --quiet").code, 0);
  for (const char* f : {"/manifest.jsonl", "/phonemes.json", "/train/utt_00000.wav",
                        "/train/utt_00002.labels.npy", "/test/utt_00003.wav"})
    EXPECT_EQ(file_bytes(a + f), file_bytes(b + f)) << f;
  EXPECT_NE(file_bytes(a + "/manifest.jsonl"), file_bytes(c + "/manifest.jsonl"));
  r = run_cli("data speech --out " + a + " --utterances 0");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("attn: data speech: --utterances"), std::string::npos) << r.output;
}

TEST(CliExperiment, SpeechWritesItsTableCsvAndPlots) {
  const std::string out = temp("experiment");
  std::filesystem::remove_all(out);
  auto r = run_cli(
      "experiment speech --utterances 20 --steps 2 --models full,window2,window4,lstm-uni "
      "--d-model 16 --layers 1 --ff 16 --mel-bins 16 --plot-model window2 --quiet "
      "--threads 1 --out-dir " +
      out);
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* s : {"majority class", "window2", "lstm-uni", "real PER"})
    EXPECT_NE(r.output.find(s), std::string::npos) << s << "\n" << r.output;
  std::ifstream csv(out + "/results.csv");
  std::string header, line;
  std::getline(csv, header);
  EXPECT_NE(header.find("test_frame_accuracy,inference_ms_10s,attention_gflops_10s"),
            std::string::npos);
  int rows = 0;
  while (std::getline(csv, line)) ++rows;
  EXPECT_EQ(rows, 5);  // four models and the majority class
  for (const char* f : {"/accuracy.png", "/cost.png"}) {
    EXPECT_TRUE(std::filesystem::exists(out + f)) << f;
    std::filesystem::remove(out + f);
  }
  r = run_cli("experiment speech --replot --out-dir " + out);  // the plots again, from the CSV
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* f : {"/accuracy.png", "/cost.png"})
    EXPECT_TRUE(std::filesystem::exists(out + f)) << f;
  r = run_cli("experiment speech --replot --out-dir " + temp("no-such-run"));
  EXPECT_EQ(r.code, 2);
  r = run_cli("experiment speech --models window2,gru --out-dir " + out);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--models"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("'gru'"), std::string::npos) << r.output;
  r = run_cli("experiment speech --steps 0 --out-dir " + out);
  EXPECT_EQ(r.code, 2);
}

TEST(CliSpeech, BenchSpeechReportsEveryMaskAndTheStream) {
  const auto r = run_cli(
      "bench speech --threads 1 --repeats 1 --seconds 2 --layers 1 --d-model 32 --heads 2 --ff 32 "
      "--json");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("\"rtf\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("window ±16"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"fbank_ms\""), std::string::npos) << r.output;
}

}  // namespace
}  // namespace attn::testing
