// SPDX-License-Identifier: MIT
// Labelled speech from espeak-ng: a known word's phonemes, labels that line up with the audio and
// with the fbank's frame count, a generator whose choices follow the seed and whose test voices are
// never trained on.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "attn/attn.h"

namespace attn::train {
namespace {

std::vector<std::string> without_pauses(const std::vector<std::string>& p) {
  std::vector<std::string> out;
  for (const auto& s : p)
    if (s != kSilencePhoneme) out.push_back(s);
  return out;
}

TEST(SpeechSynth, AKnownWordHasItsPhonemesInOrderAndLabelsLineUp) {
  const SynthesizedSpeech s = synthesize("cat", {"en-us", 175, 50});
  EXPECT_EQ(without_pauses(s.phonemes), (std::vector<std::string>{"k", "a", "t"}));
  ASSERT_GT(s.samples.dim(0), 1600);  // more than 0.1 s at 16 kHz
  EXPECT_TRUE(std::is_sorted(s.phoneme_start_ms.begin(), s.phoneme_start_ms.end()));
  const Tensor feats = audio::fbank(s.samples.view(), {});
  const std::vector<std::string> labels = frame_phonemes(s, feats.dim(0));
  ASSERT_EQ(static_cast<int64_t>(labels.size()), feats.dim(0));
  // The frames' labels, runs collapsed, are the phoneme sequence; the vowel lasts several frames.
  std::vector<std::string> runs;
  for (const auto& l : labels)
    if (runs.empty() || runs.back() != l) runs.push_back(l);
  EXPECT_EQ(without_pauses(runs), (std::vector<std::string>{"k", "a", "t"}));
  EXPECT_GE(std::count(labels.begin(), labels.end(), "a"), 5);
  // Frames labelled silence carry less energy than the vowel's (the labels sit on the audio).
  double silence = 0, vowel = 0;
  int64_t ns = 0, nv = 0;
  for (int64_t f = 0; f < feats.dim(0); ++f) {
    double e = 0;
    for (int64_t b = 0; b < feats.dim(1); ++b) e += double(feats(f, b));
    if (labels[size_t(f)] == kSilencePhoneme) silence += e, ++ns;
    if (labels[size_t(f)] == "a") vowel += e, ++nv;
  }
  ASSERT_GT(ns, 0);
  EXPECT_LT(silence / double(ns), vowel / double(nv));
}

TEST(SpeechSynth, RejectsUnknownVoicesAndBadOptions) {
  EXPECT_THROW(synthesize("cat", {"no-such-voice", 175, 50}), ValueError);
  EXPECT_THROW(synthesize("cat", {"en-us", 10, 50}), ValueError);
  EXPECT_THROW(synthesize("cat", {"en-us", 175, 120}), ValueError);
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(SpeechDataset, ChoicesFollowTheSeedAndTestVoicesAreUnseen) {
  const auto a = std::filesystem::path(::testing::TempDir()) / "speech_a";
  const auto b = std::filesystem::path(::testing::TempDir()) / "speech_b";
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
  SpeechDatasetOptions o;
  o.utterances = 5;
  o.seed = 7;
  o.max_words = 3;
  int64_t calls = 0;
  generate_speech_dataset(a.string(), o, [&](int64_t done, int64_t total) {
    ++calls;
    EXPECT_EQ(total, 5);
    EXPECT_EQ(done, calls);
  });
  generate_speech_dataset(b.string(), o);
  EXPECT_EQ(calls, 5);
  // Within one process the texts, voices and phonemes repeat; the samples may not (espeak-ng's wave
  // generator carries state between utterances), so the byte-for-byte check is the CLI's, in fresh
  // processes (tests/tools/test_cli_speech.cc).
  const std::string manifest = read_all(a / "manifest.jsonl");
  {
    std::istringstream la(manifest), lb(read_all(b / "manifest.jsonl"));
    std::string x, y;
    while (std::getline(la, x) && std::getline(lb, y)) {
      auto jx = nlohmann::json::parse(x), jy = nlohmann::json::parse(y);
      jx.erase("frames");
      jy.erase("frames");
      EXPECT_EQ(jx, jy);
    }
  }
  // One test utterance (20% of 5), spoken by a test voice; labels match the WAV's fbank frames.
  std::istringstream lines(manifest);
  std::string line;
  int64_t tests = 0;
  const auto test_voices = speech_test_voices(), train_voices = speech_train_voices();
  for (const auto& v : test_voices)
    EXPECT_EQ(std::count(train_voices.begin(), train_voices.end(), v), 0) << v;
  while (std::getline(lines, line)) {
    const auto j = nlohmann::json::parse(line);
    const auto& voices = j["split"] == "test" ? test_voices : train_voices;
    EXPECT_EQ(std::count(voices.begin(), voices.end(), j["voice"].get<std::string>()), 1) << line;
    tests += j["split"] == "test";
    const audio::Audio wav = audio::read((a / j["wav"].get<std::string>()).string());
    const io::NpyArray labels = io::read_npy((a / j["labels"].get<std::string>()).string());
    EXPECT_EQ(labels.shape[0], audio::fbank_num_frames(wav.frames(), {})) << line;
    EXPECT_EQ(labels.shape[0], j["frames"].get<int64_t>());
  }
  EXPECT_EQ(tests, 1);
  const auto inventory = nlohmann::json::parse(read_all(a / "phonemes.json"));
  EXPECT_EQ(inventory["phonemes"][0], kSilencePhoneme);
  EXPECT_GT(inventory["phonemes"].size(), 8u);
}

}  // namespace
}  // namespace attn::train
