// SPDX-License-Identifier: MIT
// espeak-ng synthesis with phoneme timing, frame labels and the synthetic speech data set
// (include/attn/train/speech_synth.h).
#include "attn/train/speech_synth.h"

#include <espeak-ng/speak_lib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "attn/audio/audio.h"
#include "attn/audio/features.h"
#include "attn/context.h"
#include "attn/error.h"
#include "attn/io/npy.h"

namespace attn::train {

namespace {

constexpr const char* kFn = "train::synthesize";

// What the synthesis callback collects for the call in progress (one at a time, under the lock).
struct Collected {
  std::vector<int16_t> samples;
  std::vector<std::pair<int, std::string>> phonemes;  // (start ms, name)
};
Collected* g_collected = nullptr;

int on_synth(short* wav, int n, espeak_EVENT* events) {
  if (wav && n > 0) g_collected->samples.insert(g_collected->samples.end(), wav, wav + n);
  for (espeak_EVENT* e = events; e && e->type != espeakEVENT_LIST_TERMINATED; ++e)
    if (e->type == espeakEVENT_PHONEME)
      g_collected->phonemes.emplace_back(
          e->audio_position,
          std::string(e->id.string, strnlen(e->id.string, sizeof(e->id.string))));
  return 0;  // continue
}

std::mutex& espeak_mutex() {
  static std::mutex m;
  return m;
}

// espeak-ng's output rate, starting it on first use (under the lock). It is started once per
// process: espeak_Terminate followed by espeak_Initialize hangs (espeak-ng 1.51). Its wave
// generator carries state (phase, flutter) from one utterance to the next, so the same calls in the
// same order from a fresh process give the same samples, but an utterance's last bits depend on
// what was spoken before it in the process.
int espeak_rate() {
  static int rate = 0;
  if (rate == 0) {
    rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr,
                             espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_DONT_EXIT);
    if (rate <= 0) {
      rate = 0;
      fail<Error>(kFn, "espeak-ng could not start (is espeak-ng-data installed?)");
    }
    espeak_SetSynthCallback(on_synth);
  }
  return rate;
}

}  // namespace

SynthesizedSpeech synthesize(const std::string& text, const SynthesisOptions& o) {
  if (o.rate_wpm < espeakRATE_MINIMUM || o.rate_wpm > espeakRATE_MAXIMUM)
    fail<ValueError>(kFn, "rate_wpm must be in [", espeakRATE_MINIMUM, ", ", espeakRATE_MAXIMUM,
                     "], got ", o.rate_wpm);
  if (o.pitch < 0 || o.pitch > 99) fail<ValueError>(kFn, "pitch must be in [0, 99], got ", o.pitch);
  Collected collected;
  int rate = 0;
  {
    std::lock_guard<std::mutex> lock(espeak_mutex());
    rate = espeak_rate();
    if (espeak_SetVoiceByName(o.voice.c_str()) != EE_OK)
      fail<ValueError>(kFn, "espeak-ng has no voice '", o.voice, "'");
    espeak_SetParameter(espeakRATE, o.rate_wpm, 0);
    espeak_SetParameter(espeakPITCH, o.pitch, 0);
    g_collected = &collected;
    const espeak_ERROR err = espeak_Synth(text.c_str(), text.size() + 1, 0, POS_CHARACTER, 0,
                                          espeakCHARS_AUTO, nullptr, nullptr);
    espeak_Synchronize();
    g_collected = nullptr;
    if (err != EE_OK) fail<Error>(kFn, "espeak-ng failed on '", text, "' (error ", err, ")");
  }
  SynthesizedSpeech s;
  Tensor raw(Shape{1, static_cast<int64_t>(collected.samples.size())});
  for (size_t i = 0; i < collected.samples.size(); ++i)
    raw.data()[i] = static_cast<float>(collected.samples[i]) / 32768.0f;
  s.samples =
      raw.numel() > 0
          ? Tensor::copy_of(
                audio::resample(raw.view(), rate, audio::kSpeechSampleRate).view().select(0, 0))
          : Tensor(Shape{0});
  for (const auto& [ms, name] : collected.phonemes) {
    const std::string label = name.empty() || name[0] == '_' ? kSilencePhoneme : name;
    if (!s.phonemes.empty() && label == kSilencePhoneme && s.phonemes.back() == kSilencePhoneme)
      continue;  // one pause, not several
    s.phonemes.push_back(label);
    s.phoneme_start_ms.push_back(ms);
  }
  return s;
}

std::vector<std::string> frame_phonemes(const SynthesizedSpeech& speech, int64_t frames) {
  std::vector<std::string> labels(static_cast<size_t>(std::max<int64_t>(frames, 0)),
                                  kSilencePhoneme);
  size_t p = 0;
  for (int64_t f = 0; f < frames; ++f) {
    const double centre = 12.5 + 10.0 * static_cast<double>(f);
    while (p < speech.phonemes.size() && speech.phoneme_start_ms[p] <= centre) ++p;
    if (p > 0) labels[static_cast<size_t>(f)] = speech.phonemes[p - 1];
  }
  return labels;
}

std::vector<std::string> speech_train_voices() {
  std::vector<std::string> v;
  for (const char* lang : {"en-us", "en"})
    for (const char* variant : {"m1", "m2", "m3", "m5", "m6", "f1", "f2", "f4"})
      v.push_back(std::string(lang) + "+" + variant);
  return v;
}

std::vector<std::string> speech_test_voices() {
  std::vector<std::string> v;
  for (const char* lang : {"en-us", "en"})
    for (const char* variant : {"m4", "m7", "f3", "f5"})
      v.push_back(std::string(lang) + "+" + variant);
  return v;
}

namespace {

std::vector<std::string> read_words(const std::string& path) {
  std::ifstream f(path);
  if (!f)
    fail<IoError>("train::generate_speech_dataset", "cannot read the word list '", path,
                  "' (Debian: wamerican)");
  std::vector<std::string> words;
  std::string w;
  while (std::getline(f, w))
    if (w.size() >= 2 && w.size() <= 12 &&
        std::all_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
      words.push_back(w);
  if (words.empty())
    fail<IoError>("train::generate_speech_dataset", "'", path, "' has no plain lowercase words");
  return words;
}

void write_labels(const std::string& path, const std::vector<int64_t>& labels) {
  io::NpyArray a;
  a.dtype = io::DType::kInt64;
  a.shape = Shape{static_cast<int64_t>(labels.size())};
  a.data.resize(labels.size() * sizeof(int64_t));
  if (!labels.empty()) std::memcpy(a.data.data(), labels.data(), a.data.size());
  io::write_npy(path, a);
}

std::string utterance_name(const SpeechUtterance& u, size_t i) {
  const std::string n = std::to_string(i);
  return u.split + "/utt_" + std::string(5 - std::min<size_t>(5, n.size()), '0') + n;
}

void validate(const SpeechDatasetOptions& o, const char* fn) {
  if (o.utterances < 1) fail<ValueError>(fn, "utterances must be >= 1, got ", o.utterances);
  if (!(o.test_fraction >= 0.0 && o.test_fraction < 1.0))
    fail<ValueError>(fn, "test_fraction must be in [0, 1), got ", o.test_fraction);
  if (o.min_words < 1 || o.max_words < o.min_words)
    fail<ValueError>(fn, "need 1 <= min_words <= max_words, got ", o.min_words, ", ", o.max_words);
}

}  // namespace

SpeechCorpus make_speech_corpus(const SpeechDatasetOptions& o,
                                const std::function<void(int64_t, int64_t)>& progress) {
  validate(o, "train::make_speech_corpus");
  const std::vector<std::string> words = read_words(o.words);
  const auto n_test =
      static_cast<int64_t>(static_cast<double>(o.utterances) * o.test_fraction + 0.5);
  const std::vector<std::string> train_voices = speech_train_voices(),
                                 test_voices = speech_test_voices();
  Rng rng(o.seed);
  SpeechCorpus corpus;
  std::vector<std::vector<std::string>> frame_names;
  std::set<std::string> inventory;
  for (int64_t i = 0; i < o.utterances; ++i) {
    SpeechUtterance u;
    u.split = i < o.utterances - n_test ? "train" : "test";
    const auto& voices = u.split == "train" ? train_voices : test_voices;
    u.voice = voices[static_cast<size_t>(rng.uniform_int(0, int64_t(voices.size()) - 1))];
    u.rate_wpm = static_cast<int>(rng.uniform_int(130, 200));
    u.pitch = static_cast<int>(rng.uniform_int(30, 70));
    const int64_t n_words = rng.uniform_int(o.min_words, o.max_words);
    for (int64_t w = 0; w < n_words; ++w)
      u.text += (w ? " " : "") +
                words[static_cast<size_t>(rng.uniform_int(0, int64_t(words.size()) - 1))];
    u.speech = synthesize(u.text, {u.voice, u.rate_wpm, u.pitch});
    frame_names.push_back(
        frame_phonemes(u.speech, audio::fbank_num_frames(u.speech.samples.dim(0), {})));
    inventory.insert(frame_names.back().begin(), frame_names.back().end());
    corpus.utterances.push_back(std::move(u));
    if (progress) progress(i + 1, o.utterances);
  }
  corpus.phonemes = {kSilencePhoneme};
  for (const auto& p : inventory)
    if (p != kSilencePhoneme) corpus.phonemes.push_back(p);
  std::map<std::string, int64_t> ids;
  for (size_t i = 0; i < corpus.phonemes.size(); ++i)
    ids[corpus.phonemes[i]] = static_cast<int64_t>(i);
  for (size_t i = 0; i < corpus.utterances.size(); ++i)
    for (const auto& name : frame_names[i]) corpus.utterances[i].frame_labels.push_back(ids[name]);
  return corpus;
}

void generate_speech_dataset(const std::string& dir, const SpeechDatasetOptions& o,
                             const std::function<void(int64_t, int64_t)>& progress) {
  constexpr const char* fn = "train::generate_speech_dataset";
  validate(o, fn);
  for (const char* split : {"train", "test"}) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(dir) / split, ec);
    if (ec) fail<IoError>(fn, "cannot create '", dir, "/", split, "': ", ec.message());
  }
  const SpeechCorpus corpus = make_speech_corpus(o, progress);
  std::ofstream manifest(dir + "/manifest.jsonl");
  for (size_t i = 0; i < corpus.utterances.size(); ++i) {
    const SpeechUtterance& u = corpus.utterances[i];
    const std::string name = utterance_name(u, i);
    audio::write_wav(dir + "/" + name + ".wav", u.speech.samples.view().unsqueeze(0),
                     audio::kSpeechSampleRate);
    write_labels(dir + "/" + name + ".labels.npy", u.frame_labels);
    manifest << nlohmann::json{{"split", u.split},
                               {"wav", name + ".wav"},
                               {"labels", name + ".labels.npy"},
                               {"text", u.text},
                               {"voice", u.voice},
                               {"rate_wpm", u.rate_wpm},
                               {"pitch", u.pitch},
                               {"phonemes", u.speech.phonemes},
                               {"frames", u.frame_labels.size()}}
                    .dump()
             << "\n";
  }
  std::ofstream inv(dir + "/phonemes.json");
  inv << nlohmann::json{{"phonemes", corpus.phonemes},
                        {"silence", kSilencePhoneme},
                        {"sample_rate", audio::kSpeechSampleRate},
                        {"frame_length_ms", 25},
                        {"frame_shift_ms", 10},
                        {"train_voices", speech_train_voices()},
                        {"test_voices", speech_test_voices()}}
             .dump(2)
      << "\n";
  if (!manifest || !inv) fail<IoError>(fn, "cannot write the manifest or inventory in '", dir, "'");
}

}  // namespace attn::train
